/** The IR printer, and ONNX export with initializers read from a .safetensors file by byte range. */
import assert from "node:assert/strict";
import { link, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { input } from "../../../src/graph/apply.js";
import { compile } from "../../../src/graph/compile.js";
import * as g from "../../../src/graph/ops.js";
import { printGraph } from "../../../src/graph/print.js";
import { openSafetensors, writeSafetensors } from "../../../src/io/safetensors.js";

test("printGraph: one line per node with types, attrs and labels; numbering independent of history", () => {
  const build = () => {
    const x = input("x", "float32", ["B", 4]);
    const w = input("lin.weight", "float32", [3, 4]);
    return { y: g.relu(g.add(g.matmul(x, g.transpose(w, [1, 0])), 1)) };
  };
  const text = printGraph(build());
  assert.equal(
    text,
    [
      "input x: float32[B,4]",
      "input lin.weight: float32[3,4]",
      "%0 = const float32[] [1]",
      "%1 = Transpose(lin.weight) {perm=[1,0]} : float32[4,3]",
      "%2 = MatMul(x, %1) : float32[B,3]",
      "%3 = Add(%2, %0) : float32[B,3]",
      "%4 = Relu(%3) : float32[B,3]",
      "output y = %4",
      "",
    ].join("\n"),
  );
  assert.equal(printGraph(build()), text);
});

test("export: initializers point into a .safetensors file (hard-linked into the model folder) by byte range", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sdts-ext-"));
  try {
    const w = Float32Array.from({ length: 12 }, (_, i) => i - 5);
    const b = Float32Array.of(0.5, -1, 2);
    const ckpt = join(dir, "weights.safetensors");
    await writeSafetensors(ckpt, { "lin.weight": { dtype: "F32", shape: [3, 4], data: w }, "lin.bias": { dtype: "F32", shape: [3], data: b } });
    const model = join(dir, "model");
    await (await import("node:fs/promises")).mkdir(model);
    await link(ckpt, join(model, "weights.safetensors"));
    const f = await openSafetensors(ckpt);
    const ref = (k: string) => {
      const t = f.tensors.get(k);
      assert.ok(t);
      return { kind: "external" as const, location: "weights.safetensors", offset: t.byteOffset, length: t.byteLength };
    };
    await f.close();
    const x = input("x", "float32", [1, 4]);
    const W = input("lin.weight", "float32", [3, 4]);
    const B = input("lin.bias", "float32", [3]);
    const y = g.add(g.matmul(x, g.transpose(W, [1, 0])), B);
    const c = await compile({ y }, { name: "ext", modelPath: join(model, "m.onnx"), initializers: new Map([["lin.weight", ref("lin.weight")], ["lin.bias", ref("lin.bias")]]) });
    try {
      assert.deepEqual(c.model.inputs.map((i) => i.name), ["x"]);
      const out = await c.run({ x: { dtype: "float32", shape: [1, 4], data: Float32Array.of(1, 2, 3, 4) } });
      // rows of W: [-5..-2], [-1..2], [3..6]; W·x + b
      assert.deepEqual([...(out.y?.data as Float32Array)], [-5 - 8 - 9 - 8 + 0.5, -1 + 0 + 3 + 8 - 1, 3 + 8 + 15 + 24 + 2]);
    } finally {
      await c.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
