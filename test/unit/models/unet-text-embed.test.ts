/**
 * The U-Net's `addition_embed_type: "text"` (add_embedding = diffusers TextTimeEmbedding) against a
 * diffusers reference run (test/fixtures/unet-text-embed, made by scripts/make-unet-text-embed-fixture.py),
 * its config parsing, its key map, and its gradients.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "../../../src/errors.js";
import { constant, input } from "../../../src/graph/apply.js";
import type { CompiledGraph } from "../../../src/graph/compile.js";
import { evaluate } from "../../../src/graph/eval.js";
import { grad } from "../../../src/graph/grad.js";
import * as g from "../../../src/graph/ops.js";
import type { Value } from "../../../src/graph/rule.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import { type SafetensorsFile, openSafetensors } from "../../../src/io/safetensors.js";
import { TextTimeEmbedding } from "../../../src/models/unet/blocks.js";
import { type UNetConfig, detectUNetConfig, parseUNetConfig } from "../../../src/models/unet/config.js";
import { unetKeyPairs } from "../../../src/models/unet/keys.js";
import { UNet2DConditionModel, buildUNetGraph } from "../../../src/models/unet/unet.js";
import { ParamRegistry, Scope } from "../../../src/nn/scope.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { assertClose } from "../../assert-close.js";
import { fixtureGraph, fixtureShapes, unetFeeds } from "./unet-fixture.js";
import { normals } from "../graph/harness.js";

const FIXTURE = fileURLToPath(new URL("../../fixtures/unet-text-embed/", import.meta.url));
const WEIGHTS = join(FIXTURE, "unet", "diffusion_pytorch_model.safetensors");
const TOL = 1e-4;

/** diffusers' state_dict names of TextTimeEmbedding (v0.27.2), as the fixture holds them. */
const ADD_EMBEDDING_KEYS = [
  "add_embedding.norm1.bias",
  "add_embedding.norm1.weight",
  "add_embedding.norm2.bias",
  "add_embedding.norm2.weight",
  "add_embedding.pool.k_proj.bias",
  "add_embedding.pool.k_proj.weight",
  "add_embedding.pool.positional_embedding",
  "add_embedding.pool.q_proj.bias",
  "add_embedding.pool.q_proj.weight",
  "add_embedding.pool.v_proj.bias",
  "add_embedding.pool.v_proj.weight",
  "add_embedding.proj.bias",
  "add_embedding.proj.weight",
];

/**
 * The one parameter whose gradient is zero by construction: k_proj's bias adds the same q·b to
 * every score of a query, and softmax ignores a shift. Its gradient is only rounding noise.
 */
const SHIFT_INVARIANT = "add_embedding.pool.k_proj.bias";

/** Asserts a gradient is finite and non-zero, or (for SHIFT_INVARIANT) negligible next to `scale`. */
function assertUseful(key: string, gk: ArrayLike<number>, scale: number): void {
  const a = Array.from(gk);
  assert.ok(a.every(Number.isFinite), `${key}: non-finite gradient`);
  const max = Math.max(...a.map(Math.abs));
  if (key === SHIFT_INVARIANT) assert.ok(max <= 1e-6 * scale, `${key}: |gradient| ${max} should vanish (softmax is shift-invariant)`);
  else assert.ok(max > 1e-6 * scale, `${key}: gradient is (nearly) all zero (${max})`);
}

function readConfig(): UNetConfig {
  return parseUNetConfig(JSON.parse(readFileSync(join(FIXTURE, "unet", "config.json"), "utf8")));
}

function declared(c: UNetConfig): Map<string, readonly number[]> {
  const reg = new ParamRegistry();
  new UNet2DConditionModel(Scope.root(reg), c);
  return new Map([...reg.params].map(([k, t]) => [k, t.shape as number[]]));
}

describe('U-Net with addition_embed_type "text" (diffusers folder, F32; symbolic batch and context length)', () => {
  let config: UNetConfig;
  let io: SafetensorsFile;
  let unet: CompiledGraph;
  let result: Record<string, HostTensor>;
  before(async () => {
    config = readConfig();
    unet = await fixtureGraph("unet", WEIGHTS, (root) => buildUNetGraph(root, config, { batch: "B", height: 8, width: 8, contextLength: "L", trace: ["add_embedding"] }));
    io = await openSafetensors(join(FIXTURE, "io.safetensors"));
    result = await unet.run(await unetFeeds(io));
  });
  after(async () => {
    await unet.dispose();
    await io.close();
  });

  test("config: type text, 2 pooling heads", () => {
    assert.deepEqual(config.additionEmbed, { type: "text", numHeads: 2 });
  });

  test("declares diffusers' add_embedding keys, and the folder loads strictly", async () => {
    const keys = [...declared(config).keys()].filter((k) => k.startsWith("add_embedding.")).sort();
    assert.deepEqual(keys, ADD_EMBEDDING_KEYS);
    assert.deepEqual(declared(config), await fixtureShapes(WEIGHTS));
  });

  test(`add_embedding output within ${TOL} of diffusers`, async (t) => {
    const want = await io.readAsFloat32("add_embedding");
    t.diagnostic(`maxAbs ${assertClose("add_embedding", result["trace.add_embedding"]?.data as Float32Array, want, TOL).toExponential(2)}`);
  });

  test(`U-Net output within ${TOL} of diffusers (t = 10, 981)`, async (t) => {
    const want = await io.readAsFloat32("out");
    t.diagnostic(`maxAbs ${assertClose("out", result["out"]?.data as Float32Array, want, TOL).toExponential(2)}`);
  });

  test("shape detection needs the pooling head count, and takes it as an override", async () => {
    const shapes = await fixtureShapes(WEIGHTS);
    assert.throws(() => detectUNetConfig(shapes), { name: "ConfigError", message: /add_embedding.*head count/ });
    const { sampleSize: _, ...want } = config;
    assert.deepEqual(detectUNetConfig(shapes, { numHeads: config.numHeads, normGroups: config.normGroups, additionEmbed: config.additionEmbed }), want);
  });

  test("the original single-file layout has no keys for it: a clear ConfigError", () => {
    assert.throws(() => unetKeyPairs(config), { name: "ConfigError", message: /addition_embed_type "text".*diffusers folder/ });
  });
});

describe("addition_embed_type parsing", () => {
  test("null (SD) gives no addition embedding; 'text' defaults to diffusers' 64 heads", () => {
    assert.equal(parseUNetConfig({ addition_embed_type: null, cross_attention_dim: 768 }).additionEmbed, undefined);
    assert.equal(parseUNetConfig({ cross_attention_dim: 768 }).additionEmbed, undefined);
    assert.deepEqual(parseUNetConfig({ addition_embed_type: "text", cross_attention_dim: 768 }).additionEmbed, { type: "text", numHeads: 64 });
  });

  test("other addition_embed_type values are rejected, naming the value and what is supported", () => {
    for (const type of ["text_time", "text_image", "image", "image_hint", 3]) {
      assert.throws(() => parseUNetConfig({ addition_embed_type: type }), (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.message, /addition_embed_type .* is not supported/);
        assert.ok(e.message.includes(JSON.stringify(type)), e.message);
        assert.match(e.message, /null .* and "text"/);
        return true;
      });
    }
  });

  test("a pooling head count that does not divide cross_attention_dim, or is not a positive integer, is rejected", () => {
    assert.throws(() => parseUNetConfig({ addition_embed_type: "text", addition_embed_type_num_heads: 3, cross_attention_dim: 32 }), { name: "ConfigError", message: /not divisible into addition_embed_type_num_heads 3/ });
    assert.throws(() => parseUNetConfig({ addition_embed_type: "text", addition_embed_type_num_heads: 0, cross_attention_dim: 32 }), ConfigError);
  });
});

describe("add_embedding gradients", () => {
  test("TextTimeEmbedding: VJP matches float64 central differences for every parameter", () => {
    const [b, l, d, t] = [2, 5, 8, 6];
    const reg = new ParamRegistry({ storage: () => "float64", compute: "float64" });
    const emb = new TextTimeEmbedding(Scope.root(reg).child("add_embedding"), d, t, 2);
    const ctx = input("ctx", "float64", [b, l, d]);
    const out = emb.forward(ctx); // [B, T]
    const loss = g.reduceSum(g.mul(out, constant(normals(b * t, 5), [b, t], "float64")), [0, 1]);
    const grads = grad(loss, reg.params);
    const values = new Map<string, Value>([["ctx", { dtype: "float64", shape: [b, l, d], data: Float64Array.from(normals(b * l * d, 1)) }]]);
    let seed = 10;
    for (const [k, p] of reg.params) {
      const shape = p.shape as number[];
      const n = shape.reduce((x, y) => x * y, 1);
      const base = k.endsWith("norm1.weight") || k.endsWith("norm2.weight") ? 1 : 0;
      values.set(k, { dtype: "float64", shape, data: Float64Array.from(normals(n, seed++), (v) => base + 0.5 * v) });
    }
    const keys = [...grads.keys()];
    const analytic = evaluate(keys.map((k) => grads.get(k) as Tensor), values);
    const lossAt = (vs: Map<string, Value>) => (evaluate([loss], vs)[0] as Value).data[0] as number;
    const h = 1e-6;
    keys.forEach((key, j) => {
      const a = (analytic[j] as Value).data;
      assertUseful(key, a, 1);
      const p = values.get(key) as Value;
      for (const i of [0, Math.floor(p.data.length / 2), p.data.length - 1]) {
        const at = (delta: number) => {
          const data = Float64Array.from(p.data);
          data[i] = (data[i] as number) + delta;
          return lossAt(new Map(values).set(key, { ...p, data }));
        };
        const fd = (at(h) - at(-h)) / (2 * h);
        const got = a[i] as number;
        assert.ok(Math.abs(got - fd) <= 1e-5 * Math.max(1, Math.abs(fd)), `${key}[${i}]: VJP ${got}, finite difference ${fd}`);
      }
    });
  });

  test("through the whole U-Net on onnxruntime: finite, non-zero gradients for the add_embedding parameters", async () => {
    const config = readConfig();
    const graph = await fixtureGraph("unet-grad", WEIGHTS, (root) => {
      const unet = new UNet2DConditionModel(root, config);
      const out = unet.forward(input("sample", "float32", [2, 4, 8, 8]), input("timestep", "float32", [2]), input("encoder_hidden_states", "float32", [2, 16, 32])).out;
      const loss = g.reduceMean(g.mul(out, out), [0, 1, 2, 3]);
      const e = unet.addEmbedding;
      assert.ok(e !== undefined);
      const p = e.pool;
      const wrt = new Map<string, Tensor>([
        ["add_embedding.norm1.weight", e.norm1.weight],
        ["add_embedding.norm1.bias", e.norm1.bias],
        ["add_embedding.pool.positional_embedding", p.positionalEmbedding],
        ...[p.qProj, p.kProj, p.vProj].flatMap((lin, i) => {
          const name = `add_embedding.pool.${"qkv"[i] ?? ""}_proj`;
          return [[`${name}.weight`, lin.weight], [`${name}.bias`, lin.bias as Tensor]] as [string, Tensor][];
        }),
        ["add_embedding.proj.weight", e.proj.weight],
        ["add_embedding.proj.bias", e.proj.bias as Tensor],
        ["add_embedding.norm2.weight", e.norm2.weight],
        ["add_embedding.norm2.bias", e.norm2.bias],
      ]);
      assert.deepEqual([...wrt.keys()].sort(), ADD_EMBEDDING_KEYS);
      const grads = grad(loss, wrt);
      return { loss, ...Object.fromEntries([...grads].map(([k, v]) => [`grad.${k}`, v])) };
    });
    const io = await openSafetensors(join(FIXTURE, "io.safetensors"));
    try {
      const r = await graph.run(await unetFeeds(io));
      assert.ok(Number.isFinite((r["loss"]?.data as Float32Array)[0]));
      const grads = ADD_EMBEDDING_KEYS.map((k) => {
        const gk = r[`grad.${k}`]?.data as Float32Array | undefined;
        assert.ok(gk !== undefined, `no gradient for ${k}`);
        return [k, gk] as const;
      });
      const scale = Math.max(...grads.flatMap(([, gk]) => Array.from(gk, Math.abs)));
      for (const [k, gk] of grads) assertUseful(k, gk, scale);
    } finally {
      await graph.dispose();
      await io.close();
    }
  });
});
