/** A1111 prompt syntax in generation: plain prompts unchanged, emphasis, long prompts, prompt editing, AND. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import { buildConditioning } from "../../../src/pipelines/conditioning.js";
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

const base = { prompt: "a red fox in the snow, watercolor", negativePrompt: "blurry", steps: 4, cfgScale: 7, sampler: "Euler a", width: 64, height: 64, seed: 5 };

test("a prompt without special syntax gives the same image under both syntaxes", async () => {
  const a = await model.txt2img({ ...base, promptSyntax: "plain" });
  const b = await model.txt2img({ ...base, promptSyntax: "a1111" });
  assert.deepEqual(b.latents.data, a.latents.data);
});

test("a1111: (x:1.5) changes the context; the mean of each chunk is kept", async () => {
  const c = model.components;
  const plain = await (await buildConditioning(c, "a red fox", "", { batch: 1, guided: false, steps: 4, syntax: "a1111" }))(0, 4);
  const weighted = await (await buildConditioning(c, "a (red:1.5) fox", "", { batch: 1, guided: false, steps: 4, syntax: "a1111" }))(0, 4);
  assert.notDeepEqual(weighted.context.data, plain.context.data);
  const mean = (x: Float32Array) => x.reduce((s, v) => s + v, 0) / x.length;
  assert.ok(Math.abs(mean(weighted.context.data) - mean(plain.context.data)) < 1e-5);
});

test("a1111: a 100-token prompt becomes two 77-token chunks; the negative is padded to the same length", async () => {
  const long = Array.from({ length: 50 }, () => "red apple").join(" "); // 100 tokens
  const cond = await (await buildConditioning(model.components, long, "blurry", { batch: 2, guided: true, steps: 4, syntax: "a1111" }))(0, 4);
  assert.deepEqual(cond.context.shape.slice(0, 2), [4, 154]);
  const r = await model.txt2img({ ...base, prompt: long, promptSyntax: "a1111", batchSize: 1 });
  assert.equal(r.images.length, 1);
});

test("a1111: [cat:dog:2] switches the text after step 2; AND adds a weighted cond", async () => {
  const cond = await buildConditioning(model.components, "a [cat:dog:2]", "", { batch: 1, guided: true, steps: 4, syntax: "a1111" });
  const [s1, s2, s3] = [await cond(0, 4), await cond(1, 4), await cond(2, 4)];
  assert.deepEqual(s1.context.data, s2.context.data);
  assert.notDeepEqual(s3.context.data, s1.context.data);
  const and = await (await buildConditioning(model.components, "a cat AND a hat :0.5", "", { batch: 1, guided: true, steps: 4, syntax: "a1111" }))(0, 4);
  assert.deepEqual(and.weights, [1, 0.5]);
  assert.equal(and.context.shape[0], 3);
  const r = await model.txt2img({ ...base, prompt: "a cat AND a hat :0.5", promptSyntax: "a1111" });
  assert.equal(r.images.length, 1);
});
