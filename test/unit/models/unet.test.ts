/** The U-Net against the diffusers goldens in ../shared/golden (tiny/, tiny-sd2/), its config, presets and key map. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../../../src/errors.js";
import type { CompiledGraph } from "../../../src/graph/compile.js";
import { type SafetensorsFile, openSafetensors } from "../../../src/io/safetensors.js";
import { loadComponent } from "../../../src/models/component.js";
import { SD15_UNET, SD21_UNET, type UNetConfig, detectUNetConfig, parseUNetConfig } from "../../../src/models/unet/config.js";
import {
  SD_UNET_PREFIX,
  canonicalUNetKey,
  detectOriginalUNetConfig,
  detectUNetLayout,
  unetKeyPairs,
  unetLayout,
  unetPrefixRules,
  unetWeights,
} from "../../../src/models/unet/keys.js";
import { UNet2DConditionModel, buildUNetGraph } from "../../../src/models/unet/unet.js";
import { type WeightMap, identityWeights } from "../../../src/models/weights.js";
import { ParamRegistry, Scope } from "../../../src/nn/scope.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { GOLDEN_DIR } from "../../golden-dir.js";
import { assertClose as closeTo } from "../../assert-close.js";

const GOLDEN = `${GOLDEN_DIR}/`;
const TOL = 1e-5;
const TRACE = ["time_proj", "time_embedding", "conv_in", "down_blocks.0", "down_blocks.1", "mid_block", "up_blocks.0", "up_blocks.1", "conv_norm_out"];

function readJson(rel: string): unknown {
  return JSON.parse(readFileSync(join(GOLDEN, rel), "utf8"));
}

/** Asserts max |a − b| ≤ TOL (report: maxAbs, meanAbs, worst index); returns maxAbs. */
function assertClose(what: string, actual: HostTensor | undefined, expected: Float32Array): number {
  assert.ok(actual !== undefined, `${what}: no output`);
  return closeTo(what, actual.data as Float32Array, expected, TOL);
}

function f32(shape: number[], data: Float32Array): HostTensor {
  return { dtype: "float32", shape, data };
}

function shapesOf(file: SafetensorsFile): Map<string, readonly number[]> {
  return new Map([...file.tensors].map(([k, t]) => [k, t.shape]));
}

function declared(c: UNetConfig): Map<string, readonly number[]> {
  const reg = new ParamRegistry();
  new UNet2DConditionModel(Scope.root(reg), c);
  return new Map([...reg.params].map(([k, t]) => [k, t.shape as number[]]));
}

/** Runs a golden case: timesteps given as one value are repeated over the batch, as diffusers broadcasts them. */
async function runCase(unet: CompiledGraph, io: SafetensorsFile, tag: string, shape: number[], ctxShape: number[]): Promise<Record<string, HostTensor>> {
  const b = shape[0] as number;
  const t = await io.readAsFloat32(`${tag}.timestep`);
  const timestep = t.length === b ? t : new Float32Array(b).fill(t[0] as number);
  return unet.run({
    sample: f32(shape, await io.readAsFloat32("sample")),
    timestep: f32([b], timestep),
    encoder_hidden_states: f32(ctxShape, await io.readAsFloat32("encoder_hidden_states")),
  });
}

describe("tiny U-Net (diffusers folder, F32; symbolic batch and context length)", () => {
  let io: SafetensorsFile;
  let unet: CompiledGraph;
  let config: UNetConfig;
  before(async () => {
    config = parseUNetConfig(readJson("tiny/unet/config.json"));
    const { file, weights } = await identityWeights(join(GOLDEN, "tiny/unet/diffusion_pytorch_model.safetensors"));
    unet = await loadComponent("unet", (root) => buildUNetGraph(root, config, { batch: "B", height: 16, width: 16, contextLength: "L", trace: TRACE }), weights);
    await file.close();
    io = await openSafetensors(join(GOLDEN, "tiny/io/unet_io.safetensors"));
  });
  after(async () => {
    await unet.dispose();
    await io.close();
  });

  for (const tag of ["t10", "t981", "tbatch"]) {
    test(`${tag}: output and every intermediate within ${TOL}`, async (t) => {
      const r = await runCase(unet, io, tag, [2, 4, 16, 16], [2, 77, 32]);
      t.diagnostic(`maxAbs ${assertClose(`${tag}.out`, r["out"], await io.readAsFloat32(`${tag}.out`)).toExponential(2)}`);
      for (const name of TRACE) assertClose(`${tag}.${name}`, r[`trace.${name}`], await io.readAsFloat32(`${tag}.intermediate.${name}`));
    });
  }

  test("detectUNetConfig recovers the folder's config from its shapes", async () => {
    const { file } = await identityWeights(join(GOLDEN, "tiny/unet/diffusion_pytorch_model.safetensors"));
    const detected = detectUNetConfig(shapesOf(file));
    await file.close();
    const { sampleSize: _, ...want } = config;
    assert.deepEqual(detected, want);
  });
});

describe("tiny SD 2.x U-Net (single file, F16, linear projections)", () => {
  let file: SafetensorsFile;
  let config: UNetConfig;
  before(async () => {
    config = parseUNetConfig(readJson("tiny-sd2/unet_config.json"));
    file = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
  });
  after(() => file.close());

  test("config: attention_head_dim [2, 4] is the head count per level", () => {
    assert.deepEqual(config.numHeads, [2, 4]);
    assert.deepEqual(config.crossAttention, [true, false]);
    assert.equal(config.linearProjection, true);
  });

  test("key map: every canonical key is in the file with its size, and no U-Net tensor is left over", () => {
    const pairs = unetKeyPairs(config);
    const shapes = declared(config);
    for (const p of pairs) {
      const info = file.tensors.get(p.source);
      assert.ok(info, `${p.canonical} → ${p.source} not in the file`);
      const want = shapes.get(p.canonical) as readonly number[];
      assert.deepEqual(info.shape, want, `${p.source} shape`);
    }
    const sources = new Set(pairs.map((p) => p.source));
    const left = [...file.tensors.keys()].filter((k) => k.startsWith(SD_UNET_PREFIX) && !sources.has(k));
    assert.deepEqual(left, []);
    assert.equal(new Set(pairs.map((p) => p.canonical)).size, pairs.length);
  });

  test("key map works both ways", () => {
    const rules = unetPrefixRules(unetLayout(config));
    for (const p of unetKeyPairs(config)) assert.equal(canonicalUNetKey(p.source.slice(SD_UNET_PREFIX.length), rules), p.canonical);
  });

  test("layout and config detection from original-layout shapes", () => {
    assert.deepEqual(detectUNetLayout(file.tensors.keys()), { levels: 2, layersPerBlock: 2, crossAttention: [true, false] });
    const { sampleSize: _, ...want } = config;
    assert.deepEqual(detectOriginalUNetConfig(shapesOf(file), SD_UNET_PREFIX, { numHeads: [2, 4] }), want);
    assert.throws(() => detectOriginalUNetConfig(shapesOf(file)), ConfigError, "channels 32/64 do not give heads of 64");
  });

  test("t10 and t981 within 1e-5 (fp32 from fp16 weights)", async (t) => {
    const weights: WeightMap = unetWeights(file, config);
    const unet = await loadComponent("unet", (root) => buildUNetGraph(root, config, { batch: 1, height: 32, width: 32 }), weights);
    const io = await openSafetensors(join(GOLDEN, "tiny-sd2/cases/unet_io.safetensors"));
    try {
      for (const tag of ["t10", "t981"]) {
        const r = await runCase(unet, io, tag, [1, 4, 32, 32], [1, 77, 8]);
        t.diagnostic(`${tag} maxAbs ${assertClose(`${tag}.out`, r["out"], await io.readAsFloat32(`${tag}.out`)).toExponential(2)}`);
      }
    } finally {
      await unet.dispose();
      await io.close();
    }
  });
});

describe("U-Net graph options", () => {
  test("attn_maps: [B, H·W, L] for a long (2·77) context, each position a distribution over tokens", async () => {
    const config = parseUNetConfig(readJson("tiny/unet/config.json"));
    const { file, weights } = await identityWeights(join(GOLDEN, "tiny/unet/diffusion_pytorch_model.safetensors"));
    const L = 154;
    const unet = await loadComponent("unet", (root) => buildUNetGraph(root, config, { batch: 1, height: 15, width: 12, contextLength: L, attnMaps: true }), weights);
    await file.close();
    try {
      const ctx = Float32Array.from({ length: L * 32 }, (_, i) => Math.sin(i * 0.37));
      const sample = Float32Array.from({ length: 4 * 15 * 12 }, (_, i) => Math.cos(i * 0.11));
      const r = await unet.run({ sample: f32([1, 4, 15, 12], sample), timestep: f32([1], Float32Array.of(500)), encoder_hidden_states: f32([1, L, 32], ctx) });
      assert.deepEqual(r["out"]?.shape, [1, 4, 15, 12]);
      const maps = r["attn_maps"];
      assert.deepEqual(maps?.shape, [1, 15 * 12, L]);
      const m = maps?.data as Float32Array;
      for (let p = 0; p < 15 * 12; p++) {
        let s = 0;
        for (let l = 0; l < L; l++) s += m[p * L + l] as number;
        assert.ok(Math.abs(s - 1) < 1e-5, `position ${p} sums to ${s}`);
      }
    } finally {
      await unet.dispose();
    }
  });
});

describe("U-Net config", () => {
  const count = (c: UNetConfig) => [...declared(c).values()].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);

  test("SD15_UNET declares the 859,520,964 parameters of the SD 1.5 U-Net", () => {
    assert.equal(count(SD15_UNET), 859_520_964);
  });

  test("SD21_UNET declares the 865,910,724 parameters of the SD 2.1 U-Net", () => {
    assert.equal(count(SD21_UNET), 865_910_724);
  });

  test("full-size graphs build: SD 1.5 at 64×64 (batch 2, attn_maps), SD 2.1 at 96×96 with a 3·77 context", () => {
    const sd15 = buildUNetGraph(Scope.root(new ParamRegistry()), SD15_UNET, { batch: 2, height: 64, width: 64, attnMaps: true });
    assert.deepEqual(sd15["out"]?.shape, [2, 4, 64, 64]);
    assert.deepEqual(sd15["attn_maps"]?.shape, [2, 4096, 77]);
    const sd21 = buildUNetGraph(Scope.root(new ParamRegistry()), SD21_UNET, { batch: 2, height: 96, width: 96, contextLength: 231 });
    assert.deepEqual(sd21["out"]?.shape, [2, 4, 96, 96]);
  });

  test("presets map to original keys and detect back from their shapes", () => {
    for (const c of [SD15_UNET, SD21_UNET]) {
      const shapes = declared(c);
      const original = new Map(unetKeyPairs(c).map((p) => [p.source, shapes.get(p.canonical) as readonly number[]]));
      const { sampleSize: _, ...want } = c;
      assert.deepEqual(detectOriginalUNetConfig(original), want);
    }
  });

  test("an inpainting config (in_channels 9) parses", () => {
    assert.equal(parseUNetConfig({ in_channels: 9, cross_attention_dim: 768 }).inChannels, 9);
  });

  test("num_attention_heads wins over attention_head_dim", () => {
    assert.deepEqual(parseUNetConfig({ attention_head_dim: 8, num_attention_heads: [5, 10, 20, 20] }).numHeads, [5, 10, 20, 20]);
  });

  test("unsupported or inconsistent configs are ConfigErrors", () => {
    const bad: Record<string, unknown>[] = [
      { addition_embed_type: "text_time" },
      { time_cond_proj_dim: 256 },
      { up_block_types: ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"] },
      { block_out_channels: [320, 640] },
      { norm_num_groups: 48 },
      { attention_head_dim: [8, 8] },
      { attention_head_dim: 7 },
      { layers_per_block: [2, 2, 2, 2] },
      { transformer_layers_per_block: [1, 2, 10, 10] },
      { _class_name: "UNet2DModel" },
    ];
    for (const j of bad) assert.throws(() => parseUNetConfig(j), ConfigError, JSON.stringify(j));
  });
});
