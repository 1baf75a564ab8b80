/**
 * Shared scheduler maths and the one calling convention every sampler follows.
 *
 * The convention (one signature for all, so one schedule can serve concurrent requests):
 *
 *   const schedule = createSchedule(config, steps);   // readonly, never mutated
 *   let x = noise × initNoiseSigma(schedule), state = INITIAL_STATE;
 *   for (let i = 0; i < schedule.calls; i++) {         // calls = schedule.timesteps.length
 *     const eps = unet(scaleModelInput(schedule, i, x), schedule.timesteps[i]);
 *     ({ prevSample: x, state } = step(schedule, i, x, eps, state, rng));
 *   }
 *
 * `i` indexes model calls (Heun/DPM2 make 2·steps − 1 of them, PNDM steps + 1). `state` is an
 * immutable value the caller threads through: multistep samplers keep their history there and
 * nowhere else. `rng` is only read by samplers that add noise (ancestral, SDE, DDPM, LCM) and
 * by Euler, which draws (and ignores) one tensor per step exactly as diffusers does, so a
 * seeded generator stays in step with the reference. Float32Array latents, flat (NCHW order).
 *
 * Numerics follow diffusers 0.27.2 (https://github.com/huggingface/diffusers/tree/v0.27.2/src/diffusers/schedulers):
 * training-schedule values are rounded to float32 where diffusers keeps float32 tensors, per
 * element arithmetic is done in float64 and rounded once on output.
 */
import type { SchedulerClass, SchedulerConfig } from "./config.js";
import { fmaF32 } from "./f32-math.js";

const f = Math.fround;

/**
 * Anything that draws standard normal tensors in sequence (a `TorchGenerator`). Samplers ask
 * for `[n]`, n = sample.length: torch's normal sampler depends only on the element count, so
 * this equals drawing the latent shape; a per-image source should split n evenly by image.
 */
export interface NoiseSource {
  randn(shape: readonly number[]): { data: Float32Array };
}

/** A sampling schedule for one run length: everything `step` needs, precomputed. */
export interface Schedule {
  readonly className: SchedulerClass;
  readonly config: SchedulerConfig;
  /** Inference steps asked for. */
  readonly steps: number;
  /** Number of model evaluations (= timesteps.length). */
  readonly calls: number;
  /** The UNet timestep of each call (fractional for Euler-type schedules). */
  readonly timesteps: readonly number[];
  /** diffusers' `sigmas` after set_timesteps, for samplers that have them (else null). */
  readonly sigmas: readonly number[] | null;
  /** diffusers' `order`: img2img skips t_start·order calls (2 for Heun and DPM2). */
  readonly order: number;
  readonly initNoiseSigma: number;
  /** scale_model_input divides the sample by this for each call: √(σ²+1) (float32), or 1. */
  readonly inputDivisors: readonly number[];
  /** add_noise coefficients [signal, noise] of each call: x_t = a·x₀ + b·ε. */
  readonly noiseCoefs: readonly (readonly [number, number])[];
  /** Training ᾱ_t (float32 values), for add_noise at any training timestep. */
  readonly alphasCumprod: readonly number[];
  /** True when add_noise by timestep reads ᾱ_t directly (DDPM, DDIM, PNDM, LCM). */
  readonly noiseByAlpha: boolean;
  /** Sampler-specific per-call tables (e.g. DPM2's interpolated sigmas). */
  readonly tables: Readonly<Record<string, readonly number[]>>;
}

/** What a sampler carries from one call to the next. Treat as opaque and immutable. */
export interface SchedulerState {
  /** step() calls made so far in this run. */
  readonly taken: number;
  /** Newest last: model outputs, derivatives or x₀ estimates, as the sampler needs. */
  readonly history: readonly Float32Array[];
  /** The sample held between the two halves of a 2nd-order step, PNDM's x_t, UniPC's last sample. */
  readonly saved: Float32Array | null;
  /** UniPC: order of the previous predictor step. */
  readonly lastOrder: number;
}

/** The state every run starts from. */
export const INITIAL_STATE: SchedulerState = Object.freeze({ taken: 0, history: [], saved: null, lastOrder: 0 });

/** One step's result: the next sample, the state for the next call, and x₀ where computed. */
export interface StepResult {
  readonly prevSample: Float32Array;
  readonly state: SchedulerState;
  readonly predOriginal: Float32Array | null;
}

/** The contract each sampler file implements. */
export interface SchedulerImpl {
  readonly className: SchedulerClass;
  createSchedule(config: SchedulerConfig, steps: number): Schedule;
  step(
    schedule: Schedule,
    i: number,
    sample: Float32Array,
    modelOut: Float32Array,
    state: SchedulerState,
    rng?: NoiseSource,
  ): StepResult;
}

// ---------------------------------------------------------------- training noise schedule

/**
 * torch.linspace(start, end, n) in float32, bit-exact with the x86 CPU kernel: values before
 * the midpoint are start + step·k, the rest end − step·(n−1−k); the AVX2 loop takes 16 at a
 * time as two vectors, each one fused base plus lane·step (unfused); a scalar fused tail finishes.
 * https://github.com/pytorch/pytorch/blob/v1.13.1/aten/src/ATen/native/cpu/RangeFactoriesKernel.cpp
 */
function linspaceF32(start: number, end: number, n: number): number[] {
  const s = f(start);
  const e = f(end);
  const step = f(f(e - s) / (n - 1));
  const half = Math.floor(n / 2);
  const at = (k: number): number => (k < half ? fmaF32(step, k, s) : fmaF32(-step, n - k - 1, e));
  const out: number[] = [];
  let k = 0;
  for (; k + 16 <= n; k += 16) {
    for (const v of [k, k + 8]) {
      const base = at(v);
      for (let lane = 0; lane < 8; lane++) out.push(f(base + f(lane * step)));
    }
  }
  for (; k < n; k++) out.push(at(k));
  return out;
}

/** Betas of the "squaredcos_cap_v2" schedule (Nichol & Dhariwal 2021, eq. 17), capped at 0.999. */
function cosineBetas(n: number): number[] {
  const alphaBar = (t: number): number => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  return Array.from({ length: n }, (_, i) => f(Math.min(1 - alphaBar((i + 1) / n) / alphaBar(i / n), 0.999)));
}

/** Rescales betas to zero terminal SNR (Lin et al. 2023, "Common Diffusion Noise Schedules…", Alg. 1). */
function rescaleZeroSnr(betas: number[]): number[] {
  const sqrtBar = cumprod(betas.map((b) => f(1 - b))).map((a) => Math.sqrt(a));
  const first = sqrtBar[0] ?? 1;
  const last = sqrtBar[sqrtBar.length - 1] ?? 0;
  const bar = sqrtBar.map((v) => ((v - last) * first) / (first - last)).map((v) => v * v);
  return bar.map((v, i) => f(1 - (i === 0 ? v : v / (bar[i - 1] ?? 1))));
}

/** Running product, accumulated in float64 and stored as float32 (as torch.cumprod on CPU). */
function cumprod(xs: readonly number[]): number[] {
  let acc = 1;
  return xs.map((x) => f((acc *= x)));
}

/** The training betas β_t for a config (float32 values). */
export function makeBetas(c: SchedulerConfig): number[] {
  let betas: number[];
  if (c.trainedBetas !== null) betas = c.trainedBetas.map(f);
  else if (c.betaSchedule === "linear") betas = linspaceF32(c.betaStart, c.betaEnd, c.numTrainTimesteps);
  else if (c.betaSchedule === "scaled_linear") {
    betas = linspaceF32(Math.sqrt(c.betaStart), Math.sqrt(c.betaEnd), c.numTrainTimesteps).map((b) => f(b * b));
  } else betas = cosineBetas(c.numTrainTimesteps);
  return c.rescaleBetasZeroSnr ? rescaleZeroSnr(betas) : betas;
}

/** ᾱ_t = ∏(1 − β) for a config (float32 values). */
export function makeAlphasCumprod(c: SchedulerConfig): number[] {
  return cumprod(makeBetas(c).map((b) => f(1 - b)));
}

/** Training sigmas σ_t = √((1 − ᾱ_t)/ᾱ_t) in float32 (Karras et al. 2022, Table 1, VP). */
export function trainSigmas(alphasCumprod: readonly number[]): number[] {
  return alphasCumprod.map((a) => f(Math.sqrt(f(f(1 - a) / a))));
}

// ---------------------------------------------------------------- inference timesteps

/** numpy.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** numpy.linspace(start, stop, num) with the endpoint, in float64. */
export function linspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

/** numpy.arange(start, stop, step) for a negative step, in float64. */
export function arangeDown(start: number, stop: number, step: number): number[] {
  const n = Math.max(0, Math.ceil((stop - start) / step));
  return Array.from({ length: n }, (_, i) => start + i * step);
}

/**
 * The descending inference timesteps of the "discrete" schedulers' set_timesteps, before
 * rounding: linspace over [0, T−1], leading = k·⌊T/n⌋ + offset, trailing = round(T − k·T/n) − 1.
 */
export function spacedTimesteps(c: SchedulerConfig, n: number): number[] {
  const T = c.numTrainTimesteps;
  if (c.timestepSpacing === "linspace") return linspace(0, T - 1, n).reverse();
  if (c.timestepSpacing === "leading") {
    const ratio = Math.floor(T / n);
    return Array.from({ length: n }, (_, k) => (n - 1 - k) * ratio + c.stepsOffset);
  }
  return arangeDown(T, 0, -T / n).map((t) => roundHalfEven(t) - 1);
}

/** numpy.interp(x, [0, 1, …], fp): piecewise-linear lookup into a table. */
export function interp(x: number, fp: readonly number[]): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0] ?? NaN;
  if (x >= last) return fp[last] ?? NaN;
  const j = Math.floor(x);
  const lo = fp[j] ?? NaN;
  if (x === j) return lo;
  return ((fp[j + 1] ?? NaN) - lo) * (x - j) + lo;
}

/** Karras et al. 2022 eq. 5 sigmas (ρ = 7), from sigmaMax down to sigmaMin, in float64. */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, n: number): number[] {
  const rho = 7;
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  return linspace(0, 1, n).map((r) => (maxInv + r * (minInv - maxInv)) ** rho);
}

/** Fractional training timestep whose log-sigma matches `sigma` (diffusers' `_sigma_to_t`). */
export function sigmaToT(sigma: number, logSigmas: readonly number[]): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let j = 0; j < logSigmas.length; j++) if (logSigma - (logSigmas[j] ?? 0) >= 0) low = j;
  low = Math.min(low, logSigmas.length - 2);
  const lo = logSigmas[low] ?? 0;
  const hi = logSigmas[low + 1] ?? 0;
  const w = Math.min(Math.max((lo - logSigma) / (lo - hi), 0), 1);
  return (1 - w) * low + w * (low + 1);
}
