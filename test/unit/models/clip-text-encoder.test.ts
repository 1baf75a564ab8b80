/** The CLIP text encoder against the transformers goldens in ../shared/golden (tiny, tiny-pipeline, tiny-sd2), its config and key map. */
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { input } from "../../../src/graph/apply.js";
import * as g from "../../../src/graph/ops.js";
import { compile } from "../../../src/graph/compile.js";
import { ConfigError, InputError } from "../../../src/errors.js";
import { type SafetensorsFile, openSafetensors } from "../../../src/io/safetensors.js";
import {
  type ClipTextConfig,
  SD15_CLIP,
  SD21_CLIP,
  clipTextParamCount,
  detectClipTextConfig,
  parseClipTextConfig,
} from "../../../src/models/clip/config.js";
import { clipTextKeyPairs, clipTextWeights, detectClipLayout, isUnusedClipTextKey } from "../../../src/models/clip/keys.js";
import { ClipTextEncoder, causalMask, clipTextGraph } from "../../../src/models/clip/text-encoder.js";
import { loadComponent } from "../../../src/models/component.js";
import { type WeightMap, identityWeights } from "../../../src/models/weights.js";
import { ParamRegistry, Scope } from "../../../src/nn/scope.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { GOLDEN_DIR } from "../../golden-dir.js";
import { assertClose as closeTo } from "../../assert-close.js";

const GOLDEN = `${GOLDEN_DIR}/`;
const TOL = 1e-5;

function readJson(rel: string): unknown {
  return JSON.parse(readFileSync(join(GOLDEN, rel), "utf8"));
}

/** Asserts the output's shape and max |a − b| ≤ TOL (report: maxAbs, meanAbs, worst index); returns maxAbs. */
function assertClose(what: string, actual: HostTensor | undefined, expected: ArrayLike<number>, shape: readonly number[]): number {
  assert.ok(actual !== undefined, `${what}: no output`);
  assert.deepEqual(actual.shape, shape, `${what}: shape`);
  return closeTo(what, actual.data as Float32Array, expected, TOL);
}

async function floats(file: SafetensorsFile, name: string): Promise<{ data: Float32Array; shape: number[] }> {
  const info = file.tensors.get(name);
  assert.ok(info, `golden tensor ${name}`);
  return { data: await file.readAsFloat32(name), shape: [...info.shape] };
}

async function ids(file: SafetensorsFile, name: string): Promise<HostTensor> {
  const t = await file.read(name);
  assert.equal(t.dtype, "I64", `${name} dtype`);
  return { dtype: "int64", shape: t.shape, data: t.data as BigInt64Array };
}

function shapesOf(file: SafetensorsFile): Map<string, readonly number[]> {
  return new Map([...file.tensors].map(([k, t]) => [k, t.shape]));
}

/** Parameters the encoder declares for a config, by key → shape. */
function declared(c: ClipTextConfig): Map<string, readonly number[]> {
  const reg = new ParamRegistry();
  new ClipTextEncoder(Scope.root(reg), c);
  return new Map([...reg.params].map(([k, t]) => [k, t.shape as number[]]));
}

/** LayerNorm of each row of x [N, D] in float64: the final LayerNorm applied by hand. */
function layerNormRows(x: Float32Array, w: Float32Array, b: Float32Array, eps: number): Float64Array {
  const d = w.length;
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[r * d + i] as number;
    mean /= d;
    let vr = 0;
    for (let i = 0; i < d; i++) vr += ((x[r * d + i] as number) - mean) ** 2;
    const inv = 1 / Math.sqrt(vr / d + eps);
    for (let i = 0; i < d; i++) out[r * d + i] = ((x[r * d + i] as number) - mean) * inv * (w[i] as number) + (b[i] as number);
  }
  return out;
}

describe("CLIP text config", () => {
  test("parses the golden configs", () => {
    const tiny = parseClipTextConfig(readJson("tiny/text_encoder/config.json"));
    assert.deepEqual(tiny, {
      vocabSize: 1000, hiddenSize: 32, numLayers: 2, numHeads: 4, intermediateSize: 37,
      maxPositions: 77, activation: "quick_gelu", layerNormEps: 1e-5, eosTokenId: 2,
    });
    assert.equal(parseClipTextConfig(readJson("tiny-pipeline/text_encoder/config.json")).vocabSize, 49408);
    const sd2 = parseClipTextConfig(readJson("tiny-sd2/text_encoder_config.json"));
    assert.equal(sd2.activation, "gelu");
    assert.equal(sd2.numLayers, 2);
    assert.equal(sd2.numHeads, 2);
  });

  test("rejects bad values with ConfigError", () => {
    assert.throws(() => parseClipTextConfig({ hidden_size: 30, num_attention_heads: 4 }), ConfigError);
    assert.throws(() => parseClipTextConfig({ hidden_act: "relu" }), /hidden_act "relu" is not supported/);
    assert.throws(() => parseClipTextConfig({ num_hidden_layers: 0 }), ConfigError);
    assert.throws(() => parseClipTextConfig({ model_type: "clip_vision_model" }), ConfigError);
    assert.throws(() => parseClipTextConfig([]), ConfigError);
  });

  test("the SD 1.5 text encoder has 123,060,480 parameters; the SD 2.1 one 340,387,840", () => {
    assert.equal(clipTextParamCount(SD15_CLIP), 123_060_480);
    assert.equal(clipTextParamCount(SD21_CLIP), 340_387_840);
    for (const c of [SD15_CLIP, SD21_CLIP]) {
      const n = [...declared(c).values()].reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
      assert.equal(n, clipTextParamCount(c));
    }
  });

  test("detects the config from shapes in all three layouts", async () => {
    const tiny = await openSafetensors(join(GOLDEN, "tiny/text_encoder/model.safetensors"));
    const sd2 = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
    try {
      assert.equal(detectClipLayout(tiny.tensors.keys()), "diffusers");
      assert.equal(detectClipLayout(sd2.tensors.keys()), "openclip");
      assert.deepEqual(detectClipTextConfig(shapesOf(tiny), { numHeads: 4 }), parseClipTextConfig(readJson("tiny/text_encoder/config.json")));
      assert.throws(() => detectClipTextConfig(shapesOf(tiny)), /numHeads/);
      assert.deepEqual(detectClipTextConfig(shapesOf(sd2), { numHeads: 2 }), parseClipTextConfig(readJson("tiny-sd2/text_encoder_config.json")));
      const sd1File = new Map([...shapesOf(tiny)].map(([k, s]) => [`cond_stage_model.transformer.${k}`, s]));
      assert.equal(detectClipLayout(sd1File.keys()), "sd1");
      assert.equal(detectClipTextConfig(sd1File, { numHeads: 4 }).numLayers, 2);
      // Full-size shapes give the presets.
      const full = (c: ClipTextConfig) => new Map(clipTextKeyPairs(c, "sd1").map((p) => [p.source, declared(c).get(p.canonical) as readonly number[]]));
      assert.deepEqual(detectClipTextConfig(full(SD15_CLIP)), SD15_CLIP);
      // A real SD 2.x file holds 24 OpenCLIP blocks (q/k/v fused) and runs 23.
      const c24 = { ...SD21_CLIP, numLayers: 24 };
      const sd2Full = new Map(
        clipTextKeyPairs(c24, "openclip").map((p) => {
          const s = [...(declared(c24).get(p.canonical) as readonly number[])];
          if (p.rows) s[0] = 3 * c24.hiddenSize;
          return [p.source, s] as const;
        }),
      );
      assert.deepEqual(detectClipTextConfig(sd2Full), SD21_CLIP);
    } finally {
      await tiny.close();
      await sd2.close();
    }
  });
});

describe("CLIP key map", () => {
  test("OpenCLIP in_proj rows tile [0, 3D) as q, k, v", () => {
    const pairs = clipTextKeyPairs(SD21_CLIP, "openclip");
    const d = SD21_CLIP.hiddenSize;
    assert.equal(new Set(pairs.map((p) => p.canonical)).size, pairs.length);
    assert.deepEqual(new Set(pairs.map((p) => p.canonical)), new Set(declared(SD21_CLIP).keys()));
    const w = pairs.filter((p) => p.source === "cond_stage_model.model.transformer.resblocks.5.attn.in_proj_weight");
    assert.deepEqual(w.map((p) => [p.canonical, p.rows]), [
      ["text_model.encoder.layers.5.self_attn.q_proj.weight", [0, d]],
      ["text_model.encoder.layers.5.self_attn.k_proj.weight", [d, 2 * d]],
      ["text_model.encoder.layers.5.self_attn.v_proj.weight", [2 * d, 3 * d]],
    ]);
    // Everything but the fused tensors maps one to one.
    const plain = pairs.filter((p) => p.rows === undefined).map((p) => p.source);
    assert.equal(new Set(plain).size, plain.length);
  });

  test("known-unused keys: the skipped block, the contrastive head, position_ids", () => {
    const c = SD21_CLIP;
    assert.ok(isUnusedClipTextKey(c, "openclip", "cond_stage_model.model.transformer.resblocks.23.ln_1.weight"));
    assert.ok(!isUnusedClipTextKey(c, "openclip", "cond_stage_model.model.transformer.resblocks.22.ln_1.weight"));
    assert.ok(isUnusedClipTextKey(c, "openclip", "cond_stage_model.model.text_projection"));
    assert.ok(isUnusedClipTextKey(c, "openclip", "cond_stage_model.model.logit_scale"));
    assert.ok(isUnusedClipTextKey(SD15_CLIP, "sd1", "cond_stage_model.transformer.text_model.embeddings.position_ids"));
    assert.ok(!isUnusedClipTextKey(SD15_CLIP, "sd1", "model.diffusion_model.out.0.weight"));
  });
});

test("causal mask + softmax: exactly 0 above the diagonal, the prefix softmax below", async () => {
  const len = 5;
  const x = input("x", "float32", [1, 1, len, len]);
  const probs = g.softmax(g.add(x, causalMask(len, "float32")), -1);
  const graph = await compile({ probs });
  try {
    const xs = Float32Array.from({ length: len * len }, (_, i) => Math.sin(i * 1.7) * 30);
    const out = (await graph.run({ x: { dtype: "float32", shape: [1, 1, len, len], data: xs } })).probs?.data as Float32Array;
    for (let i = 0; i < len; i++) {
      const row = Array.from(xs.subarray(i * len, i * len + i + 1));
      const m = Math.max(...row);
      const z = row.reduce((a, v) => a + Math.exp(v - m), 0);
      for (let j = 0; j < len; j++) {
        const p = out[i * len + j] as number;
        if (j > i) assert.equal(p, 0, `p[${i}][${j}]`);
        else assert.ok(Math.abs(p - Math.exp((row[j] as number) - m) / z) < 1e-6, `p[${i}][${j}]`);
      }
    }
  } finally {
    await graph.dispose();
  }
});

describe("CLIP text encoder (tiny, F32, vocab 1000)", () => {
  let io: SafetensorsFile;
  let weightsFile: SafetensorsFile;
  let weights: WeightMap;
  const c = parseClipTextConfig(readJson("tiny/text_encoder/config.json"));
  before(async () => {
    io = await openSafetensors(join(GOLDEN, "tiny/io/text_encoder_io.safetensors"));
    ({ file: weightsFile, weights } = await identityWeights(join(GOLDEN, "tiny/text_encoder/model.safetensors")));
  });
  after(async () => {
    await io.close();
    await weightsFile.close();
  });

  test("last_hidden_state, pooler_output and every hidden state", async () => {
    const graph = await loadComponent("text_encoder", clipTextGraph(c, { batch: 2, hiddenStates: true }), weights);
    try {
      const out = await graph.run({ input_ids: await ids(io, "input_ids") });
      for (const [ours, theirs] of [["last_hidden_state", "last_hidden_state"], ["pooled", "pooler_output"], ["hidden_states.0", "hidden_states.0"], ["hidden_states.1", "hidden_states.1"], ["hidden_states.2", "hidden_states.2"]] as const) {
        const want = await floats(io, theirs);
        assertClose(ours, out[ours], want.data, want.shape);
      }
    } finally {
      await graph.dispose();
    }
  });

  test("clipSkip 2 (A1111 numbering) = final LayerNorm of the penultimate layer's output", async () => {
    const graph = await loadComponent("text_encoder", clipTextGraph(c, { batch: 2, clipSkip: 2 }), weights);
    try {
      const out = await graph.run({ input_ids: await ids(io, "input_ids") });
      const h1 = await floats(io, "hidden_states.1");
      const w = await weightsFile.readAsFloat32("text_model.final_layer_norm.weight");
      const b = await weightsFile.readAsFloat32("text_model.final_layer_norm.bias");
      assertClose("clipSkip 2", out.last_hidden_state, layerNormRows(h1.data, w, b, c.layerNormEps), h1.shape);
    } finally {
      await graph.dispose();
    }
  });

  test("eosTokenId ≠ 2 pools at the first position of that id, or position 0 when it is absent", async () => {
    const graph = await loadComponent("text_encoder", clipTextGraph({ ...c, eosTokenId: 930 }, { batch: 2 }), weights);
    try {
      const feedIds = await ids(io, "input_ids");
      const out = await graph.run({ input_ids: feedIds });
      const last = await floats(io, "last_hidden_state");
      const d = c.hiddenSize;
      const want = new Float32Array(2 * d);
      for (let b = 0; b < 2; b++) {
        const row = Array.from((feedIds.data as BigInt64Array).subarray(b * 77, (b + 1) * 77), Number);
        const pos = Math.max(row.indexOf(930), 0); // row 0 has no 930; row 1 has two in a row
        want.set(last.data.subarray((b * 77 + pos) * d, (b * 77 + pos + 1) * d), b * d);
      }
      assertClose("pooled at id 930", out.pooled, want, [2, d]);
    } finally {
      await graph.dispose();
    }
  });

  test("clipSkip out of range is an InputError", () => {
    const enc = new ClipTextEncoder(Scope.root(new ParamRegistry()), c);
    const x = input("input_ids", "int64", [1, 77]);
    assert.throws(() => enc.forward(x, { clipSkip: 0 }), InputError);
    assert.throws(() => enc.forward(x, { clipSkip: 3 }), InputError);
  });
});

test("CLIP text encoder (tiny-pipeline, F16 weights, full vocab): prompt_embeds of every case", async () => {
  const c = parseClipTextConfig(readJson("tiny-pipeline/text_encoder/config.json"));
  const { file, weights } = await identityWeights(join(GOLDEN, "tiny-pipeline/text_encoder/model.safetensors"));
  const graph = await loadComponent("text_encoder", clipTextGraph(c, { batch: 1 }), weights);
  try {
    const dir = join(GOLDEN, "tiny-pipeline/cases");
    for (const name of readdirSync(dir).filter((f) => f.endsWith(".safetensors"))) {
      const cs = await openSafetensors(join(dir, name));
      try {
        for (const [idsName, embName] of [["input_ids", "prompt_embeds"], ["negative_input_ids", "negative_prompt_embeds"]] as const) {
          if (!cs.tensors.has(embName)) continue;
          const out = await graph.run({ input_ids: await ids(cs, idsName) });
          const want = await floats(cs, embName); // [n, 77, 32]: the same row repeated n times
          const row = want.data.subarray(0, 77 * c.hiddenSize);
          assertClose(`${name} ${embName}`, out.last_hidden_state, row, [1, 77, c.hiddenSize]);
        }
      } finally {
        await cs.close();
      }
    }
  } finally {
    await graph.dispose();
    await file.close();
  }
});

describe("CLIP text encoder (tiny-sd2, OpenCLIP single file)", () => {
  let io: SafetensorsFile;
  let ckpt: SafetensorsFile;
  const c = parseClipTextConfig(readJson("tiny-sd2/text_encoder_config.json"));
  before(async () => {
    io = await openSafetensors(join(GOLDEN, "tiny-sd2/cases/text_encoder_io.safetensors"));
    ckpt = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
  });
  after(async () => {
    await io.close();
    await ckpt.close();
  });

  test("context, pooler_output and hidden states through the OpenCLIP key map", async () => {
    const graph = await loadComponent("text_encoder", clipTextGraph(c, { batch: 2, hiddenStates: true }), clipTextWeights(ckpt, c, "openclip"));
    try {
      const out = await graph.run({ input_ids: await ids(io, "input_ids") });
      for (const [ours, theirs] of [["last_hidden_state", "context"], ["pooled", "pooler_output"], ["hidden_states.0", "hidden_states.0"], ["hidden_states.1", "hidden_states.1"], ["hidden_states.2", "hidden_states.2"]] as const) {
        const want = await floats(io, theirs);
        assertClose(ours, out[ours], want.data, want.shape);
      }
    } finally {
      await graph.dispose();
    }
  });

  test("all 3 blocks give all_layers_final_ln; 3 blocks with clipSkip 2 give context", async () => {
    const c3 = { ...c, numLayers: 3 };
    const weights = clipTextWeights(ckpt, c3, "openclip");
    for (const [clipSkip, golden] of [[1, "all_layers_final_ln"], [2, "context"]] as const) {
      const graph = await loadComponent("text_encoder", clipTextGraph(c3, { batch: 2, clipSkip }), weights);
      try {
        const out = await graph.run({ input_ids: await ids(io, "input_ids") });
        const want = await floats(io, golden);
        assertClose(`3 blocks, clipSkip ${clipSkip}`, out.last_hidden_state, want.data, want.shape);
      } finally {
        await graph.dispose();
      }
    }
  });

  test("loading is strict: an unknown tensor under the prefix is reported", () => {
    const fake = { ...ckpt, tensors: new Map([...ckpt.tensors, ["cond_stage_model.model.extra", { name: "x", dtype: "F16" as const, shape: [1], byteOffset: 0, byteLength: 2 }]]) };
    const w = clipTextWeights(fake, c, "openclip");
    assert.ok(w.has("cond_stage_model.model.extra"));
    assert.ok(!w.has("cond_stage_model.model.transformer.resblocks.2.ln_1.weight"));
    assert.ok(!w.has("cond_stage_model.model.text_projection"));
  });
});
