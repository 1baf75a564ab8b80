/**
 * Stage 3: the denoising U-Net (Ho et al. 2020, Alg. 1; Rombach et al. 2022, eq. 2) on VAE latents
 * cached once, conditioned by cross-attention on the frozen text encoder, with ~10% empty
 * captions for classifier-free guidance (Ho & Salimans 2022) and EMA weights for sampling.
 * The frozen encoder runs inside the step graph (forward only: grad() skips what no trainable
 * key depends on), which costs ~10% of a step and no cache of 77×D states per caption.
 */
import { join } from "node:path";
import { InputError } from "../errors.js";
import { input } from "../graph/apply.js";
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";
import { readImageCaptionFolder, type ImageCaptionData } from "../io/image-folder.js";
import { pathExists } from "../io/run-files.js";
import { openSafetensors, tensorToFloat32, writeSafetensors } from "../io/safetensors.js";
import { ClipTextEncoder } from "../models/clip/text-encoder.js";
import type { ClipTextConfig } from "../models/clip/config.js";
import { TEXT_CONTEXT_KEY, type UNetConfig, parseUNetConfig } from "../models/unet/config.js";
import { UNet2DConditionModel } from "../models/unet/unet.js";
import { vaeScaleFactor } from "../models/vae/config.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import { SD15_SCHEDULER_SETTINGS, parseSchedulerConfig } from "../schedulers/config.js";
import { makeAlphasCumprod } from "../schedulers/common.js";
import { ADAMW_DEFAULTS, type AdamWConfig } from "./adamw.js";
import { CAPTION_NOISE_SHARE, CAPTION_WRAP_SHARE, type CaptionAugment, WeightedSampler, imageBatch, randomCaption } from "./data.js";
import { Ema } from "./ema.js";
import { type ClipRun, type VaeRun, readClipRun, readVaeRun, vaeEncoderGraph } from "./frozen.js";
import { initParams } from "./init.js";
import { type PresetName, UNET_PRESETS } from "./presets.js";
import { Rng } from "./rng.js";
import { type TrainOptions, type TrainResult, checkShare, checkTrainOptions, openRun, readRunConfig, runCaptionAugment, runNumber, runShare, runStage, writeRunConfig } from "./run.js";
import { Trainer } from "./train-step.js";
import { unetSampler } from "./unet-sample.js";

/** Share of captions replaced by "" so the model also learns the unconditional prediction. */
export const CAPTION_DROPOUT = 0.1;
/** EMA decay (with the usual (1 + n)/(10 + n) warm-up). */
export const EMA_DECAY = 0.999;
/**
 * Share of training timesteps drawn from the noisier half of the schedule (the rest uniform over
 * all of it): a caption decides which emoji is drawn only where the latent is mostly noise
 * (scripts/unet-probe.ts: from t = 400 the noisy latent alone names the emoji 98% of the time),
 * so uniform draws spend half the steps where the text has nothing to teach.
 */
export const HIGH_NOISE_SHARE = 0.5;

/** A training timestep in [0, T): from [T/2, T) with probability `highShare`, else uniform (no extra draw when the share is 0). */
export function drawTimestep(r: Rng, steps: number, highShare: number): number {
  const half = Math.floor(steps / 2);
  return highShare > 0 && r.next() < highShare ? half + r.int(steps - half) : r.int(steps);
}

/** The U-Net stage's AdamW (lr is fed per step). */
export const UNET_OPTIMIZER: AdamWConfig = { ...ADAMW_DEFAULTS, weightDecay: 0.01, maxGradNorm: 1 };

/** Options of the U-Net stage. */
export interface UNetTrainOptions extends TrainOptions {
  readonly preset?: PresetName;
  /** The finished VAE and CLIP run folders (fresh runs; a resumed run reads them from its config). */
  readonly vaeRun?: string;
  readonly clipRun?: string;
  /** What the U-Net predicts: the noise (SD 1.x) or v = √ᾱ·ε − √(1−ᾱ)·z (SD 2.x; default). */
  readonly prediction?: TrainPrediction;
  /** γ of the loss weighting (see minSnrWeight; 0 = plain MSE; default 5). */
  readonly minSnrGamma?: number;
  /** Share of drawn captions reworded by `rephrase` (default CAPTION_WRAP_SHARE). */
  readonly captionWrap?: number;
  /** Share of reworded captions then disturbed by `CaptionNoise` (default CAPTION_NOISE_SHARE). */
  readonly captionNoise?: number;
  /** RMS of the Gaussian noise added to the text states the U-Net reads in training (see contextNoise; default 0 = none). */
  readonly contextNoise?: number;
  /** Share of drawn captions given a stray word that names something else of the folder (`CaptionDistractors`; default 0). */
  readonly captionDistract?: number;
  /** What the U-Net's context rows hold: the caption's token states (default, as SD) or its pooled state in every row (UNetConfig.textContext). */
  readonly textContext?: "tokens" | "pooled";
}

/** A `--text-context` value as the stage takes it ("tokens" where not given); anything else is refused. */
export function checkTextContext(v: string | undefined): "tokens" | "pooled" {
  if (v === undefined || v === "tokens" || v === "pooled") return v ?? "tokens";
  throw new InputError(`--text-context must be tokens or pooled (got '${v}')`);
}

/** The largest RMS of `contextNoise` a run takes: twice the text states' own per-element spread (about 1). */
const MAX_CONTEXT_NOISE = 2;

/** Prediction targets the U-Net stage trains. */
export type TrainPrediction = "epsilon" | "v_prediction";
/** Default prediction target: v, whose loss does not vanish at high noise as the ε loss's x₀ share does. */
export const DEFAULT_PREDICTION: TrainPrediction = "v_prediction";
/** Default γ of the loss weighting (minSnrWeight). */
export const DEFAULT_MIN_SNR_GAMMA = 5;

/**
 * Per-sample loss weight. For v targets it weighs the x₀ error by SNR clamped to [1, γ]:
 * min-SNR-γ (Hang et al. 2023) caps the low-noise steps, and the floor of 1 (the "truncated SNR"
 * weighting of Salimans & Ho 2022) keeps the high-noise steps, where a prompt decides what is
 * drawn where, at full weight instead of SNR ≈ 0.005; the v MSE is (SNR + 1) times the x₀ error,
 * so the weight stays ≤ 1. For ε targets (MSE = SNR times the x₀ error) that floor would multiply
 * the high-noise ε loss by 1/SNR (~200), so they get plain min-SNR-γ, min(SNR, γ)/SNR.
 */
export function minSnrWeight(alphaBar: number, gamma: number, prediction: TrainPrediction): number {
  if (gamma <= 0) return 1;
  const snr = alphaBar / Math.max(1 - alphaBar, 1e-12);
  return prediction === "epsilon" ? Math.min(snr, gamma) / snr : Math.min(Math.max(snr, 1), Math.max(gamma, 1)) / (snr + 1);
}

/** Posterior means and stds of every image, [N, C, h, w] each. */
interface LatentCache {
  readonly mean: Float32Array;
  readonly std: Float32Array;
  readonly shape: readonly [number, number, number, number];
}

async function encodeAll(vae: VaeRun, data: ImageCaptionData, o: TrainOptions): Promise<LatentCache> {
  const n = data.captions.length;
  const bs = Math.min(32, n);
  const f = vaeScaleFactor(vae.config);
  const h = data.size / f;
  const per = vae.config.latentChannels * h * h;
  const graph = await vaeEncoderGraph(vae, bs, data.size, o.provider);
  const mean = new Float32Array(n * per);
  const std = new Float32Array(n * per);
  try {
    for (let start = 0; start < n; start += bs) {
      const idx = Array.from({ length: bs }, (_, i) => Math.min(start + i, n - 1)); // the last batch repeats the last image
      const out = await graph.run({ image: imageBatch(data, idx) });
      const rows = Math.min(bs, n - start);
      mean.set((out.mean?.data as Float32Array).subarray(0, rows * per), start * per);
      std.set((out.std?.data as Float32Array).subarray(0, rows * per), start * per);
    }
  } finally {
    await graph.dispose();
  }
  return { mean, std, shape: [n, vae.config.latentChannels, h, h] };
}

/** The latents of the run: read from `latents.safetensors`, or encoded once and written there. */
async function latentCache(runDir: string, vae: VaeRun, data: ImageCaptionData, o: TrainOptions): Promise<LatentCache> {
  const path = join(runDir, "latents.safetensors");
  if (pathExists(path)) {
    const f = await openSafetensors(path);
    try {
      const m = await f.read("mean");
      const s = await f.read("std");
      if (m.shape[0] === data.captions.length) return { mean: tensorToFloat32(m), std: tensorToFloat32(s), shape: m.shape as [number, number, number, number] };
    } finally {
      await f.close();
    }
  }
  const c = await encodeAll(vae, data, o);
  await writeSafetensors(path, { mean: { dtype: "F32", shape: c.shape, data: c.mean }, std: { dtype: "F32", shape: c.shape, data: c.std } });
  return c;
}

/**
 * 1 / standard deviation of the sampled latents μ + σ·ε (variance of the means plus the mean
 * posterior variance): makes what the U-Net sees unit-variance, as SD's 0.18215 does. For a
 * trained VAE σ² is ~1% of it; for a barely trained one it dominates.
 */
function scalingFactor(c: LatentCache): number {
  let s = 0;
  let s2 = 0;
  let post = 0;
  for (const [i, v] of c.mean.entries()) {
    s += v;
    s2 += v * v;
    post += (c.std[i] ?? 0) ** 2;
  }
  const n = c.mean.length;
  return 1 / Math.sqrt(Math.max(s2 / n - (s / n) ** 2 + post / n, 1e-12));
}

/**
 * Conditioning augmentation: Gaussian noise of RMS `rms` added to a batch's [B, L, D] text states,
 * four fifths of its variance one vector per caption shared by all L rows (as a reworded prompt
 * moves every row after the new words, the padding rows included), one fifth independent per row.
 * A U-Net trained on such nearby states cannot rely on exactly where in the encoder's space a
 * caption lands, only on the neighbourhood.
 */
export function contextNoise(r: Rng, shape: readonly [number, number, number], rms: number): Float32Array {
  const [b, len, d] = shape;
  const [shared, own] = [rms * Math.sqrt(0.8), rms * Math.sqrt(0.2)];
  const out = new Float32Array(b * len * d);
  for (let k = 0; k < b; k++) {
    const v = r.normals(d);
    const e = r.normals(len * d);
    for (let j = 0; j < len; j++) for (let q = 0; q < d; q++) out[(k * len + j) * d + q] = shared * (v[q] ?? 0) + own * (e[j * d + q] ?? 0);
  }
  return out;
}

/** One step's feeds: noised scaled latents at random timesteps, their targets (ε or v) and loss weights, caption ids (10% empty). */
function noisyBatch(r: Rng, b: { cache: LatentCache; data: ImageCaptionData; clip: ClipRun; scale: number; alphas: readonly number[]; batch: number; prediction: TrainPrediction; gamma: number; draw: WeightedSampler; captions: CaptionAugment; highShare: number; contextNoise: number }): Record<string, HostTensor> {
  const [, ch, h, w] = b.cache.shape;
  const per = ch * h * w;
  const len = b.clip.config.maxPositions;
  const ctxShape = [b.batch, len, b.clip.config.hiddenSize] as const;
  const idx = b.draw.sample(r, b.batch);
  const sample = new Float32Array(b.batch * per);
  const noise = r.normals(b.batch * per);
  const target = b.prediction === "epsilon" ? noise : new Float32Array(b.batch * per);
  const ts = new Float32Array(b.batch);
  const weight = new Float32Array(b.batch);
  const ids = new BigInt64Array(b.batch * len);
  idx.forEach((i, k) => {
    const t = drawTimestep(r, b.alphas.length, b.highShare);
    ts[k] = t;
    const ab = b.alphas[t] ?? 1;
    const [sa, sb] = [Math.sqrt(ab), Math.sqrt(1 - ab)];
    weight[k] = minSnrWeight(ab, b.gamma, b.prediction) / b.batch;
    const eps = r.normals(per); // the posterior sample's noise: z = (μ + σ·ε)·scale
    for (let j = 0; j < per; j++) {
      const z = ((b.cache.mean[i * per + j] ?? 0) + (b.cache.std[i * per + j] ?? 0) * (eps[j] ?? 0)) * b.scale;
      const n = noise[k * per + j] ?? 0;
      sample[k * per + j] = sa * z + sb * n;
      if (b.prediction === "v_prediction") target[k * per + j] = sa * n - sb * z;
    }
    const caption = r.next() < CAPTION_DROPOUT ? "" : randomCaption(b.data, i, r, b.captions);
    b.clip.tokenizer.encode(caption).forEach((id, j) => (ids[k * len + j] = BigInt(id)));
  });
  return {
    sample: { dtype: "float32", shape: [b.batch, ch, h, w], data: sample },
    target: { dtype: "float32", shape: [b.batch, ch, h, w], data: target },
    timestep: { dtype: "float32", shape: [b.batch], data: ts },
    weight: { dtype: "float32", shape: [b.batch], data: weight },
    input_ids: { dtype: "int64", shape: [b.batch, len], data: ids },
    ...(b.contextNoise > 0 ? { context_noise: { dtype: "float32", shape: [...ctxShape], data: contextNoise(r, ctxShape, b.contextNoise) } } : {}),
  };
}

/** The prediction target a run config records (runs from before the option trained ε). */
export function runPrediction(run: Readonly<Record<string, unknown>>): TrainPrediction {
  const p = run.prediction ?? "epsilon";
  if (p !== "epsilon" && p !== "v_prediction") throw new InputError(`U-Net run config: prediction must be epsilon or v_prediction (got '${String(p)}')`);
  return p;
}

/** The U-Net stage's loss graph, its parameters (text encoder and U-Net) and the trainable (U-Net) keys. */
export interface UNetLossGraph {
  readonly loss: Tensor;
  readonly params: ReadonlyMap<string, Tensor>;
  readonly trainable: ReadonlySet<string>;
}

/**
 * Frozen text encoder → U-Net → Σ_b weight_b · mean_chw (out − target)² (the batch mean when
 * every weight is 1/B). Inputs: input_ids, sample, timestep, target, weight, and with `noisyContext`
 * context_noise ([B, L, D], added to the text states the U-Net cross-attends to).
 */
export function unetLossGraph(text: ClipTextConfig, unet: UNetConfig, batch: number, latent: readonly [number, number, number], noisyContext = false): UNetLossGraph {
  const reg = new ParamRegistry();
  const s = Scope.root(reg);
  const enc = new ClipTextEncoder(s, text).forward(input("input_ids", "int64", [batch, text.maxPositions]));
  const textKeys = new Set(reg.params.keys());
  const classLabels = unet.classEmbed === undefined ? undefined : enc.pooled; // the caption's pooled (EOS) state
  const [len, dim] = [text.maxPositions, text.hiddenSize];
  const rows = unet.textContext === "pooled" ? g.expand(g.reshape(enc.pooled, [batch, 1, dim]), [batch, len, dim]) : enc.lastHiddenState;
  const context = noisyContext ? g.add(rows, input("context_noise", "float32", [batch, len, dim])) : rows;
  const out = new UNet2DConditionModel(s, unet).forward(input("sample", "float32", [batch, ...latent]), input("timestep", "float32", [batch]), context, classLabels).out;
  const d = g.sub(out, input("target", "float32", [batch, ...latent]));
  const perSample = g.reduceMean(g.mul(d, d), [1, 2, 3]);
  const loss = g.reduceSum(g.mul(perSample, input("weight", "float32", [batch])), [0]);
  return { loss, params: reg.params, trainable: new Set([...reg.params.keys()].filter((k) => !textKeys.has(k))) };
}

/** A preset's config for latents of `size` and a text encoder of width `textDim` (context and, where there is one, class embedding). */
export function unetModelConfig(preset: Readonly<Record<string, unknown>>, size: number, textDim: number, textContext: "tokens" | "pooled" = "tokens"): Record<string, unknown> {
  const model: Record<string, unknown> = { ...preset, sample_size: size, cross_attention_dim: textDim };
  if (preset.class_embed_type === "projection") model.projection_class_embeddings_input_dim = textDim;
  if (textContext === "pooled") model[TEXT_CONTEXT_KEY] = "pooled";
  return model;
}

/** Fresh U-Net weights (the output conv zeroed, so the first prediction is 0). */
export function initUNetParams(params: ReadonlyMap<string, Tensor>, trainable: ReadonlySet<string>, rng: Rng): Map<string, HostTensor> {
  return initParams(new Map([...params].filter(([k]) => trainable.has(k))), rng, (k) => (k.startsWith("conv_out.") ? "zeros" : undefined));
}

/** The frozen stages a U-Net run builds on: VAE and CLIP run folders, or exported model folders. */
async function readFrozenRuns(vaeDir: string, clipDir: string): Promise<{ vae: VaeRun; clip: ClipRun }> {
  if (vaeDir === "" || clipDir === "") throw new InputError("the U-Net stage needs --vae and --clip: finished `sdts train vae|clip` run folders, or an exported model folder such as models/default for either");
  return { vae: await readVaeRun(vaeDir), clip: await readClipRun(clipDir) };
}

/** Trains (or resumes) the U-Net on `dataDir` with the frozen VAE and text encoder of earlier runs. */
export async function trainUNet(dataDir: string, runDir: string, o: UNetTrainOptions): Promise<TrainResult> {
  checkTrainOptions(o);
  if (o.prediction !== undefined) runPrediction({ prediction: o.prediction });
  const textContext = checkTextContext(o.textContext);
  if (o.minSnrGamma !== undefined && !(o.minSnrGamma >= 0 && Number.isFinite(o.minSnrGamma))) throw new InputError(`--min-snr-gamma must be a number ≥ 0 (0 turns the weighting off; got ${o.minSnrGamma})`);
  for (const [flag, v] of [["caption-wrap", o.captionWrap], ["caption-noise", o.captionNoise], ["caption-distract", o.captionDistract]] as const) checkShare(flag, v);
  if (o.contextNoise !== undefined && !(o.contextNoise >= 0 && o.contextNoise <= MAX_CONTEXT_NOISE)) throw new InputError(`--context-noise must be an RMS from 0 to ${MAX_CONTEXT_NOISE} (the text states' own per-element spread is about 1; got ${o.contextNoise})`);
  // A fresh run reads its VAE and text encoder before making the run folder: a wrong --vae or --clip leaves nothing behind.
  const fresh = o.resume === true ? undefined : await readFrozenRuns(o.vaeRun ?? "", o.clipRun ?? "");
  const saved = await openRun(runDir, "unet", o);
  const prior = saved ? await readRunConfig(runDir) : undefined;
  const vaeDir = String(prior?.vae ?? o.vaeRun ?? "");
  const clipDir = String(prior?.clip ?? o.clipRun ?? "");
  const { vae, clip } = fresh ?? (await readFrozenRuns(vaeDir, clipDir));
  const data = await readImageCaptionFolder(dataDir, vae.imageSize, o.limit);
  const cache = await latentCache(runDir, vae, data, o);
  const preset = o.preset ?? "default";
  const run = prior ?? { kind: "unet", data: dataDir, vae: vaeDir, clip: clipDir, scalingFactor: scalingFactor(cache), captionDropout: CAPTION_DROPOUT, captionWrap: o.captionWrap ?? CAPTION_WRAP_SHARE, captionNoise: o.captionNoise ?? CAPTION_NOISE_SHARE, timestepHighShare: HIGH_NOISE_SHARE, emaDecay: EMA_DECAY, prediction: o.prediction ?? DEFAULT_PREDICTION, minSnrGamma: o.minSnrGamma ?? DEFAULT_MIN_SNR_GAMMA, contextNoise: o.contextNoise ?? 0, captionDistract: o.captionDistract ?? 0, model: unetModelConfig(UNET_PRESETS[preset], cache.shape[2], clip.config.hiddenSize, textContext) };
  if (!saved) await writeRunConfig(runDir, run);
  const ucfg = parseUNetConfig(run.model);
  const scale = Number(run.scalingFactor);
  const prediction = runPrediction(run);
  const gamma = Number(run.minSnrGamma ?? 0);
  const highShare = runShare(run, "timestepHighShare");
  const ctxNoise = runNumber(run, "contextNoise", MAX_CONTEXT_NOISE);
  const captions = runCaptionAugment(run, data.captions);
  const [, ch, h, w] = cache.shape;
  const { loss, params, trainable } = unetLossGraph(clip.config, ucfg, o.batch, [ch, h, w], ctxNoise > 0);
  const rng = new Rng(saved?.rngState ?? o.seed ?? 3);
  const init = new Map(saved?.params ?? initUNetParams(params, trainable, rng));
  for (const k of params.keys()) if (!trainable.has(k)) init.set(k, clip.params.get(k) as HostTensor);
  const trainer = await Trainer.create(loss, params, init, {
    name: "unet-train",
    trainable,
    optimizer: UNET_OPTIMIZER,
    ...(saved ? { state: { step: saved.step, m: new Map(saved.m), v: new Map(saved.v) } } : {}),
    ...(o.provider ? { provider: o.provider } : {}),
  });
  const ema = new Ema(trainer, EMA_DECAY, saved?.extra);
  const alphas = makeAlphasCumprod(parseSchedulerConfig(SD15_SCHEDULER_SETTINGS, { className: "DDPMScheduler" }));
  const draw = new WeightedSampler(data.weights);
  const sampler = await unetSampler({ vae, clip, unet: ucfg, data, scale, prediction, provider: o.provider });
  return runStage(runDir, {
    kind: "unet",
    trainer,
    batch: (r) => noisyBatch(r, { cache, data, clip, scale, alphas, batch: o.batch, prediction, gamma, draw, captions, highShare, contextNoise: ctxNoise }),
    afterStep: () => ema.update(),
    extraState: () => ema.tensors(),
    sample: () => sampler.grid(ema.tensors()),
    async dispose() {
      await trainer.dispose();
      await sampler.dispose();
    },
  }, o, rng.state);
}
