import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { encodeModel, type OnnxGraph, type OnnxTensor } from "../../../src/graph/onnx/proto.js";
import { BackendError } from "../../../src/errors.js";
import { SessionCache } from "../../../src/runtime/cache.js";
import { hostTensor, zerosTensor, type HostTensor } from "../../../src/runtime/host-tensor.js";
import { CUDA_INSTALL_COMMAND, providerStatus } from "../../../src/runtime/providers.js";
import { createSession, type Session } from "../../../src/runtime/session.js";

const f32 = (shape: readonly number[], values: readonly number[]): HostTensor =>
  hostTensor("float32", shape, Float32Array.from(values));
const floats = (name: string, dims: readonly number[], values: readonly number[]): OnnxTensor => ({
  name, elemType: 1, dims, raw: new Uint8Array(Float32Array.from(values).buffer),
});

async function withSession<T>(g: OnnxGraph, body: (s: Session) => Promise<T>, opset = 17): Promise<T> {
  const s = await createSession(encodeModel({ graph: g, opsetVersion: opset }), { provider: "cpu", graphName: g.name, threads: 1 });
  try {
    return await body(s);
  } finally {
    await s.dispose();
  }
}

/** Asserts elementwise closeness and prints the worst index on failure. */
function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  assert.equal(got.length, want.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (d > worst) [worst, at] = [d, i];
  }
  assert.ok(worst <= tol, `maxAbs ${worst} at index ${at}: got ${got[at]}, want ${want[at]}`);
}

test("Add with dim_param batch runs at batch 1 and 3", async () => {
  const g: OnnxGraph = {
    name: "add", initializers: [],
    inputs: [{ name: "a", elemType: 1, dims: ["batch", 2] }, { name: "b", elemType: 1, dims: ["batch", 2] }],
    outputs: [{ name: "c", elemType: 1, dims: ["batch", 2] }],
    nodes: [{ opType: "Add", inputs: ["a", "b"], outputs: ["c"] }],
  };
  await withSession(g, async (s) => {
    assert.deepEqual(s.inputNames, ["a", "b"]);
    const one = await s.run({ a: f32([1, 2], [1, 2]), b: f32([1, 2], [10, 20]) });
    assert.deepEqual(one.c, { dtype: "float32", shape: [1, 2], data: Float32Array.from([11, 22]) });
    const three = await s.run({ a: f32([3, 2], [1, 2, 3, 4, 5, 6]), b: f32([3, 2], [6, 5, 4, 3, 2, 1]) });
    assert.deepEqual(three.c!.shape, [3, 2]);
    assert.deepEqual([...three.c!.data], [7, 7, 7, 7, 7, 7]);
  });
});

test("MatMul with an initializer, and runInto writes a preallocated output", async () => {
  const g: OnnxGraph = {
    name: "matmul",
    initializers: [floats("w", [3, 2], [1, 2, 3, 4, 5, 6])],
    inputs: [{ name: "x", elemType: 1, dims: [2, 3] }],
    outputs: [{ name: "y", elemType: 1, dims: [2, 2] }],
    nodes: [{ opType: "MatMul", inputs: ["x", "w"], outputs: ["y"] }],
  };
  const x = f32([2, 3], [1, 0, -1, 2, 1, 0]);
  const want = [1 * 1 - 5, 2 - 6, 2 * 1 + 3, 2 * 2 + 4]; // rows of x times columns of w
  await withSession(g, async (s) => {
    assert.deepEqual([...(await s.run({ x })).y!.data], want);
    const y = zerosTensor("float32", [2, 2]);
    await s.runInto({ x }, { y });
    assert.deepEqual([...y.data], want);
  });
});

/** Direct 2-D convolution, one batch, for checking ORT's Conv. */
type Dims3 = readonly [number, number, number];
function conv2d(x: number[], [c, h, w]: Dims3, k: number[], [o, kh, kw]: Dims3, pad: number, stride: number) {
  const oh = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const ow = Math.floor((w + 2 * pad - kw) / stride) + 1;
  const out: number[] = [];
  for (let m = 0; m < o; m++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++) {
        let acc = 0;
        for (let ci = 0; ci < c; ci++)
          for (let u = 0; u < kh; u++)
            for (let v = 0; v < kw; v++) {
              const [yy, xx] = [i * stride - pad + u, j * stride - pad + v];
              if (yy >= 0 && yy < h && xx >= 0 && xx < w) acc += x[(ci * h + yy) * w + xx]! * k[((m * c + ci) * kh + u) * kw + v]!;
            }
        out.push(acc);
      }
  return { out, shape: [1, o, oh, ow] };
}

test("Conv with pads, strides and kernel_shape attributes", async () => {
  const x = Array.from({ length: 2 * 5 * 5 }, (_, i) => (i % 7) - 3);
  const k = Array.from({ length: 3 * 2 * 3 * 3 }, (_, i) => ((i * 5) % 11) / 10 - 0.5);
  const g: OnnxGraph = {
    name: "conv",
    initializers: [floats("k", [3, 2, 3, 3], k)],
    inputs: [{ name: "x", elemType: 1, dims: [1, 2, 5, 5] }],
    outputs: [{ name: "y", elemType: 1, dims: [1, 3, 3, 3] }],
    nodes: [{
      opType: "Conv", inputs: ["x", "k"], outputs: ["y"],
      attrs: [
        { name: "kernel_shape", type: "ints", value: [3, 3] },
        { name: "pads", type: "ints", value: [1, 1, 1, 1] },
        { name: "strides", type: "ints", value: [2, 2] },
      ],
    }],
  };
  const want = conv2d(x, [2, 5, 5], k, [3, 3, 3], 1, 2);
  await withSession(g, async (s) => {
    const { y } = await s.run({ x: f32([1, 2, 5, 5], x) });
    assert.deepEqual(y!.shape, want.shape);
    assertClose(y!.data as Float32Array, want.out);
  });
});

test("Reshape with an INT64 initializer holding -1; int64, bool and float16 outputs", async () => {
  const shape: OnnxTensor = { name: "shape", elemType: 7, dims: [2], raw: new Uint8Array(new BigInt64Array([-1n, 2n]).buffer) };
  const g: OnnxGraph = {
    name: "reshape",
    initializers: [shape],
    inputs: [{ name: "x", elemType: 1, dims: ["n", 4] }],
    outputs: [
      { name: "y", elemType: 1, dims: ["m", 2] },
      { name: "s", elemType: 7, dims: [2] },
      { name: "pos", elemType: 9, dims: ["m", 2] },
      { name: "h", elemType: 10, dims: ["m", 2] },
    ],
    nodes: [
      { opType: "Constant", inputs: [], outputs: ["zero"], attrs: [{ name: "value", type: "tensor", value: floats("z", [], [0]) }] },
      { opType: "Reshape", inputs: ["x", "shape"], outputs: ["y"] },
      { opType: "Shape", inputs: ["y"], outputs: ["s"] },
      { opType: "Greater", inputs: ["y", "zero"], outputs: ["pos"] },
      { opType: "Cast", inputs: ["y"], outputs: ["h"], attrs: [{ name: "to", type: "int", value: 10 }] },
    ],
  };
  await withSession(g, async (s) => {
    for (const n of [1, 3]) {
      const x = f32([n, 4], Array.from({ length: 4 * n }, (_, i) => i - 2));
      const out = await s.run({ x });
      assert.deepEqual(out.y!.shape, [2 * n, 2]);
      assert.deepEqual([...out.y!.data], [...x.data]);
      assert.deepEqual(out.s, { dtype: "int64", shape: [2], data: BigInt64Array.from([BigInt(2 * n), 2n]) });
      assert.equal(out.pos!.dtype, "bool");
      assert.deepEqual([...out.pos!.data], [...x.data].map((v) => (v > 0 ? 1 : 0)));
      assert.equal(out.h!.dtype, "float16");
      assert.equal(out.h!.data[3], 0x3c00); // 1.0 in IEEE half
    }
    const only = await s.run({ x: f32([1, 4], [1, 2, 3, 4]) }, ["s"]);
    assert.deepEqual(Object.keys(only), ["s"]);
  });
});

test("errors: wrong input name, bad graph, disposed session; all name the graph", async () => {
  const g: OnnxGraph = {
    name: "relu-graph", initializers: [],
    inputs: [{ name: "x", elemType: 1, dims: [2] }],
    outputs: [{ name: "y", elemType: 1, dims: [2] }],
    nodes: [{ opType: "Relu", inputs: ["x"], outputs: ["y"] }],
  };
  const s = await createSession(encodeModel({ graph: g, opsetVersion: 17 }), { provider: "cpu", graphName: "relu-graph" });
  await assert.rejects(s.run({ input: f32([2], [1, -1]) }), (e: Error) =>
    e instanceof BackendError && /relu-graph/.test(e.message) && /no input "input"/.test(e.message));
  await assert.rejects(s.run({ x: f32([2], [1, -1]) }, ["z"]), /relu-graph.*no output "z"/);
  await assert.rejects(s.run({ x: f32([3], [1, -1, 0]) }), (e: Error) => e instanceof BackendError && /relu-graph/.test(e.message));
  // a feed map built from a lookup that missed (a weight absent from a checkpoint) names the input
  await assert.rejects(s.run({ x: undefined as unknown as HostTensor }), (e: Error) =>
    e instanceof BackendError && /relu-graph.*input "x" was given no tensor/.test(e.message));
  await s.dispose();
  await s.dispose(); // idempotent
  await assert.rejects(s.run({ x: f32([2], [1, -1]) }), /session for graph "relu-graph" on cpu was disposed/);
  // A node reading a value nobody defines fails at load, wrapped with the graph name.
  const broken = { ...g, nodes: [{ opType: "Relu", inputs: ["typo"], outputs: ["y"] }] };
  await assert.rejects(
    createSession(encodeModel({ graph: broken, opsetVersion: 17 }), { provider: "cpu", graphName: "broken-graph" }),
    (e: Error) => e instanceof BackendError && /broken-graph/.test(e.message) && /on cpu/.test(e.message),
  );
});

test("missing cuda provider says exactly what to install", async (t) => {
  if (providerStatus("cuda").available) return t.skip("the CUDA EP binaries are installed here");
  const model = encodeModel({ graph: { name: "g", nodes: [], inputs: [], outputs: [], initializers: [] }, opsetVersion: 17 });
  await assert.rejects(createSession(model, { provider: "cuda", graphName: "unet" }), (e: Error) =>
    e instanceof BackendError && e.message.includes(CUDA_INSTALL_COMMAND) && /graph "unet"/.test(e.message));
  assert.equal(CUDA_INSTALL_COMMAND, "ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node");
});

test("session cache: hits share a session, LRU eviction disposes, dispose() releases all", async () => {
  const g: OnnxGraph = {
    name: "neg", initializers: [],
    inputs: [{ name: "x", elemType: 1, dims: [1] }],
    outputs: [{ name: "y", elemType: 1, dims: [1] }],
    nodes: [{ opType: "Neg", inputs: ["x"], outputs: ["y"] }],
  };
  const bytes = encodeModel({ graph: g, opsetVersion: 17 });
  let made = 0;
  const make = () => (made++, createSession(bytes, { provider: "cpu", graphName: "neg", threads: 1 }));
  const cache = new SessionCache(2);
  const a = await cache.getOrCreate("a", "cpu", make);
  assert.equal(await cache.getOrCreate("a", "cpu", make), a);
  const b = await cache.getOrCreate("b", "cpu", make);
  await cache.getOrCreate("a", "cpu", make); // a is now the most recent
  const c = await cache.getOrCreate("c", "cpu", make); // evicts b
  assert.equal(made, 3);
  assert.ok(cache.has("a", "cpu") && cache.has("c", "cpu") && !cache.has("b", "cpu"));
  await new Promise((r) => setImmediate(r));
  await assert.rejects(b.run({ x: f32([1], [1]) }), /disposed/);
  assert.deepEqual([...(await c.run({ x: f32([1], [2]) })).y!.data], [-2]);
  await assert.rejects(cache.getOrCreate("bad", "cpu", () => Promise.reject(new Error("boom"))), /boom/);
  assert.ok(!cache.has("bad", "cpu"));
  await cache.dispose();
  assert.equal(cache.size, 0);
  await assert.rejects(a.run({ x: f32([1], [1]) }), /disposed/);
});

/** Model with one initializer `w` = [10, 20, 30] read from `location` at byte 16, plus x. */
function externalModel(location: string): Uint8Array {
  return encodeModel({
    opsetVersion: 17,
    graph: {
      name: "external", nodes: [{ opType: "Add", inputs: ["x", "w"], outputs: ["y"] }],
      inputs: [{ name: "x", elemType: 1, dims: [3] }],
      outputs: [{ name: "y", elemType: 1, dims: [3] }],
      initializers: [{ name: "w", elemType: 1, dims: [3], external: { location, offset: 16, length: 12 } }],
    },
  });
}

test("external data: same folder and hard link work; a symlink leaving the folder is refused", async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "sdts-external-"));
  try {
    const dir = path.join(root, "model");
    const outside = path.join(root, "checkpoints");
    fs.mkdirSync(dir);
    fs.mkdirSync(outside);
    const blob = new Uint8Array(16 + 12).fill(0xee); // 16 bytes of "header", then 3 floats
    blob.set(new Uint8Array(Float32Array.from([10, 20, 30]).buffer), 16);
    fs.writeFileSync(path.join(dir, "weights.bin"), blob);
    fs.writeFileSync(path.join(outside, "ckpt.safetensors"), blob);
    fs.linkSync(path.join(outside, "ckpt.safetensors"), path.join(dir, "hard.safetensors"));
    fs.symlinkSync(path.join(outside, "ckpt.safetensors"), path.join(dir, "sym.safetensors"));
    const run = async (location: string) => {
      const file = path.join(dir, `${location}.onnx`);
      fs.writeFileSync(file, externalModel(location));
      const s = await createSession(file, { provider: "cpu", graphName: "external", threads: 1 });
      try {
        return [...(await s.run({ x: f32([3], [1, 2, 3]) })).y!.data];
      } finally {
        await s.dispose();
      }
    };
    assert.deepEqual(await run("weights.bin"), [11, 22, 33]);
    assert.deepEqual(await run("hard.safetensors"), [11, 22, 33]);
    // ORT resolves the symlink and refuses: "External data path escapes model directory".
    await assert.rejects(run("sym.safetensors"), (e: Error) =>
      e instanceof BackendError && /graph "external"/.test(e.message) && /escapes model directory/.test(e.message));
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});
