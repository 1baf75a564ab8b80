/**
 * The U-Net's `class_embed_type: "projection"` (class_embedding = diffusers TimestepEmbedding on
 * `class_labels`) against a diffusers reference run (test/fixtures/unet-class-embed, made by
 * scripts/make-unet-class-embed-fixture.py; the model also has the "text" addition embedding, as
 * the default model does), its config parsing and detection, its original-layout keys, and its
 * gradients in the training graph.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { ConfigError, ShapeError } from "../../../src/errors.js";
import { input } from "../../../src/graph/apply.js";
import type { CompiledGraph } from "../../../src/graph/compile.js";
import { grad } from "../../../src/graph/grad.js";
import * as g from "../../../src/graph/ops.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import { type SafetensorsFile, openSafetensors } from "../../../src/io/safetensors.js";
import { type UNetConfig, detectUNetConfig, parseUNetConfig } from "../../../src/models/unet/config.js";
import { detectOriginalUNetConfig, unetKeyPairs } from "../../../src/models/unet/keys.js";
import { UNet2DConditionModel, buildUNetGraph } from "../../../src/models/unet/unet.js";
import type { ClipTokenizer } from "../../../src/models/clip/tokenizer.js";
import { makeComponents } from "../../../src/pipelines/components.js";
import type { ModelParts } from "../../../src/pipelines/load-model.js";
import { ParamRegistry, Scope } from "../../../src/nn/scope.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { assertClose } from "../../assert-close.js";
import { f32, fixtureGraph, fixtureShapes, unetFeeds } from "./unet-fixture.js";

const FIXTURE = fileURLToPath(new URL("../../fixtures/unet-class-embed/", import.meta.url));
const WEIGHTS = join(FIXTURE, "unet", "diffusion_pytorch_model.safetensors");
const TOL = 1e-4;
const CLASS_KEYS = ["class_embedding.linear_1.bias", "class_embedding.linear_1.weight", "class_embedding.linear_2.bias", "class_embedding.linear_2.weight"];

function readConfig(): UNetConfig {
  return parseUNetConfig(JSON.parse(readFileSync(join(FIXTURE, "unet", "config.json"), "utf8")));
}

describe('U-Net with class_embed_type "projection" (diffusers folder, F32; symbolic batch)', () => {
  let config: UNetConfig;
  let io: SafetensorsFile;
  let unet: CompiledGraph;
  let feeds: Record<string, HostTensor>;
  before(async () => {
    config = readConfig();
    unet = await fixtureGraph("unet", WEIGHTS, (root) => buildUNetGraph(root, config, { batch: "B", height: 8, width: 8, contextLength: 16, trace: ["class_embedding"] }));
    io = await openSafetensors(join(FIXTURE, "io.safetensors"));
    feeds = await unetFeeds(io, true);
  });
  after(async () => {
    await unet.dispose();
    await io.close();
  });

  test("config: projection from 32 wide labels, beside the text addition embedding", () => {
    assert.deepEqual(config.classEmbed, { type: "projection", inputDim: 32 });
    assert.deepEqual(config.additionEmbed, { type: "text", numHeads: 2 });
  });

  test("declares diffusers' class_embedding keys, and the folder loads strictly", async () => {
    const reg = new ParamRegistry();
    new UNet2DConditionModel(Scope.root(reg), config);
    const declared = new Map([...reg.params].map(([k, t]) => [k, t.shape as readonly number[]]));
    assert.deepEqual([...declared.keys()].filter((k) => k.startsWith("class_embedding.")).sort(), CLASS_KEYS);
    assert.deepEqual(declared, await fixtureShapes(WEIGHTS));
  });

  test(`class_embedding and U-Net output within ${TOL} of diffusers (t = 10, 981)`, async (t) => {
    const r = await unet.run(feeds);
    t.diagnostic(`class_embedding maxAbs ${assertClose("class_embedding", r["trace.class_embedding"]?.data as Float32Array, await io.readAsFloat32("class_embedding"), TOL).toExponential(2)}`);
    t.diagnostic(`out maxAbs ${assertClose("out", r["out"]?.data as Float32Array, await io.readAsFloat32("out"), TOL).toExponential(2)}`);
  });

  test("the class labels change the output (zero labels do not reproduce the reference)", async () => {
    const r = await unet.run({ ...feeds, class_labels: f32([2, 32], new Float32Array(64)) });
    const got = r["out"]?.data as Float32Array;
    const want = await io.readAsFloat32("out");
    const diff = Math.max(...Array.from(got, (v, i) => Math.abs(v - (want[i] ?? 0))));
    assert.ok(diff > 100 * TOL, `zero class_labels moved the output by only ${diff}`);
  });

  test("the forward pass without class_labels is a ShapeError naming what is needed", () => {
    const reg = new ParamRegistry();
    const model = new UNet2DConditionModel(Scope.root(reg), config);
    assert.throws(() => model.forward(input("s", "float32", [1, 4, 8, 8]), input("t", "float32", [1]), input("c", "float32", [1, 16, 32])), (e: unknown) => {
      assert.ok(e instanceof ShapeError);
      assert.match(e.message, /class_labels \[B, 32\]/);
      return true;
    });
  });

  test("shape detection finds the projection and its width (the text embedding's heads still come from the config)", async () => {
    const shapes = await fixtureShapes(WEIGHTS);
    const { sampleSize: _, ...want } = config;
    assert.deepEqual(detectUNetConfig(shapes, { numHeads: config.numHeads, normGroups: config.normGroups, additionEmbed: config.additionEmbed }), want);
  });
});

describe("class_embed_type parsing and keys", () => {
  test("null (SD) gives none; projection needs its input width", () => {
    assert.equal(parseUNetConfig({ cross_attention_dim: 768 }).classEmbed, undefined);
    assert.equal(parseUNetConfig({ class_embed_type: null, cross_attention_dim: 768 }).classEmbed, undefined);
    assert.deepEqual(parseUNetConfig({ class_embed_type: "projection", projection_class_embeddings_input_dim: 1024 }).classEmbed, { type: "projection", inputDim: 1024 });
    assert.throws(() => parseUNetConfig({ class_embed_type: "projection" }), { name: "ConfigError", message: /projection_class_embeddings_input_dim, a positive integer \(got null\)/ });
  });

  test("other class_embed_type values and concatenation are rejected, naming the value", () => {
    for (const type of ["timestep", "identity", "simple_projection"]) {
      assert.throws(() => parseUNetConfig({ class_embed_type: type, projection_class_embeddings_input_dim: 8 }), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.ok(e.message.includes(JSON.stringify(type)) && /null .* and "projection"/.test(e.message), e.message);
        return true;
      });
    }
    assert.throws(() => parseUNetConfig({ class_embed_type: "projection", projection_class_embeddings_input_dim: 8, class_embeddings_concat: true }), { name: "ConfigError", message: /class_embeddings_concat/ });
  });

  test("original layout: class_embedding ↔ label_emb.0.0 / label_emb.0.2, and detection reads it back", () => {
    const c = parseUNetConfig({ block_out_channels: [8, 8], layers_per_block: 1, down_block_types: ["DownBlock2D", "CrossAttnDownBlock2D"], up_block_types: ["CrossAttnUpBlock2D", "UpBlock2D"], attention_head_dim: 2, cross_attention_dim: 16, norm_num_groups: 4, class_embed_type: "projection", projection_class_embeddings_input_dim: 12 });
    const pairs = unetKeyPairs(c);
    const cls = pairs.filter((p) => p.canonical.startsWith("class_embedding.")).map((p) => [p.canonical, p.source]);
    assert.deepEqual(cls.sort(), [
      ["class_embedding.linear_1.bias", "model.diffusion_model.label_emb.0.0.bias"],
      ["class_embedding.linear_1.weight", "model.diffusion_model.label_emb.0.0.weight"],
      ["class_embedding.linear_2.bias", "model.diffusion_model.label_emb.0.2.bias"],
      ["class_embedding.linear_2.weight", "model.diffusion_model.label_emb.0.2.weight"],
    ]);
    const reg = new ParamRegistry();
    new UNet2DConditionModel(Scope.root(reg), c);
    const shapes = new Map(pairs.map((p) => [p.source, reg.params.get(p.canonical)?.shape as number[]]));
    assert.deepEqual(detectOriginalUNetConfig(shapes, undefined, { numHeads: c.numHeads, normGroups: 4 }).classEmbed, { type: "projection", inputDim: 12 });
  });
});

describe("loading", () => {
  test("a class embedding wider or narrower than the text encoder's pooled state is refused at load (unCLIP-style U-Nets)", () => {
    const parts = { unet: readConfig(), clip: { hiddenSize: 1024 } } as unknown as ModelParts;
    assert.throws(() => makeComponents("unclip", parts, undefined as unknown as ClipTokenizer, "cpu"), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /reads 32-wide class_labels, but sdts feeds it the text encoder's pooled state \(1024 wide\)/);
      return true;
    });
  });
});

describe("class_embedding gradients", () => {
  test("through the whole U-Net on onnxruntime: finite, non-zero gradients for its parameters and for the labels", async () => {
    const config = readConfig();
    const graph = await fixtureGraph("unet-grad", WEIGHTS, (root) => {
      const unet = new UNet2DConditionModel(root, config);
      const labels = input("class_labels", "float32", [2, 32]);
      const out = unet.forward(input("sample", "float32", [2, 4, 8, 8]), input("timestep", "float32", [2]), input("encoder_hidden_states", "float32", [2, 16, 32]), labels).out;
      const loss = g.reduceMean(g.mul(out, out), [0, 1, 2, 3]);
      const e = unet.classEmbedding;
      assert.ok(e !== undefined);
      const wrt = new Map<string, Tensor>([
        ["class_embedding.linear_1.weight", e.linear1.weight],
        ["class_embedding.linear_1.bias", e.linear1.bias as Tensor],
        ["class_embedding.linear_2.weight", e.linear2.weight],
        ["class_embedding.linear_2.bias", e.linear2.bias as Tensor],
        ["labels", labels],
      ]);
      const grads = grad(loss, wrt);
      return { loss, ...Object.fromEntries([...grads].map(([k, v]) => [`grad.${k}`, v])) };
    });
    const io = await openSafetensors(join(FIXTURE, "io.safetensors"));
    try {
      const r = await graph.run(await unetFeeds(io, true));
      assert.ok(Number.isFinite((r["loss"]?.data as Float32Array)[0]));
      for (const k of [...CLASS_KEYS, "labels"]) {
        const gk = r[`grad.${k}`]?.data as Float32Array | undefined;
        assert.ok(gk !== undefined, `no gradient for ${k}`);
        assert.ok(Array.from(gk).every(Number.isFinite), `${k}: non-finite gradient`);
        assert.ok(Math.max(...Array.from(gk, Math.abs)) > 1e-7, `${k}: gradient is all zero`);
      }
    } finally {
      await graph.dispose();
      await io.close();
    }
  });
});
