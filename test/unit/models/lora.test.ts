/** LoRA at the model layer: key layouts, the graph branch against merged weights, stacking, file reading; embedding tokens. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CheckpointError } from "../../../src/errors.js";
import { input } from "../../../src/graph/apply.js";
import { evaluate } from "../../../src/graph/eval.js";
import { openSafetensors, writeSafetensors } from "../../../src/io/safetensors.js";
import { parseClipTextConfig } from "../../../src/models/clip/config.js";
import { ClipTokenizer } from "../../../src/models/clip/tokenizer.js";
import { type LoraTargets, loraTargets, resolveLoraKey } from "../../../src/models/lora/keys.js";
import { loraDelta, planLoras, readLora } from "../../../src/models/lora/lora.js";
import { parseUNetConfig } from "../../../src/models/unet/config.js";
import { Conv2d, Linear } from "../../../src/nn/layers.js";
import { loraFeedNames, loraFeedShapes } from "../../../src/nn/lora.js";
import { ParamRegistry, Scope } from "../../../src/nn/scope.js";
import { TokenProjection } from "../../../src/nn/transformer.js";
import { loadTokenizer } from "../../../src/pipelines/load-tokenizer.js";
import { TINY, delta, factor, loraA, loraTensors, uniform } from "./lora-fixtures.js";

const json = (p: string): unknown => JSON.parse(readFileSync(join(TINY, p), "utf8"));
const targets: LoraTargets = loraTargets(parseUNetConfig(json("unet/config.json")), parseClipTextConfig(json("text_encoder/config.json")));

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

describe("LoRA key layouts", () => {
  const lora = (name: string) => {
    const r = resolveLoraKey(name, targets);
    return r.kind === "lora" ? `${r.key.component}:${r.key.path}:${r.key.role}` : r.kind;
  };

  test("kohya names in diffusers and CompVis U-Net layouts resolve to the same modules; underscores in names are matched whole", () => {
    const q = "unet:down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q";
    assert.equal(lora("lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"), `${q}:down`);
    assert.equal(lora("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight"), `${q}:up`);
    assert.equal(lora("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.alpha"), `${q}:alpha`);
    assert.equal(lora("lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight"), "unet:down_blocks.0.resnets.0.conv1:down");
    assert.equal(lora("lora_unet_input_blocks_3_0_op.lora_down.weight"), "unet:down_blocks.0.downsamplers.0.conv:down");
    assert.equal(lora("lora_unet_output_blocks_0_1_proj_in.lora_up.weight"), "unet:up_blocks.0.attentions.0.proj_in:up");
    assert.equal(lora("lora_unet_middle_block_1_transformer_blocks_0_ff_net_0_proj.lora_up.weight"), "unet:mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj:up");
    assert.equal(lora("lora_unet_up_blocks_1_resnets_2_conv_shortcut.lora_down.weight"), "unet:up_blocks.1.resnets.2.conv_shortcut:down");
    assert.equal(lora("lora_te_text_model_encoder_layers_1_self_attn_out_proj.lora_down.weight"), "textEncoder:text_model.encoder.layers.1.self_attn.out_proj:down");
    assert.equal(lora("lora_te1_text_model_encoder_layers_0_mlp_fc2.alpha"), "textEncoder:text_model.encoder.layers.0.mlp.fc2:alpha");
  });

  test("diffusers / PEFT names, with and without prefixes, and the older attention-processor names", () => {
    const b = "down_blocks.1.attentions.1.transformer_blocks.0";
    assert.equal(lora(`unet.${b}.attn2.to_k.lora_A.weight`), `unet:${b}.attn2.to_k:down`);
    assert.equal(lora(`unet.${b}.attn2.to_k.lora_B.weight`), `unet:${b}.attn2.to_k:up`);
    assert.equal(lora(`${b}.ff.net.2.lora.down.weight`), `unet:${b}.ff.net.2:down`);
    assert.equal(lora(`unet.${b}.attn1.processor.to_out_lora.up.weight`), `unet:${b}.attn1.to_out.0:up`);
    assert.equal(lora(`unet.${b}.attn1.processor.to_q_lora.down.weight`), `unet:${b}.attn1.to_q:down`);
    assert.equal(lora("text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_linear_layer.up.weight"), "textEncoder:text_model.encoder.layers.0.self_attn.q_proj:up");
    assert.equal(lora("text_model.encoder.layers.1.mlp.fc1.lora_A.weight"), "textEncoder:text_model.encoder.layers.1.mlp.fc1:down");
    assert.equal(lora(`unet.${b}.attn2.to_k.alpha`), `unet:${b}.attn2.to_k:alpha`);
  });

  test("unknown modules, text encoder layers past the model's, and LyCORIS kinds", () => {
    assert.equal(lora("lora_unet_down_blocks_9_attentions_0_proj_in.lora_down.weight"), "unknown");
    assert.equal(lora("unet.nope.lora_A.weight"), "unknown");
    assert.equal(lora("lora_te_text_model_encoder_layers_11_mlp_fc1.lora_down.weight"), "ignored");
    assert.equal(lora("lora_unet_down_blocks_1_attentions_0_proj_in.hada_w1_a"), "unsupported");
    assert.equal(lora("lora_unet_down_blocks_1_attentions_0_proj_in.lora_mid.weight"), "unsupported");
    assert.equal(lora("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"), "unsupported");
  });
});

type Feeds = Record<string, { shape: number[]; data: Float32Array }>;

/** Evaluates the module `build` makes at path "m" on `x`, with the reference evaluator; the registry plans `ranks`. */
function run(build: (s: Scope) => { forward(x: ReturnType<typeof input>): ReturnType<typeof input> }, feeds: Feeds, ranks?: Map<string, number>): Float64Array {
  const reg = new ParamRegistry(ranks ? { loraRanks: ranks } : {});
  const m = build(Scope.root(reg).child("m"));
  const x = input("x", "float32", feeds.x?.shape ?? []);
  const values = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dtype: "float32" as const, shape: v.shape, data: Float64Array.from(v.data) }]));
  return evaluate([m.forward(x)], values)[0]?.data as Float64Array;
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

describe("the LoRA branch equals merged weights (reference evaluator)", () => {
  // `kind`: how the graph takes the factors; `conv`: whether the file stores them as conv kernels.
  const cases = [
    { what: "Linear", cin: 6, cout: 5, k: 1, conv: false, kind: "linear", build: (s: Scope) => new Linear(s, 6, 5), x: [2, 3, 6], w: [5, 6] },
    { what: "TokenProjection with a 1×1-conv LoRA", cin: 6, cout: 6, k: 1, conv: true, kind: "linear", build: (s: Scope) => new TokenProjection(s, 6, false), x: [2, 3, 6], w: [6, 6, 1, 1] },
    { what: "strided 3×3 Conv2d", cin: 3, cout: 4, k: 3, conv: true, kind: "conv", build: (s: Scope) => new Conv2d(s, 3, 4, 3, { stride: 2, padding: 1 }), x: [1, 3, 5, 5], w: [4, 3, 3, 3] },
  ] as const;
  for (const c of cases) {
    test(c.what, () => {
      const rank = 3;
      const f = factor(100, "unet", "m", c.cin, c.cout, { rank, alpha: 1.5, conv: c.conv, k: c.k });
      const wt = 0.8;
      const base: Feeds = {
        "m.weight": { shape: [...c.w], data: uniform(200, count(c.w), 0.3) },
        "m.bias": { shape: [c.cout], data: uniform(300, c.cout, 0.3) },
        x: { shape: [...c.x], data: uniform(400, count(c.x), 1) },
      };
      const d = delta(f);
      const merged: Feeds = { ...base, "m.weight": { shape: [...c.w], data: (base["m.weight"]?.data ?? new Float32Array()).map((v, i) => v + wt * (d[i] ?? 0)) } };
      const names = loraFeedNames("m");
      const shapes = loraFeedShapes(c.kind, c.cin, c.cout, c.k, rank);
      const s = (wt * 1.5) / rank;
      const withLora: Feeds = { ...base, [names.down]: { shape: shapes.down, data: f.down }, [names.up]: { shape: shapes.up, data: f.up.map((v) => v * s) } };
      const got = run(c.build, withLora, new Map([["m", rank]]));
      const want = run(c.build, merged);
      assert.ok(maxAbs(got, want) < 1e-6, `${c.what}: branch vs merged maxAbs ${maxAbs(got, want)}`);
      assert.ok(maxAbs(got, run(c.build, base)) > 1e-3, "the LoRA changes the output");
    });
  }

  test("modules without a plan build exactly as before: no extra inputs", () => {
    const reg = new ParamRegistry({ loraRanks: new Map([["other", 2]]) });
    new Linear(Scope.root(reg).child("m"), 4, 4);
    assert.deepEqual([...reg.feeds.keys()], []);
    assert.deepEqual([...reg.modules.keys()], ["m"]);
  });
});

describe("LoRA files and plans", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sdts-lora-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("readLora reads a kohya F16 file; CompVis names give the same modules; the delta is (alpha/rank)·up·down", async () => {
    const factors = loraA();
    for (const layout of ["kohya", "kohya-compvis", "peft"] as const) {
      const path = join(dir, `${layout}.safetensors`);
      await writeSafetensors(path, loraTensors(factors, layout));
      const file = await openSafetensors(path);
      const modules = await readLora(file, targets);
      await file.close();
      assert.equal(modules.length, factors.length, layout);
      for (const f of factors) {
        const m = modules.find((x) => x.path === f.path && x.component === f.component);
        assert.ok(m, `${layout}: ${f.path}`);
        assert.equal(m.rank, 4);
        assert.ok(maxAbs(loraDelta(m, f.upShape[0] ?? 0), delta(f)) < 1e-6, `${layout}: ${f.path} delta`);
      }
    }
  });

  test("unknown modules, wrong shapes, missing factors and LyCORIS files are refused with names", async () => {
    const bad = async (name: string, tensors: ReturnType<typeof loraTensors>, re: RegExp) => {
      const path = join(dir, name);
      await writeSafetensors(path, tensors);
      const file = await openSafetensors(path);
      await assert.rejects(readLora(file, targets), (e: unknown) => e instanceof CheckpointError && re.test(e.message));
      await file.close();
    };
    const f = factor(1, "unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 64, 64);
    const t = loraTensors([f], "kohya");
    await bad("unknown.safetensors", new Map([...t, ["lora_unet_down_blocks_7_x.lora_down.weight", { dtype: "F32", shape: [1], data: new Float32Array(1) }]]), /1 tensors match no module of this model \(lora_unet_down_blocks_7_x\.lora_down\.weight\)/);
    await bad("shape.safetensors", loraTensors([factor(1, "unet", f.path, 32, 64)], "kohya"), /does not fit the model's linear 'down_blocks\.1\.attentions\.0\.transformer_blocks\.0\.attn1\.to_q' \(in 64, out 64\): down \[4, 32\]/);
    await bad("half.safetensors", new Map([...t].filter(([k]) => !k.includes("lora_up"))), /has no up factor/);
    await bad("loha.safetensors", new Map([["lora_unet_down_blocks_1_attentions_0_proj_in.hada_w1_a", { dtype: "F32", shape: [1], data: new Float32Array(1) }]]), /LyCORIS LoHa/);
  });

  test("planLoras stacks LoRAs: U·D = Σ wᵢ·(alphaᵢ/rankᵢ)·upᵢ·downᵢ; the signature depends on ranks, not weights", async () => {
    const path = "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q";
    const a = factor(1, "unet", path, 64, 64, { alpha: 2 });
    const b = factor(7, "unet", path, 64, 64, { rank: 2 });
    const modules = async (name: string, fs: ReturnType<typeof loraA>) => {
      await writeSafetensors(join(dir, name), loraTensors(fs, "peft"));
      const file = await openSafetensors(join(dir, name));
      const m = await readLora(file, targets);
      await file.close();
      return m;
    };
    const ma = await modules("pa.safetensors", [a]);
    const mb = await modules("pb.safetensors", [b]);
    const plan = planLoras([{ modules: ma, textWeight: 1, unetWeight: 0.7 }, { modules: mb, textWeight: 1, unetWeight: -0.4 }], "unet", targets);
    assert.ok(plan);
    assert.deepEqual([...plan.ranks], [[path, 6]]);
    assert.equal(planLoras([{ modules: ma, textWeight: 1, unetWeight: 0.7 }], "textEncoder", targets), undefined);
    const names = loraFeedNames(path);
    const D = plan.feeds.get(names.down);
    const U = plan.feeds.get(names.up);
    assert.deepEqual([D?.shape, U?.shape], [[6, 64], [64, 6]]);
    const got = new Float32Array(64 * 64);
    for (let o = 0; o < 64; o++) for (let c = 0; c < 64; c++) for (let j = 0; j < 6; j++) got[o * 64 + c] = (got[o * 64 + c] ?? 0) + (U?.data[o * 6 + j] ?? 0) * (D?.data[j * 64 + c] ?? 0);
    const da = delta(a);
    const db = delta(b);
    assert.ok(maxAbs(got, da.map((v, i) => 0.7 * v - 0.4 * (db[i] ?? 0))) < 1e-6);
    const again = planLoras([{ modules: ma, textWeight: 1, unetWeight: 3 }, { modules: mb, textWeight: 1, unetWeight: 0 }], "unet", targets);
    assert.equal(again?.signature, plan.signature);
  });
});

describe("textual-inversion tokens", () => {
  let tok: ClipTokenizer;
  before(async () => {
    tok = await loadTokenizer(join(TINY, "tokenizer"));
  });

  test("an embedding's name becomes its ids, matched on tokens as A1111 does (case, punctuation, longest name first)", () => {
    const t = tok.withEmbeddings([
      { name: "my-style", ids: [49408, 49409] },
      { name: "my-style-v2", ids: [49410] },
      { name: "cat", ids: [49411, 49412, 49413] },
    ]);
    const plain = tok.tokenize("a photo");
    assert.deepEqual(t.tokenize("a photo, My-Style"), [...plain, ...tok.tokenize(","), 49408, 49409]);
    assert.deepEqual(t.tokenize("my-style-v2 dog"), [49410, ...tok.tokenize("dog")]);
    assert.deepEqual(t.tokenize("cats"), tok.tokenize("cats"), "not inside another word");
    assert.deepEqual(t.encode("cat").slice(0, 5), [49406, 49411, 49412, 49413, 49407]);
    assert.equal(t.decode(t.tokenize("a my-style cat"), { skipSpecialTokens: true }), "a my-style cat");
    assert.equal(t.idToToken(49409), "my-style");
    assert.deepEqual(tok.tokenize("a my-style cat"), t.withEmbeddings([]).tokenize("a my-style cat"));
  });
});
