/** txt2img behaviour on the tiny pipeline: seeds, batches, progress, cancel, validation, infotext, explain. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import { InputError } from "../../../src/errors.js";
import { readPngText } from "../../../src/io/png-text.js";
import { parseInfotext } from "../../../src/pipelines/infotext.js";
import { loadModel } from "../../../src/pipelines/load-model.js";
import type { Model } from "../../../src/pipelines/model.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const DIR = join(GOLDEN_DIR, "tiny-pipeline");
let model: Model;
before(async () => {
  model = await loadModel(DIR);
});
after(async () => {
  await model.dispose();
});

const base = { prompt: "a red apple", negativePrompt: "blurry", steps: 4, cfgScale: 7, sampler: "Euler a", width: 64, height: 64 };

test("image i of a batch equals generating seed + i alone (A1111 seeds), ancestral noise included", async () => {
  const batch = await model.txt2img({ ...base, seed: 100, batchSize: 2 });
  assert.deepEqual(batch.seeds, [100, 101]);
  const alone = await model.txt2img({ ...base, seed: 101 });
  const per = alone.latents.data.length;
  const second = batch.latents.data.subarray(per, 2 * per);
  let max = 0;
  for (let i = 0; i < per; i++) max = Math.max(max, Math.abs((second[i] ?? 0) - (alone.latents.data[i] ?? 0)));
  assert.ok(max < 1e-4, `batch row 1 vs seed 101 alone: maxAbs ${max}`);
});

test("seed −1 picks a random seed and reports it; the same seed gives the same latents", async () => {
  const a = await model.txt2img({ ...base, seed: -1 });
  assert.ok(Number.isInteger(a.seeds[0]) && (a.seeds[0] ?? -1) >= 0);
  const b = await model.txt2img({ ...base, seed: a.seeds[0] ?? 0 });
  assert.deepEqual(b.latents.data, a.latents.data);
});

test("PNG carries A1111 infotext that parses back to the parameters", async () => {
  const r = await model.txt2img({ ...base, seed: 7 });
  const text = readPngText(r.images[0] ?? new Uint8Array())["parameters"] ?? "";
  const info = parseInfotext(text);
  assert.equal(info.prompt, "a red apple");
  assert.equal(info.negativePrompt, "blurry");
  assert.deepEqual(
    { steps: info.params["Steps"], sampler: info.params["Sampler"], cfg: info.params["CFG scale"], seed: info.params["Seed"], size: info.params["Size"] },
    { steps: "4", sampler: "Euler a", cfg: "7", seed: "7", size: "64x64" },
  );
});

test("progress reports every step; an AbortSignal cancels mid-run", async () => {
  const seen: number[] = [];
  await model.txt2img({ ...base, seed: 1, onProgress: (p) => seen.push(p.step) });
  assert.deepEqual(seen, [1, 2, 3, 4]);
  const ac = new AbortController();
  await assert.rejects(
    model.txt2img({ ...base, seed: 1, steps: 10, signal: ac.signal, onProgress: (p) => p.step === 2 && ac.abort() }),
    (e: unknown) => e instanceof Error && e.name === "AbortError",
  );
});

test("bad parameters are refused before any work, naming the field and a fix", async () => {
  await assert.rejects(model.txt2img({ ...base, width: 60 }), (e: unknown) => e instanceof InputError && /width must be a multiple of 8 \(got 60\); use 56 or 64/.test(e.message));
  await assert.rejects(model.txt2img({ ...base, steps: 0 }), /steps must be a whole number from 1 to 1000/);
  await assert.rejects(model.txt2img({ ...base, sampler: "Nope" }), /unknown sampler "Nope"/);
  await assert.rejects(model.txt2img({ ...base, seed: 1.5 }), /seed must be a whole number/);
  await assert.rejects(model.txt2img({ ...base, prompt: 3 as unknown as string }), /prompt must be a string/);
});

test("explain: one heatmap per prompt token in [0, 1], a frame per step, and the same image as without", async () => {
  const plain = await model.txt2img({ ...base, seed: 3 });
  const r = await model.txt2img({ ...base, seed: 3, explain: true });
  assert.deepEqual(r.latents.data, plain.latents.data);
  const ex = r.explain;
  assert.ok(ex);
  assert.deepEqual(ex.tokens, ["a", "red", "apple"]);
  assert.equal(ex.context, "tokens");
  assert.equal(ex.heatmaps.length, 3);
  for (const h of ex.heatmaps) {
    assert.equal(h.data.length, h.width * h.height);
    assert.equal(Math.max(...h.data), 1);
    assert.ok(Math.min(...h.data) >= 0);
  }
  assert.equal(ex.filmstrip.length, 4);
  assert.equal(ex.filmstrip[0]?.[1], 0x50); // PNG
});
