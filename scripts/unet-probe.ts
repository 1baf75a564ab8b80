/**
 * A quick probe of how much a U-Net run has learnt of *which* emoji a caption names — minutes
 * where the full `npm run bench:default` needs an exported model and 100 sampled images.
 *
 * For training images with one of their captions: noise the cached latent to step t, take the
 * model's one-step x₀ estimate (with CFG 5) and ask whether the nearest cached latent (L2) is the
 * same emoji (any skin tone, either style). At t = 999 the latent carries almost nothing (√ᾱ ≈ 7%),
 * so the estimate is mostly what the caption decides; the first row takes the same captions from
 * pure noise, as sampling starts. The bench's free-text prompts (and their held-out phrasings)
 * are probed the same way from pure noise.
 *
 *   npx tsx scripts/unet-probe.ts <unet-run> [--n 512] [--weights ema|params]
 */
import { basename, join } from "node:path";
import { PROMPT_FILES, baseCode, readPromptCases, smallest, squaredDistances } from "../bench/emoji-match.js";
import { readImageCaptionFolder } from "../src/io/image-folder.js";
import { openSafetensors, tensorToFloat32 } from "../src/io/safetensors.js";
import { parseUNetConfig } from "../src/models/unet/config.js";
import type { HostTensor } from "../src/runtime/host-tensor.js";
import { SD15_SCHEDULER_SETTINGS, parseSchedulerConfig } from "../src/schedulers/config.js";
import { makeAlphasCumprod } from "../src/schedulers/common.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { randomCaption } from "../src/train/data.js";
import { readClipRun, textEncoderGraph, unetGraph, unetTextFeeds } from "../src/train/frozen.js";
import { Rng } from "../src/train/rng.js";
import { readRunConfig } from "../src/train/run.js";
import { runPrediction } from "../src/train/unet.js";

const B = 64;
const CFG = 5;

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

const runDir = process.argv[2];
if (!runDir || runDir.startsWith("--")) throw new Error("usage: npx tsx scripts/unet-probe.ts <unet-run> [--n 512] [--weights ema|params]");
const n = Number(arg("--n", "512"));
const which = arg("--weights", "ema");
const run = await readRunConfig(runDir);
const clip = await readClipRun(String(run.clip));
const data = await readImageCaptionFolder(String(run.data), 64);
const lat = await openSafetensors(join(runDir, "latents.safetensors"));
const meanT = await lat.read("mean");
const mean = tensorToFloat32(meanT);
await lat.close();
const [N, ch, h, w] = meanT.shape as [number, number, number, number]; // square latents (h = w)
const per = ch * h * w;
const scale = Number(run.scalingFactor);
const z = mean.map((v) => v * scale);
const codes = data.names.map(baseCode);
const ck = await loadCheckpoint(join(runDir, "checkpoint.safetensors"), "unet");
const weights = which === "ema" && ck.extra.size > 0 ? ck.extra : ck.params;
const ucfg = parseUNetConfig(run.model as Record<string, unknown>);
const prediction = runPrediction(run);
const L = clip.config.maxPositions;
const te = await textEncoderGraph(clip, B);
const unet = await unetGraph("unet-probe", ucfg, { batch: B, size: h, contextLength: L, values: weights });
const alphas = makeAlphasCumprod(parseSchedulerConfig(SD15_SCHEDULER_SETTINGS, { className: "DDPMScheduler" }));

/** The U-Net's text feeds of B prompts: the context, and the pooled states where it has a class embedding. */
async function encode(prompts: readonly string[]): Promise<Record<string, HostTensor>> {
  const ids = new BigInt64Array(B * L);
  prompts.forEach((p, r) => clip.tokenizer.encode(p).forEach((id, j) => (ids[r * L + j] = BigInt(id))));
  return unetTextFeeds(await te.run({ input_ids: { dtype: "int64", shape: [B, L], data: ids } }), ucfg);
}

/** One-step x₀ estimates with CFG for up to B prompts from noisy latents xt at step t. */
async function x0(prompts: readonly string[], xt: Float32Array, t: number, uncond: Record<string, HostTensor>): Promise<Float32Array> {
  const padded = [...prompts, ...new Array<string>(B - prompts.length).fill("")];
  const cond = await encode(padded);
  const feeds = (text: Record<string, HostTensor>) => ({ sample: { dtype: "float32" as const, shape: [B, ch, h, w], data: xt }, timestep: { dtype: "float32" as const, shape: [B], data: new Float32Array(B).fill(t) }, ...text });
  const oc = (await unet.run(feeds(cond))).out?.data as Float32Array;
  const ou = (await unet.run(feeds(uncond))).out?.data as Float32Array;
  const ab = alphas[t] ?? 0;
  const [sa, sb] = [Math.sqrt(ab), Math.sqrt(1 - ab)];
  const out = new Float32Array(B * per);
  for (let j = 0; j < out.length; j++) {
    const o = (ou[j] ?? 0) + CFG * ((oc[j] ?? 0) - (ou[j] ?? 0));
    const x = xt[j] ?? 0;
    out[j] = prediction === "v_prediction" ? sa * x - sb * o : (x - sb * o) / sa;
  }
  return out;
}

/** Whether the nearest latent to estimate k, and whether one of the 5 nearest, is `code`. */
function hits(est: Float32Array, k: number, code: string): [boolean, boolean] {
  const top = smallest(squaredDistances(est.subarray(k * per, (k + 1) * per), z, per), 5);
  return [codes[top[0] ?? 0] === code, top.some((j) => codes[j] === code)];
}

const uncond = await encode(new Array<string>(B).fill(""));
const rng = new Rng(77);
const picked = Array.from({ length: n }, (_, i) => Math.floor((i * N) / n));
console.log(`probe ${runDir} (${which} weights, step ${ck.step}): ${n} training images, random caption each, CFG ${CFG}`);
for (const [t, pure] of [[999, true], [999, false], [900, false], [700, false], [400, false]] as const) {
  const ab = pure ? 0 : (alphas[t] ?? 0);
  let [h1, h5] = [0, 0];
  for (let s = 0; s < n; s += B) {
    const idx = picked.slice(s, s + B);
    const xt = new Float32Array(B * per);
    const noise = rng.normals(B * per);
    idx.forEach((i, k) => {
      for (let q = 0; q < per; q++) xt[k * per + q] = Math.sqrt(ab) * (z[i * per + q] ?? 0) + Math.sqrt(1 - ab) * (noise[k * per + q] ?? 0);
    });
    const prompts = idx.map((i) => randomCaption(data, i, rng));
    const est = await x0(prompts, xt, t, uncond);
    idx.forEach((i, k) => {
      const [a, b] = hits(est, k, codes[i] ?? "");
      h1 += Number(a);
      h5 += Number(b);
    });
  }
  console.log(`t=${t}${pure ? " (pure noise)" : ""}: nearest latent is the emoji ${((100 * h1) / n).toFixed(1)}%, in the 5 nearest ${((100 * h5) / n).toFixed(1)}%`);
}
for (const file of PROMPT_FILES) {
  const cases = readPromptCases(file);
  let b5 = 0;
  for (let s = 0; s < cases.length; s += B) {
    const part = cases.slice(s, s + B);
    const est = await x0(part.map((c) => c.prompt), rng.normals(B * per), 999, uncond);
    part.forEach((c, k) => (b5 += Number(hits(est, k, c.emoji)[1])));
  }
  console.log(`${basename(file)}, x₀ from pure noise: named emoji in the 5 nearest latents ${((100 * b5) / cases.length).toFixed(0)}%`);
}
await te.dispose();
await unet.dispose();
