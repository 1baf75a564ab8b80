/**
 * Weights bound as external data (byte ranges of the checkpoint, hard-linked into a cache folder)
 * give the same outputs as inline weights and the goldens in ../shared/golden: F32 and F16 files,
 * OpenCLIP's fused q/k/v row ranges, BF16 data (converted into a data file), and a cache on a
 * filesystem that cannot link (every tensor written into a data file).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type CompiledGraph, compile } from "../../../src/graph/compile.js";
import { type SafetensorsFile, f32ToBf16, openSafetensors, writeSafetensors } from "../../../src/io/safetensors.js";
import { parseClipTextConfig } from "../../../src/models/clip/config.js";
import { clipTextWeights } from "../../../src/models/clip/keys.js";
import { clipTextGraph } from "../../../src/models/clip/text-encoder.js";
import { type ComponentOptions, loadComponent } from "../../../src/models/component.js";
import { parseUNetConfig } from "../../../src/models/unet/config.js";
import { buildUNetGraph } from "../../../src/models/unet/unet.js";
import { type WeightMap, externalInitializers, identityWeights, storedRange } from "../../../src/models/weights.js";
import { ParamRegistry, Scope } from "../../../src/nn/scope.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { openModelDir } from "../../../src/runtime/model-cache.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const GOLDEN = `${GOLDEN_DIR}/`;
const TOL = 1e-5;

function maxAbs(a: HostTensor | undefined, b: Float32Array | HostTensor | undefined): number {
  const x = a?.data as Float32Array;
  const y = (b instanceof Float32Array ? b : b?.data) as Float32Array;
  assert.equal(x.length, y.length);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs((x[i] as number) - (y[i] as number)));
  return m;
}

async function withGraph<T>(g: Promise<CompiledGraph>, use: (g: CompiledGraph) => Promise<T>): Promise<T> {
  const graph = await g;
  try {
    return await use(graph);
  } finally {
    await graph.dispose();
  }
}

describe("external weights", () => {
  let cache: string;
  let io: SafetensorsFile;
  let feeds: Record<string, HostTensor>;
  const unetConfig = parseUNetConfig(JSON.parse(readFileSync(join(GOLDEN, "tiny/unet/config.json"), "utf8")));
  const buildUNet = (root: Scope) => buildUNetGraph(root, unetConfig, { batch: 2, height: 16, width: 16 });
  const runUNet = (weights: WeightMap, opts: ComponentOptions) => withGraph(loadComponent("unet[test]", buildUNet, weights, opts), (g) => g.run(feeds));

  before(async () => {
    cache = await mkdtemp(join(tmpdir(), "sdts-ext-weights-"));
    io = await openSafetensors(join(GOLDEN, "tiny/io/unet_io.safetensors"));
    const t = await io.readAsFloat32("t10.timestep");
    feeds = {
      sample: { dtype: "float32", shape: [2, 4, 16, 16], data: await io.readAsFloat32("sample") },
      timestep: { dtype: "float32", shape: [2], data: new Float32Array(2).fill(t[0] as number) },
      encoder_hidden_states: { dtype: "float32", shape: [2, 77, 32], data: await io.readAsFloat32("encoder_hidden_states") },
    };
  });
  after(async () => {
    await io.close();
    await rm(cache, { recursive: true, force: true });
  });

  test("tiny U-Net (F32): external equals inline exactly and the golden within 1e-5; the folder holds a link and the model", async () => {
    const { file, weights } = await identityWeights(join(GOLDEN, "tiny/unet/diffusion_pytorch_model.safetensors"));
    try {
      const root = join(cache, "a");
      const inline = await runUNet(weights, { weights: "inline" });
      const external = await runUNet(weights, { weights: "external", cacheDir: root });
      assert.equal(maxAbs(external["out"], inline["out"]), 0);
      const err = maxAbs(external["out"], await io.readAsFloat32("t10.out"));
      assert.ok(err <= TOL, `maxAbs ${err}`);
      const [dir] = await readdir(root);
      const files = (await readdir(join(root, dir as string))).sort();
      assert.deepEqual(files.filter((f) => !f.includes(".onnx") && !f.endsWith(".opt.bin")), ["sources.json", "w0.safetensors"], "no data file when every tensor is linked");
      assert.ok(files.some((f) => /^unet-test-[0-9a-f]{12}\.onnx$/.test(f)), "the model");
      assert.ok(files.some((f) => /^unet-test-[0-9a-f]{12}\.opt\.onnx$/.test(f)), "its optimized copy");
      // the second load starts from the optimized copy, with the same result
      const again = await runUNet(weights, { weights: "external", cacheDir: root });
      assert.equal(maxAbs(again["out"], inline["out"]), 0);
      // "auto" keeps small models inline: nothing new is written
      await runUNet(weights, { cacheDir: join(cache, "auto") });
      assert.deepEqual(await readdir(cache).then((d) => d.includes("auto")), false);
    } finally {
      await file.close();
    }
  });

  test("a cache that cannot hard-link gets the tensors in a data file, with the same outputs", async () => {
    const { file, weights } = await identityWeights(join(GOLDEN, "tiny/unet/diffusion_pytorch_model.safetensors"));
    try {
      const inline = await runUNet(weights, { weights: "inline" });
      // a cache on another filesystem: link() fails with EXDEV
      const root = join(cache, "b");
      const exdev = () => Promise.reject(Object.assign(new Error("cross-device"), { code: "EXDEV" }));
      const dir = await openModelDir([file.path], { root, link: exdev });
      assert.equal(dir.location(file.path), undefined);
      const reg = new ParamRegistry();
      const outputs = buildUNet(Scope.root(reg));
      const inits = await externalInitializers(reg.params, weights, dir, "unet");
      assert.ok([...inits.values()].every((i) => i.kind === "external" && /^unet-[0-9a-f]{12}\.bin$/.test(i.location)));
      const out = await withGraph(compile(outputs, { initializers: inits, openSession: (b, o) => dir.openSession("m", b, o) }), (g) => g.run(feeds));
      assert.equal(maxAbs(out["out"], inline["out"]), 0);
    } finally {
      await file.close();
    }
  });

  test("BF16 weights are converted into a data file; the rest stays linked", async () => {
    const src = await openSafetensors(join(GOLDEN, "tiny/unet/diffusion_pytorch_model.safetensors"));
    const path = join(cache, "bf16.safetensors");
    const tensors = new Map();
    let i = 0;
    for (const name of src.tensors.keys()) {
      const data = await src.readAsFloat32(name);
      // every other tensor in BF16, so one file mixes linked and converted tensors
      tensors.set(name, i++ % 2 === 0 ? { dtype: "BF16", shape: src.tensors.get(name)?.shape, data: f32ToBf16(data) } : { dtype: "F32", shape: src.tensors.get(name)?.shape, data });
    }
    await src.close();
    await writeSafetensors(path, tensors);
    const { file, weights } = await identityWeights(path);
    try {
      const someBf16 = [...weights.values()].find((r) => file.tensors.get(r.name)?.dtype === "BF16");
      assert.ok(someBf16 && storedRange(someBf16, "float32") === undefined, "BF16 data is not readable as stored");
      const inline = await runUNet(weights, { weights: "inline" });
      const root = join(cache, "c");
      const external = await runUNet(weights, { weights: "external", cacheDir: root });
      assert.equal(maxAbs(external["out"], inline["out"]), 0);
      const [dir] = await readdir(root);
      assert.ok((await readdir(join(root, dir as string))).some((f) => /^unet-[0-9a-f]{12}\.bin$/.test(f)), "the converted tensors' data file");
    } finally {
      await file.close();
    }
  });

  test("tiny SD 2.x text encoder (F16 single file, q/k/v as row ranges of in_proj): F16 kept or widened, matches the golden", async () => {
    const c = parseClipTextConfig(JSON.parse(readFileSync(join(GOLDEN, "tiny-sd2/text_encoder_config.json"), "utf8")));
    const ckpt = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
    const te = await openSafetensors(join(GOLDEN, "tiny-sd2/cases/text_encoder_io.safetensors"));
    try {
      const weights = clipTextWeights(ckpt, c, "openclip");
      assert.ok([...weights.values()].some((r) => r.rows !== undefined));
      const ids = await te.read("input_ids");
      assert.equal(ids.dtype, "I64");
      const feeds = { input_ids: { dtype: "int64", shape: [2, 77], data: ids.data as BigInt64Array } } as const;
      const want = await te.readAsFloat32("context");
      for (const halfWeights of ["keep", "widen"] as const) {
        const root = join(cache, `d-${halfWeights}`);
        const opts: ComponentOptions = { weights: "external", cacheDir: root, halfWeights };
        const out = await withGraph(loadComponent("text-encoder[2x77]", clipTextGraph(c, { batch: 2 }), weights, opts), (g) => g.run(feeds));
        const err = maxAbs(out["last_hidden_state"], want);
        assert.ok(err <= TOL, `${halfWeights}: maxAbs ${err}`);
        const [dir] = await readdir(root);
        const data = (await readdir(join(root, dir as string))).filter((f) => f.endsWith(".bin") && !f.endsWith(".opt.bin"));
        // "keep" reads every F16 tensor (and q/k/v row range) from the linked file; "widen" writes float32 copies
        assert.equal(data.length, halfWeights === "keep" ? 0 : 1, `${halfWeights}: data files ${data.join(", ")}`);
      }
    } finally {
      await ckpt.close();
      await te.close();
    }
  });
});
