/**
 * LoRA and textual-inversion embeddings on the tiny pipeline (issue 7, item 4): a LoRA at weight w
 * equals the merged weights W + w·(alpha/rank)·up·down; several at once; weight 0 is the base
 * model; changing weights reuses the compiled graph; prompt tags; embeddings reach the text encoder.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CheckpointError, InputError } from "../../../src/errors.js";
import { writeSafetensors } from "../../../src/io/safetensors.js";
import { readPngText } from "../../../src/io/png-text.js";
import { parseClipTextConfig } from "../../../src/models/clip/config.js";
import { clipTextWeights } from "../../../src/models/clip/keys.js";
import { EXTRA_TOKENS_INPUT, clipTextGraph } from "../../../src/models/clip/text-encoder.js";
import { loadComponent } from "../../../src/models/component.js";
import { loraTargets } from "../../../src/models/lora/keys.js";
import { planLoras, readLora } from "../../../src/models/lora/lora.js";
import { parseUNetConfig } from "../../../src/models/unet/config.js";
import { buildUNetGraph } from "../../../src/models/unet/unet.js";
import { identityWeights } from "../../../src/models/weights.js";
import { openSafetensors } from "../../../src/io/safetensors.js";
import { parseInfotext } from "../../../src/pipelines/infotext.js";
import { loadModel } from "../../../src/pipelines/load-model.js";
import { extractLoraTags } from "../../../src/pipelines/lora-tags.js";
import type { Model } from "../../../src/pipelines/model.js";
import { ShapeCache, loraFeeds } from "../../../src/pipelines/runners.js";
import type { Components, Tensor } from "../../../src/pipelines/types.js";
import { TINY, loraA, loraB, loraTensors, mergedModel, uniform } from "../models/lora-fixtures.js";
import { assertClose, readJson } from "./golden-util.js";

const TOL = 1e-5;
let dir: string;
let model: Model;
const merged: Model[] = [];

// Inputs of a guided U-Net call at 32×32 latents, and two prompts' token ids.
const latent: Tensor = { data: uniform(1, 2 * 4 * 32 * 32, 1), shape: [2, 4, 32, 32] };
let context: Tensor;
let ids: number[][];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sdts-lora-pipe-"));
  const loras = join(dir, "loras");
  await mkdir(join(loras, "sub"), { recursive: true });
  await writeSafetensors(join(loras, "style-a.safetensors"), loraTensors(loraA(), "kohya"), { ss_output_name: "styleA" });
  await writeSafetensors(join(loras, "sub", "style-a-compvis.safetensors"), loraTensors(loraA(), "kohya-compvis"));
  await writeSafetensors(join(loras, "peft-b.safetensors"), loraTensors(loraB(), "peft"));
  await writeFile(join(loras, "pickled.pt"), "not really a pickle");
  const emb = join(dir, "embeddings");
  await mkdir(emb);
  await writeSafetensors(join(emb, "shiny.safetensors"), new Map([["emb_params", { dtype: "F32", shape: [2, 32], data: uniform(5, 64, 0.5) }]]));
  await writeSafetensors(join(emb, "wide.safetensors"), new Map([["emb_params", { dtype: "F32", shape: [1, 768], data: new Float32Array(768) }]]));
  await writeFile(join(emb, "old.pt"), "not really a pickle");
  model = await loadModel(TINY, { loraDir: loras, embeddingsDir: emb });
  ids = [model.tokenizer.encode("blurry"), model.tokenizer.encode("a red apple")];
  context = await model.textEncoder.encode(ids);
});

after(async () => {
  await model.dispose();
  for (const m of merged) await m.dispose();
  await rm(dir, { recursive: true, force: true });
});

async function mergedWith(name: string, loras: Parameters<typeof mergedModel>[1]): Promise<Model> {
  const m = await loadModel(await mergedModel(join(dir, name), loras));
  merged.push(m);
  return m;
}

function maxAbs(a: Tensor, b: Tensor): number {
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs((a.data[i] ?? 0) - (b.data[i] ?? 0)));
  return m;
}

/** Text encoder and U-Net outputs of `c` on the fixed inputs. */
async function outputs(c: Components): Promise<{ text: Tensor; unet: Tensor }> {
  return { text: await c.textEncoder.encode(ids), unet: await c.unet.predict(latent, 500, context) };
}

async function assertSame(what: string, got: Components, want: Components, tol = TOL): Promise<void> {
  const g = await outputs(got);
  const w = await outputs(want);
  assertClose(`${what}: text encoder`, g.text.data, w.text.data, tol);
  assertClose(`${what}: U-Net`, g.unet.data, w.unet.data, tol);
}

describe("LoRA as a side branch (issue 7: a LoRA at weight w equals the merged weights)", () => {
  test("one kohya LoRA (attention, GEGLU, proj_in, 3×3 and strided convs, text encoder) at weight 0.7", async () => {
    const m = await mergedWith("merged-a", [{ factors: loraA(), weight: 0.7 }]);
    const lora = await model.componentsWithLoras([{ name: "style-a", weight: 0.7 }]);
    await assertSame("LoRA A at 0.7 vs merged", lora, m.components);
    const base = await outputs(model.components);
    const got = await outputs(lora);
    assert.ok(maxAbs(got.unet, base.unet) > 1e-3 && maxAbs(got.text, base.text) > 1e-3, "the LoRA changes both networks");
  });

  test("two LoRAs at once (overlapping modules, one PEFT, a negative weight) equal both merged", async () => {
    const m = await mergedWith("merged-ab", [
      { factors: loraA(), weight: 0.7 },
      { factors: loraB(), weight: -1.3 },
    ]);
    const lora = await model.componentsWithLoras([
      { name: "style-a", weight: 0.7 },
      { path: join(dir, "loras", "peft-b.safetensors"), weight: -1.3 },
    ]);
    await assertSame("LoRAs A + B vs merged", lora, m.components);
  });

  test("separate text-encoder and U-Net multipliers (A1111's <lora:name:te:unet>)", async () => {
    const m = await mergedWith("merged-split", [
      { factors: loraA().filter((f) => f.component === "textEncoder"), weight: 0.5 },
      { factors: loraA().filter((f) => f.component === "unet"), weight: 1.5 },
    ]);
    await assertSame("te 0.5, unet 1.5", await model.componentsWithLoras([{ name: "style-a", weight: 0.5, unetWeight: 1.5 }]), m.components);
  });

  test("weight 0 gives the base model's outputs exactly", async () => {
    const zero = await outputs(await model.componentsWithLoras([{ name: "style-a", weight: 0 }]));
    const base = await outputs(model.components);
    assert.equal(maxAbs(zero.unet, base.unet), 0);
    assert.equal(maxAbs(zero.text, base.text), 0);
  });

  test("kohya names in the CompVis layout, found by name in a subfolder, equal the diffusers-named file", async () => {
    const a = await model.componentsWithLoras([{ name: "style-a", weight: 0.9 }]);
    const b = await model.componentsWithLoras([{ name: "style-a-compvis", weight: 0.9 }]);
    await assertSame("CompVis vs diffusers names", b, a, 0);
    const alias = await model.componentsWithLoras([{ name: "styleA", weight: 0.9 }]);
    await assertSame("by alias (ss_output_name)", alias, a, 0);
  });

  test("changing LoRA weights reuses the compiled graph; other ranks compile another", async () => {
    const cfg = parseUNetConfig(readJson(join(TINY, "unet", "config.json")));
    const targets = loraTargets(cfg, parseClipTextConfig(readJson(join(TINY, "text_encoder", "config.json"))));
    const { file, weights } = await identityWeights(join(TINY, "unet", "diffusion_pytorch_model.safetensors"));
    const lf = await openSafetensors(join(dir, "loras", "style-a.safetensors"));
    const modules = await readLora(lf, targets);
    await lf.close();
    const cache = new ShapeCache("unet", (root) => buildUNetGraph(root, cfg, { batch: 1, height: 8, width: 8 }), weights, "cpu");
    try {
      const plan = (w: number) => planLoras([{ modules, textWeight: w, unetWeight: w }], "unet", targets);
      const run = async (w: number) => {
        const g = await cache.get([1, 4, 8, 8], plan(w));
        const out = await g.run({ ...loraFeeds(plan(w)), sample: { dtype: "float32", shape: [1, 4, 8, 8], data: latent.data.subarray(0, 256) }, timestep: { dtype: "float32", shape: [1], data: Float32Array.of(10) }, encoder_hidden_states: { dtype: "float32", shape: [1, 77, 32], data: context.data.subarray(0, 77 * 32) } });
        return out.out?.data as Float32Array;
      };
      const [a, b] = [await run(0.2), await run(1.4)];
      assert.equal(cache.compileCount, 1, "one graph for both weights");
      assert.ok(a.some((v, i) => Math.abs(v - (b[i] ?? 0)) > 1e-4), "the weights took effect");
      await cache.get([1, 4, 8, 8], planLoras([{ modules: modules.slice(0, 3), textWeight: 1, unetWeight: 1 }], "unet", targets));
      assert.equal(cache.compileCount, 2, "another set of modules compiles once more");
    } finally {
      await cache.dispose();
      await file.close();
    }
  });
});

describe("LoRAs through txt2img", () => {
  const base = { negativePrompt: "blurry", steps: 2, cfgScale: 7, sampler: "Euler", width: 64, height: 64, seed: 11 };

  test("<lora:name:w> in the prompt equals loras: [{ name, weight }]; the tag is not encoded; infotext records hashes and weights", async () => {
    const tagged = await model.txt2img({ ...base, prompt: "a red apple <lora:style-a:0.6>" });
    const listed = await model.txt2img({ ...base, prompt: "a red apple ", loras: [{ name: "style-a", weight: 0.6 }] });
    const plain = await model.txt2img({ ...base, prompt: "a red apple " });
    assert.deepEqual(tagged.latents.data, listed.latents.data);
    assert.ok(maxAbs(tagged.latents, plain.latents) > 1e-4, "the LoRA changes the image");
    const info = parseInfotext(readPngText(tagged.images[0] ?? new Uint8Array())["parameters"] ?? "");
    assert.equal(info.prompt, "a red apple <lora:style-a:0.6>", "the prompt keeps its tag, as in A1111");
    assert.match(info.params["Lora hashes"] ?? "", /^style-a: [0-9a-f]{12}$/);
    assert.equal(info.params["Lora weights"], "style-a: 0.6");
    assert.equal(parseInfotext(plain.info.infotexts[0] ?? "").params["Lora hashes"], undefined);
  });

  test("unknown names, pickles and LoRAs for another model are refused before any work", async () => {
    await assert.rejects(model.txt2img({ ...base, prompt: "x <lora:nope:1>" }), (e: unknown) => e instanceof InputError && /LoRA 'nope' not found in .*available: peft-b, style-a, style-a-compvis\)/.test(e.message));
    await assert.rejects(model.txt2img({ ...base, prompt: "x <lora:pickled:1>" }), (e: unknown) => e instanceof CheckpointError && /never unpickles/.test(e.message));
    await assert.rejects(model.txt2img({ ...base, prompt: "x <lora:style-a:abc>" }), /LoRA weight 'abc' in <lora:style-a:abc> is not a number/);
    const other = join(dir, "sd15-lora.safetensors");
    await writeSafetensors(other, new Map([["lora_unet_down_blocks_3_attentions_0_proj_in.lora_down.weight", { dtype: "F32", shape: [4, 1280, 1, 1], data: new Float32Array(4 * 1280) }]]));
    await assert.rejects(model.txt2img({ ...base, prompt: "x", loras: [{ path: other }] }), (e: unknown) => e instanceof CheckpointError && /match no module of this model/.test(e.message));
  });

  test("listLoras lists the folder's files with A1111's alias; an unreadable file is listed with its error, not fatal", async () => {
    const list = await model.listLoras();
    assert.deepEqual(list.map((l) => [l.name, l.alias]), [["peft-b", "peft-b"], ["style-a", "styleA"], ["style-a-compvis", "style-a-compvis"]]);
    assert.ok(list.every((l) => l.error === undefined));
    const broken = join(dirname(list[0]?.path ?? ""), "broken.safetensors");
    await writeFile(broken, "not a safetensors file");
    try {
      const again = await model.listLoras();
      assert.deepEqual(again.map((l) => l.name), ["broken", "peft-b", "style-a", "style-a-compvis"]);
      assert.match(again[0]?.error ?? "", /broken\.safetensors/);
    } finally {
      await rm(broken);
    }
  });
});

describe("textual-inversion embeddings", () => {
  test("the folder's embeddings are loaded by file name; pickles and other widths are skipped with a reason", () => {
    const list = model.listEmbeddings();
    assert.deepEqual(list.loaded.map((e) => [e.name, e.vectors, e.shape]), [["shiny", 2, 32]]);
    const skipped = new Map(list.skipped.map((s) => [s.name, s.reason]));
    assert.match(skipped.get("old") ?? "", /never unpickles/);
    assert.match(skipped.get("wide") ?? "", /768 wide but this model's text encoder is 32 wide/);
  });

  test("an embedding's tokens reach the text encoder: hidden_states.0 at its positions = vector + position embedding", async () => {
    const tok = model.tokenizer;
    const prompt = "a shiny apple";
    const row = tok.encode(prompt);
    assert.deepEqual(row.slice(0, 5), [49406, tok.tokenize("a")[0], 49408, 49409, tok.tokenize("apple")[0]]);
    const cfg = parseClipTextConfig(readJson(join(TINY, "text_encoder", "config.json")));
    const file = await openSafetensors(join(TINY, "text_encoder", "model.safetensors"));
    const vectors = uniform(5, 64, 0.5);
    const g = await loadComponent("te+ti", clipTextGraph(cfg, { batch: 1, hiddenStates: true, extraTokenCount: 2 }), clipTextWeights(file, cfg, "diffusers"));
    try {
      const out = await g.run({ input_ids: { dtype: "int64", shape: [1, 77], data: BigInt64Array.from(row, BigInt) }, [EXTRA_TOKENS_INPUT]: { dtype: "float32", shape: [2, 32], data: vectors } });
      const h0 = out["hidden_states.0"]?.data as Float32Array;
      const pos = await file.readAsFloat32("text_model.embeddings.position_embedding.weight");
      for (const [p, j] of [[2, 0], [3, 1]] as const) {
        const want = Array.from({ length: 32 }, (_, d) => (vectors[j * 32 + d] ?? 0) + (pos[p * 32 + d] ?? 0));
        assertClose(`hidden_states.0 row ${p}`, h0.subarray(p * 32, p * 32 + 32), want, 1e-6);
      }
      // And the model's own text encoder gives the same last hidden state as this graph.
      const viaModel = await model.textEncoder.encode([row]);
      assertClose("text encoder with the embedding", viaModel.data, out.last_hidden_state?.data as Float32Array, 1e-6);
    } finally {
      await g.dispose();
      await file.close();
    }
  });

  test("extractLoraTags: positional and named multipliers; other extra-network tags stay", () => {
    assert.deepEqual(extractLoraTags("a <lora:x> b <lyco:y:0.5:1.5> <lora:z:te=0.2:unet=0.9> <hypernet:h:1>"), {
      prompt: "a  b   <hypernet:h:1>",
      loras: [{ name: "x", weight: 1 }, { name: "y", weight: 0.5, unetWeight: 1.5 }, { name: "z", weight: 0.2, unetWeight: 0.9 }],
    });
  });
});
