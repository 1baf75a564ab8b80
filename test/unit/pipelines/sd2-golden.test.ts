/** tiny-sd2: a single-file SD 2.x checkpoint (OpenCLIP keys, linear proj, v-prediction) through loadModel with a config folder. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import { loadModel } from "../../../src/pipelines/load-model.js";
import type { Model } from "../../../src/pipelines/model.js";
import { assertClose, readCase, readJson } from "./golden-util.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const DIR = join(GOLDEN_DIR, "tiny-sd2");
let model: Model;

before(async () => {
  model = await loadModel(join(DIR, "tiny-sd2.safetensors"), { config: DIR });
});
after(async () => {
  await model.dispose();
});

test("tiny-sd2 is detected as SD 2.x with v-prediction and '!' padding", () => {
  assert.equal(model.info.family, "sd2");
  assert.equal(model.info.prediction, "v");
  const ids = model.tokenizer.encode("a red fox");
  assert.equal(ids.length, 77);
  assert.equal(ids[ids.length - 1], 0);
});

test("tiny-sd2 components: text encoder context, U-Net v, VAE decode", async () => {
  const te = await readCase(join(DIR, "cases/text_encoder_io.safetensors"));
  const idx = readJson<{ text_encoder?: { prompts?: string[] } }>(join(DIR, "cases/index.json"));
  const prompts = idx.text_encoder?.prompts ?? ["a photograph of an astronaut riding a horse", ""];
  const ctx = await model.textEncoder.encode(prompts.map((p) => model.tokenizer.encode(p)));
  assertClose("context", ctx.data, te.get("context")?.data ?? new Float32Array(), 1e-5);
  const u = await readCase(join(DIR, "cases/unet_io.safetensors"));
  const sample = u.get("sample");
  const ehs = u.get("encoder_hidden_states");
  assert.ok(sample && ehs);
  for (const tag of ["t10", "t981"]) {
    const t = u.get(`${tag}.timestep`)?.data[0] ?? NaN;
    const out = await model.unet.predict(sample, t, ehs);
    assertClose(`unet ${tag}`, out.data, u.get(`${tag}.out`)?.data ?? new Float32Array(), 1e-5);
  }
  const v = await readCase(join(DIR, "cases/vae_io.safetensors"));
  const img = await model.vae.decode(v.get("decode_in") ?? { data: new Float32Array(), shape: [] });
  assertClose("vae decode", img.data, v.get("decode_out")?.data ?? new Float32Array(), 1e-5);
});

test("tiny-sd2 pipeline: Euler, v-prediction → the recorded final latent", async () => {
  const t = await readCase(join(DIR, "cases/pipeline_euler_v.safetensors"));
  const res = await model.txt2img({
    prompt: "a red fox in the snow, watercolor",
    negativePrompt: "blurry",
    steps: 5,
    cfgScale: 7.5,
    sampler: "Euler",
    seed: 4321,
    width: 64,
    height: 64,
  });
  assertClose("final latent", res.latents.data, t.get("final_latent")?.data ?? new Float32Array(), 2.5e-4);
  const png = res.images[0];
  assert.ok(png && png[1] === 0x50 && png[2] === 0x4e && png[3] === 0x47, "PNG bytes");
});
