/**
 * SD 1.x single-file checkpoints: the tiny-pipeline folder written in the original layout (plus
 * the extras real files carry: DDPM buffers, EMA copies, position_ids, mixed fp32/fp16), loaded
 * back through loadModel, reproduces the golden case.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckpointError } from "../../../src/errors.js";
import { type TensorInput, openSafetensors, writeSafetensors } from "../../../src/io/safetensors.js";
import { diffusersToSingleFile } from "../../../src/pipelines/convert.js";
import { loadModel } from "../../../src/pipelines/load-model.js";
import { assertClose, readCase, readJson } from "./golden-util.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const G = GOLDEN_DIR;
const DIR = join(G, "tiny-pipeline");
let tmp: string;
let plain: string;
let real: string;

async function withExtras(src: string, dst: string, extra: Record<string, TensorInput>): Promise<void> {
  const f = await openSafetensors(src);
  const all = new Map<string, TensorInput>();
  for (const [name, info] of f.tensors) all.set(name, { dtype: info.dtype, shape: info.shape, data: (await f.read(name)).data });
  await f.close();
  for (const [k, v] of Object.entries(extra)) all.set(k, v);
  await writeSafetensors(dst, all);
}

before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sdts-sd1-"));
  plain = join(tmp, "tiny-sd1.safetensors");
  await diffusersToSingleFile(DIR, plain);
  real = join(tmp, "tiny-sd1-real.safetensors");
  await withExtras(plain, real, {
    betas: { dtype: "F32", shape: [1000], data: new Float32Array(1000).fill(0.01) },
    alphas_cumprod: { dtype: "F32", shape: [1000], data: new Float32Array(1000).fill(0.5) },
    "model_ema.decay": { dtype: "F32", shape: [], data: Float32Array.of(0.9999) },
    "model_ema.num_updates": { dtype: "I32", shape: [], data: Int32Array.of(1) },
    "cond_stage_model.transformer.text_model.embeddings.position_ids": { dtype: "I64", shape: [1, 77], data: BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i)) },
  });
  // Head counts are not in tensor shapes; the tiny models need their configs (real SD 1.x files do not).
  const cfg = join(tmp, "config");
  await mkdir(cfg);
  for (const c of ["unet", "vae", "text_encoder"]) {
    await mkdir(join(cfg, c));
    await copyFile(join(DIR, c, "config.json"), join(cfg, c, "config.json"));
  }
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

test("SD 1.x single file (with EMA, schedule buffers, position_ids) reproduces the golden euler case", async () => {
  const model = await loadModel(real, { config: join(tmp, "config") });
  try {
    assert.equal(model.info.family, "sd1");
    assert.equal(model.info.prediction, "epsilon");
    const j = readJson<{ prompt: string; negative_prompt: string; seed: number; num_inference_steps: number; guidance_scale: number }>(join(DIR, "cases/euler.json"));
    const t = await readCase(join(DIR, "cases/euler.safetensors"));
    const r = await model.txt2img({ prompt: j.prompt, negativePrompt: j.negative_prompt, seed: j.seed, steps: j.num_inference_steps, cfgScale: j.guidance_scale, sampler: "Euler", width: 64, height: 64 });
    assertClose("final latent", r.latents.data, t.get("final_latent")?.data ?? new Float32Array(), 2.5e-4);
  } finally {
    await model.dispose();
  }
});

test("a tensor that belongs to no known part is named in the error", async () => {
  const bad = join(tmp, "bad.safetensors");
  await withExtras(plain, bad, { "something_else.weight": { dtype: "F32", shape: [2], data: new Float32Array(2) } });
  await assert.rejects(loadModel(bad, { config: join(tmp, "config") }), (e: unknown) => e instanceof CheckpointError && /something_else\.weight/.test(e.message));
  const bad2 = join(tmp, "bad2.safetensors");
  await withExtras(plain, bad2, { "model.diffusion_model.extra_layer.weight": { dtype: "F32", shape: [2], data: new Float32Array(2) } });
  await assert.rejects(loadModel(bad2, { config: join(tmp, "config") }), /unexpected 1: .*extra_layer/);
});
