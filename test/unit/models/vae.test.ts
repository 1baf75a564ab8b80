/** The KL autoencoder against the diffusers goldens in ../shared/golden (tiny/vae, tiny-sd2), its config and key map. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { input } from "../../../src/graph/apply.js";
import { ConfigError } from "../../../src/errors.js";
import { type SafetensorsFile, openSafetensors } from "../../../src/io/safetensors.js";
import { loadComponent } from "../../../src/models/component.js";
import { SD_VAE, type VaeConfig, detectVaeConfig, parseVaeConfig, vaeScaleFactor } from "../../../src/models/vae/config.js";
import { SD_VAE_PREFIX, splitVaeWeights, vaeKeyPairs, vaeWeightsFromCompVis } from "../../../src/models/vae/keys.js";
import { VaeDecoder, VaeEncoder } from "../../../src/models/vae/vae.js";
import { type WeightMap, checkWeights, identityWeights } from "../../../src/models/weights.js";
import { ParamRegistry, Scope } from "../../../src/nn/scope.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { GOLDEN_DIR } from "../../golden-dir.js";
import { assertCloseReport } from "../../assert-close.js";

const GOLDEN = `${GOLDEN_DIR}/`;
const TOL = 1e-5;

function readJson(rel: string): unknown {
  return JSON.parse(readFileSync(join(GOLDEN, rel), "utf8"));
}

/** Asserts the output's shape and max |a − b| ≤ TOL; returns the report (maxAbs, meanAbs, worst index). */
function assertClose(what: string, actual: HostTensor | undefined, expected: Float32Array, shape: readonly number[]): string {
  assert.ok(actual !== undefined, `${what}: no output`);
  assert.deepEqual(actual.shape, shape, `${what}: shape`);
  return assertCloseReport(what, actual.data as Float32Array, expected, TOL).message;
}

async function feed(file: SafetensorsFile, name: string): Promise<HostTensor> {
  const info = file.tensors.get(name);
  assert.ok(info, `golden tensor ${name}`);
  return { dtype: "float32", shape: [...info.shape], data: await file.readAsFloat32(name) };
}

function encoderGraph(c: VaeConfig, shape: readonly number[]) {
  return (root: Scope) => {
    const p = new VaeEncoder(root, c).forward(input("image", "float32", shape));
    return { hidden: p.hidden, mean: p.mean, logvar: p.logvar, std: p.std };
  };
}

function decoderGraph(c: VaeConfig, shape: readonly number[]) {
  return (root: Scope) => ({ image: new VaeDecoder(root, c).forward(input("latent", "float32", shape)) });
}

/** Parameters the encoder and decoder declare for a config, by key → shape. */
function declared(c: VaeConfig): Map<string, readonly number[]> {
  const reg = new ParamRegistry();
  const root = Scope.root(reg);
  new VaeEncoder(root, c);
  new VaeDecoder(root, c);
  return new Map([...reg.params].map(([k, t]) => [k, t.shape as number[]]));
}

function shapesOf(file: SafetensorsFile): Map<string, readonly number[]> {
  return new Map([...file.tensors].map(([k, t]) => [k, t.shape]));
}

describe("VAE config", () => {
  test("parses the golden configs", () => {
    const tiny = parseVaeConfig(readJson("tiny/vae/config.json"));
    assert.deepEqual(tiny.blockOutChannels, [32, 64]);
    assert.equal(tiny.layersPerBlock, 1);
    assert.equal(tiny.latentChannels, 4);
    assert.equal(tiny.scalingFactor, 0.18215);
    assert.equal(vaeScaleFactor(tiny), 2);
    const sd2 = parseVaeConfig(readJson("tiny-sd2/vae_config.json"));
    assert.deepEqual(sd2.blockOutChannels, [32, 32]);
    assert.equal(vaeScaleFactor(SD_VAE), 8);
  });

  test("rejects bad configs with ConfigError", () => {
    const base = readJson("tiny/vae/config.json") as Record<string, unknown>;
    assert.throws(() => parseVaeConfig([]), ConfigError);
    assert.throws(() => parseVaeConfig({ ...base, block_out_channels: [32, 48] }), /divide by norm_num_groups/);
    assert.throws(() => parseVaeConfig({ ...base, layers_per_block: 0 }), /layers_per_block/);
    assert.throws(() => parseVaeConfig({ ...base, down_block_types: ["DownEncoderBlock2D"] }), /down_block_types/);
    assert.throws(() => parseVaeConfig({ ...base, act_fn: "gelu" }), /act_fn/);
    assert.throws(() => parseVaeConfig({ ...base, _class_name: "AutoencoderTiny" }), /AutoencoderKL/);
  });

  test("SD preset: encoder + decoder + quant convs hold 83,653,863 parameters", () => {
    let n = 0;
    for (const s of declared(SD_VAE).values()) n += s.reduce((a, b) => a * b, 1);
    assert.equal(n, 83_653_863);
  });

  test("detects the config from diffusers and CompVis shapes", async () => {
    const tinyFile = await openSafetensors(join(GOLDEN, "tiny/vae/diffusion_pytorch_model.safetensors"));
    const sd2File = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
    try {
      assert.deepEqual(detectVaeConfig(shapesOf(tinyFile)), parseVaeConfig(readJson("tiny/vae/config.json")));
      assert.deepEqual(detectVaeConfig(shapesOf(sd2File), SD_VAE_PREFIX), parseVaeConfig(readJson("tiny-sd2/vae_config.json")));
      assert.deepEqual(detectVaeConfig(declared(SD_VAE)), SD_VAE);
      assert.throws(() => detectVaeConfig(shapesOf(tinyFile), SD_VAE_PREFIX), ConfigError);
    } finally {
      await tinyFile.close();
      await sd2File.close();
    }
  });
});

describe("VAE key map", () => {
  test("canonical side = the declared parameters (SD and tiny configs)", () => {
    for (const c of [SD_VAE, parseVaeConfig(readJson("tiny/vae/config.json"))]) {
      const params = declared(c);
      const pairs = vaeKeyPairs(c);
      assert.deepEqual(new Set(pairs.map((p) => p.canonical)), new Set(params.keys()));
      assert.equal(new Set(pairs.map((p) => p.source)).size, pairs.length, "source keys are unique");
      for (const p of pairs) {
        if (p.sourceShape) assert.deepEqual([...p.sourceShape, 1, 1].slice(0, 4), [...(params.get(p.canonical) ?? []), 1, 1]);
      }
    }
  });

  test("source side = the first_stage_model.* tensors of tiny-sd2, with equal sizes", async () => {
    const file = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
    try {
      const c = parseVaeConfig(readJson("tiny-sd2/vae_config.json"));
      const inFile = [...file.tensors.keys()].filter((k) => k.startsWith(SD_VAE_PREFIX));
      const pairs = vaeKeyPairs(c);
      assert.deepEqual(new Set(pairs.map((p) => p.source)), new Set(inFile));
      const params = declared(c);
      for (const p of pairs) {
        assert.deepEqual(file.tensors.get(p.source)?.shape, p.sourceShape ?? params.get(p.canonical), p.source);
      }
    } finally {
      await file.close();
    }
  });
});

describe("VAE graphs", () => {
  test("SD preset: 64×64 image ↔ 4×8×8 latent", () => {
    const reg = new ParamRegistry();
    const p = new VaeEncoder(Scope.root(reg), SD_VAE).forward(input("image", "float32", [2, 3, 64, 64]));
    assert.deepEqual(p.hidden.shape, [2, 8, 8, 8]);
    for (const t of [p.mean, p.logvar, p.std]) assert.deepEqual(t.shape, [2, 4, 8, 8]);
    const img = new VaeDecoder(Scope.root(new ParamRegistry()), SD_VAE).forward(input("latent", "float32", [2, 4, 8, 8]));
    assert.deepEqual(img.shape, [2, 3, 64, 64]);
  });

  test("strict loading of a CompVis file: both halves bind, stray tensors are reported", async () => {
    const file = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
    try {
      const c = parseVaeConfig(readJson("tiny-sd2/vae_config.json"));
      const halves = splitVaeWeights(vaeWeightsFromCompVis(file, c));
      const enc = new ParamRegistry();
      new VaeEncoder(Scope.root(enc), c);
      const dec = new ParamRegistry();
      new VaeDecoder(Scope.root(dec), c);
      checkWeights("vae_encoder", enc.params, halves.encoder);
      checkWeights("vae_decoder", dec.params, halves.decoder);
      const stray = { ...file, tensors: new Map([...file.tensors, ["first_stage_model.loss.logvar", { name: "x", dtype: "F32", shape: [], byteOffset: 0, byteLength: 4 }]]) };
      const withStray = splitVaeWeights(vaeWeightsFromCompVis(stray as SafetensorsFile, c));
      assert.throws(() => checkWeights("vae_decoder", dec.params, withStray.decoder), /unexpected 1: first_stage_model\.loss\.logvar/);
    } finally {
      await file.close();
    }
  });
});

describe("VAE goldens (tiny, diffusers layout)", () => {
  const c = parseVaeConfig(readJson("tiny/vae/config.json"));
  let weights: { encoder: WeightMap; decoder: WeightMap };
  let io: SafetensorsFile;
  const files: SafetensorsFile[] = [];
  before(async () => {
    const w = await identityWeights(join(GOLDEN, "tiny/vae/diffusion_pytorch_model.safetensors"));
    weights = splitVaeWeights(w.weights);
    io = await openSafetensors(join(GOLDEN, "tiny/io/vae_io.safetensors"));
    files.push(w.file, io);
  });
  after(async () => {
    for (const f of files) await f.close();
  });

  test("encoder: encoder_out, latent_mean, latent_logvar, latent_std, latent_sample", async (t) => {
    const image = await feed(io, "image");
    const g = await loadComponent("vae_encoder", encoderGraph(c, image.shape), weights.encoder);
    try {
      const out = await g.run({ image });
      const shape = [1, 4, 16, 16];
      t.diagnostic(assertClose("encoder_out", out.hidden, await io.readAsFloat32("encoder_out"), [1, 8, 16, 16]));
      t.diagnostic(assertClose("latent_mean", out.mean, await io.readAsFloat32("latent_mean"), shape));
      t.diagnostic(assertClose("latent_logvar", out.logvar, await io.readAsFloat32("latent_logvar"), shape));
      t.diagnostic(assertClose("latent_std", out.std, await io.readAsFloat32("latent_std"), shape));
      const eps = await io.readAsFloat32("sample_eps");
      const mean = out.mean?.data as Float32Array;
      const std = out.std?.data as Float32Array;
      const sample = Float32Array.from(eps, (e, i) => (mean[i] as number) + (std[i] as number) * e);
      t.diagnostic(assertClose("latent_sample", { dtype: "float32", shape, data: sample }, await io.readAsFloat32("latent_sample"), shape));
    } finally {
      await g.dispose();
    }
  });

  test("decoder: decode_in → decode_out", async (t) => {
    const latent = await feed(io, "decode_in");
    const g = await loadComponent("vae_decoder", decoderGraph(c, latent.shape), weights.decoder);
    try {
      const out = await g.run({ latent });
      t.diagnostic(assertClose("decode_out", out.image, await io.readAsFloat32("decode_out"), [1, 3, 32, 32]));
    } finally {
      await g.dispose();
    }
  });
});

describe("VAE goldens (tiny-sd2, CompVis single-file layout, F16 weights)", () => {
  test("decoder through the key map: decode_in → decode_out", async (t) => {
    const c = parseVaeConfig(readJson("tiny-sd2/vae_config.json"));
    const ckpt = await openSafetensors(join(GOLDEN, "tiny-sd2/tiny-sd2.safetensors"));
    const io = await openSafetensors(join(GOLDEN, "tiny-sd2/cases/vae_io.safetensors"));
    try {
      const { decoder: weights } = splitVaeWeights(vaeWeightsFromCompVis(ckpt, c));
      const latent = await feed(io, "decode_in");
      const g = await loadComponent("vae_decoder", decoderGraph(c, latent.shape), weights);
      try {
        const out = await g.run({ latent });
        t.diagnostic(assertClose("decode_out", out.image, await io.readAsFloat32("decode_out"), [1, 3, 64, 64]));
      } finally {
        await g.dispose();
      }
    } finally {
      await ckpt.close();
      await io.close();
    }
  });
});
