/** The denoising loop shared by txt2img, img2img and inpainting: U-Net calls, guidance, sampler steps. */
import { InputError } from "../errors.js";
import type { NoiseSource, SchedulerState } from "../schedulers/common.js";
import { INITIAL_STATE, createSchedule, findSampler, scaleModelInput, schedulerStep } from "../schedulers/index.js";
import { parseSchedulerConfig } from "../schedulers/config.js";
import type { Components, ProgressInfo, Tensor } from "./types.js";
import type { Conditioning } from "./conditioning.js";

/** Inputs of the loop. */
export interface DenoiseOptions {
  readonly sampler: string;
  readonly steps: number;
  readonly cfgScale: number;
  /** The U-Net context of each call: rows [uncond × B (when guided), cond₁ × B, …] and the cond weights. */
  readonly conditioning: Conditioning;
  /** Starting noise [B, C, h, w]; multiplied by the sampler's initial sigma unless `start` is given. */
  readonly noise: Tensor;
  readonly rng: NoiseSource;
  /** img2img: skip to this model call and start from these (already noised) latents. */
  readonly start?: { readonly index: number; readonly latents: Tensor };
  /** Inpainting checkpoints: channels appended to the U-Net input at every call ([B, k, h, w], not scaled). */
  readonly extraInput?: Tensor;
  /** Called after each step with the call index and new latents; returns the latents to continue from (4-channel inpainting blends here). */
  readonly afterStep?: (i: number, latents: Float32Array) => Float32Array;
  readonly onProgress?: (p: ProgressInfo) => void;
  /** Receives the U-Net's cross-attention maps [B·(2 if guided), h·w, L] of each call (slower graph). */
  readonly onAttention?: (i: number, maps: Tensor) => void;
  readonly signal?: AbortSignal;
}

/** Final latents of the loop. */
export interface Denoised {
  readonly latents: Tensor;
}

/** The scheduler for a sampler on this model: the model's config with the sampler's class and overrides. */
export function scheduleFor(c: Components, sampler: string, steps: number) {
  const spec = findSampler(sampler);
  const cfg = parseSchedulerConfig(c.schedulerConfig, {
    className: spec.className,
    overrides: { ...spec.overrides, prediction_type: c.prediction === "v" ? "v_prediction" : "epsilon" },
  });
  return createSchedule(cfg, steps);
}

function repeatBatch(a: Float32Array, times: number): Float32Array {
  if (times === 1) return a;
  const out = new Float32Array(a.length * times);
  for (let k = 0; k < times; k++) out.set(a, k * a.length);
  return out;
}

/** Appends channels per batch row: [B, C, h, w] + [B, k, h, w] → [B, C + k, h, w]. */
function concatChannels(x: Float32Array, xShape: readonly number[], extra: Tensor): Float32Array {
  const [b, c, h, w] = xShape as [number, number, number, number];
  const k = extra.shape[1] ?? 0;
  const plane = h * w;
  const out = new Float32Array(b * (c + k) * plane);
  for (let r = 0; r < b; r++) {
    out.set(x.subarray(r * c * plane, (r + 1) * c * plane), r * (c + k) * plane);
    out.set(extra.data.subarray(r * k * plane, (r + 1) * k * plane), (r * (c + k) + c) * plane);
  }
  return out;
}

/**
 * Classifier-free guidance over k conds (composable diffusion): ε_u + s·Σ_j w_j(ε_j − ε_u) from
 * [u, c₁, …, c_k] blocks; unguided, Σ_j w_j ε_j. With one cond of weight 1 these are exactly
 * ε_u + s·(ε_c − ε_u) and ε_c.
 */
function guide(pred: Float32Array, n: number, weights: readonly number[], scale: number | undefined): Float32Array {
  const out = new Float32Array(n);
  const off = scale === undefined ? 0 : n;
  for (let i = 0; i < n; i++) {
    const u = pred[i] ?? 0;
    let acc = 0;
    for (let j = 0; j < weights.length; j++) {
      const cj = pred[off + j * n + i] ?? 0;
      acc += (weights[j] ?? 0) * (scale === undefined ? cj : cj - u); // ×1 is exact
    }
    out[i] = scale === undefined ? acc : u + scale * acc;
  }
  return out;
}

/** Runs the sampler from noise (or a start point) to the final latents. */
export async function denoise(c: Components, o: DenoiseOptions): Promise<Denoised> {
  const schedule = scheduleFor(c, o.sampler, o.steps);
  const shape = o.noise.shape;
  const guided = o.cfgScale > 1;
  let x = o.start ? o.start.latents.data : o.noise.data.map((v) => v * schedule.initNoiseSigma);
  let state: SchedulerState = INITIAL_STATE;
  const first = o.start?.index ?? 0;
  const total = schedule.calls - first;
  for (let i = first; i < schedule.calls; i++) {
    if (o.signal?.aborted) throw abortError();
    let xin = scaleModelInput(schedule, i, x);
    if (o.extraInput) xin = concatChannels(xin, shape, o.extraInput);
    const rows = shape[0] ?? 1;
    const inShape = [(shape[1] ?? 4) + (o.extraInput?.shape[1] ?? 0), shape[2] ?? 0, shape[3] ?? 0];
    const cond = await o.conditioning(i, schedule.calls);
    const blocks = cond.weights.length + (guided ? 1 : 0);
    const t = schedule.timesteps[i] ?? 0;
    const unetIn = { data: repeatBatch(xin, blocks), shape: [rows * blocks, ...inShape] };
    let pred: Tensor;
    if (o.onAttention) {
      const r = await c.unet.predictWithAttention(unetIn, t, cond.context, cond.pooled);
      o.onAttention(i, r.attention);
      pred = r.out;
    } else pred = await c.unet.predict(unetIn, t, cond.context, cond.pooled);
    const eps = blocks === 1 ? pred.data : guide(pred.data, x.length, cond.weights, guided ? o.cfgScale : undefined);
    const res = schedulerStep(schedule, i, x, eps, state, o.rng);
    x = o.afterStep ? o.afterStep(i, res.prevSample) : res.prevSample;
    state = res.state;
    o.onProgress?.({
      step: i - first + 1,
      total,
      latents: { data: x, shape: [...shape] },
      denoised: res.predOriginal ? { data: res.predOriginal, shape: [...shape] } : null,
    });
  }
  return { latents: { data: x, shape: [...shape] } };
}

/** The error a cancelled generation throws (name "AbortError", as fetch uses). */
export function abortError(): Error {
  const e = new InputError("generation cancelled");
  Object.defineProperty(e, "name", { value: "AbortError" });
  return e;
}
