/** Building schedules, and the sampler-independent operations on them. */
import { InputError } from "../errors.js";
import type { SchedulerClass, SchedulerConfig } from "./config.js";
import { type Schedule, makeAlphasCumprod } from "./common.js";
import { divide } from "./vector.js";

const f = Math.fround;

/** What a sampler supplies to build its schedule; the rest is derived. */
export interface ScheduleParts {
  readonly className: SchedulerClass;
  readonly config: SchedulerConfig;
  readonly steps: number;
  readonly timesteps: readonly number[];
  readonly alphasCumprod: readonly number[];
  /** diffusers' sigmas array (k-diffusion and DPM-style samplers). */
  readonly sigmas?: readonly number[];
  /** σ of each call for input scaling (defaults to sigmas[i]). */
  readonly callSigmas?: readonly number[];
  /** σ of each call for add_noise (defaults to callSigmas). */
  readonly noiseSigmas?: readonly number[];
  /** "k": x = x₀ + σ·ε with scaled input; "vp-sigma": DPM/UniPC (α_σ·x₀ + σ·α_σ·ε); "alpha": ᾱ_t. */
  readonly kind: "k" | "vp-sigma" | "alpha";
  readonly order?: number;
  readonly tables?: Readonly<Record<string, readonly number[]>>;
}

/** Divisor √(σ²+1) in float32, as diffusers' scale_model_input computes it. */
function inputDivisor(sigma: number): number {
  return f(Math.sqrt(f(f(sigma * sigma) + 1)));
}

/** A schedule of the ᾱ-indexed samplers (DDIM, DDPM, LCM, PNDM): their timesteps over the config's training ᾱ. */
export function alphaSchedule(className: SchedulerClass, config: SchedulerConfig, steps: number, timesteps: readonly number[]): Schedule {
  return buildSchedule({ className, config, steps, timesteps, alphasCumprod: makeAlphasCumprod(config), kind: "alpha" });
}

/** Assembles a frozen Schedule from a sampler's parts. */
export function buildSchedule(p: ScheduleParts): Schedule {
  const sigmas = p.sigmas ?? null;
  const callSigmas = p.callSigmas ?? sigmas ?? [];
  const calls = p.timesteps.length;
  const noiseSigmas = p.noiseSigmas ?? callSigmas;
  const sigmaAt = (i: number): number => callSigmas[i] ?? 0;
  const noiseSigmaAt = (i: number): number => noiseSigmas[i] ?? 0;
  let inputDivisors: number[];
  let noiseCoefs: (readonly [number, number])[];
  let initNoiseSigma = 1;
  if (p.kind === "k") {
    inputDivisors = p.timesteps.map((_, i) => inputDivisor(sigmaAt(i)));
    noiseCoefs = p.timesteps.map((_, i) => [1, noiseSigmaAt(i)] as const);
    const max = Math.max(...(sigmas ?? [0]));
    const spacing = p.config.timestepSpacing;
    initNoiseSigma = spacing === "linspace" || spacing === "trailing" ? max : inputDivisor(max);
  } else if (p.kind === "vp-sigma") {
    inputDivisors = p.timesteps.map(() => 1);
    noiseCoefs = p.timesteps.map((_, i) => {
      const a = 1 / Math.sqrt(sigmaAt(i) ** 2 + 1);
      return [a, sigmaAt(i) * a] as const;
    });
  } else {
    inputDivisors = p.timesteps.map(() => 1);
    noiseCoefs = p.timesteps.map((t) => alphaCoefs(p.alphasCumprod, t));
  }
  return Object.freeze({
    className: p.className,
    config: p.config,
    steps: p.steps,
    calls,
    timesteps: Object.freeze([...p.timesteps]),
    sigmas: sigmas === null ? null : Object.freeze([...sigmas]),
    order: p.order ?? 1,
    initNoiseSigma,
    inputDivisors: Object.freeze(inputDivisors),
    noiseCoefs: Object.freeze(noiseCoefs),
    alphasCumprod: Object.freeze([...p.alphasCumprod]),
    noiseByAlpha: p.kind === "alpha",
    tables: Object.freeze(Object.fromEntries(Object.entries(p.tables ?? {}).map(([k, v]) => [k, Object.freeze([...v])]))),
  });
}

/** [√ᾱ_t, √(1−ᾱ_t)] at an integer training timestep, in float32 like diffusers' add_noise. */
function alphaCoefs(alphasCumprod: readonly number[], t: number): readonly [number, number] {
  const a = alphasCumprod[t];
  if (a === undefined || !Number.isInteger(t)) {
    throw new InputError(`timestep must be an integer in [0, ${alphasCumprod.length - 1}] (got ${t})`);
  }
  return [f(Math.sqrt(a)), f(Math.sqrt(f(1 - a)))];
}

function checkIndex(schedule: Schedule, i: number, who: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= schedule.calls) {
    throw new InputError(`${who}: call index must be an integer in [0, ${schedule.calls - 1}] (got ${i})`);
  }
}

/** The UNet input for call `i`: the sample divided by √(σ²+1) where the sampler scales (else the sample itself). */
export function scaleModelInput(schedule: Schedule, i: number, sample: Float32Array): Float32Array {
  checkIndex(schedule, i, "scaleModelInput");
  return divide(sample, schedule.inputDivisors[i] ?? 1);
}

/** The factor the initial N(0, I) noise is multiplied by. */
export function initNoiseSigma(schedule: Schedule): number {
  return schedule.initNoiseSigma;
}

/**
 * Noises `original` to the level of call `at` (a call index), or of a timestep `{ timestep }`
 * (any integer training timestep for DDPM/DDIM/PNDM/LCM, one of schedule.timesteps otherwise).
 * img2img: `addNoise(schedule, x0, noise, startIndexForStrength(schedule, strength))`.
 */
export function addNoise(
  schedule: Schedule,
  original: Float32Array,
  noise: Float32Array,
  at: number | { readonly timestep: number },
): Float32Array {
  if (original.length !== noise.length) {
    throw new InputError(`addNoise: noise has ${noise.length} values but the latent has ${original.length}`);
  }
  let coefs: readonly [number, number];
  if (typeof at === "number") {
    checkIndex(schedule, at, "addNoise");
    coefs = schedule.noiseCoefs[at] ?? [1, 0];
  } else if (schedule.noiseByAlpha) {
    coefs = alphaCoefs(schedule.alphasCumprod, at.timestep);
  } else {
    coefs = schedule.noiseCoefs[indexForTimestep(schedule, at.timestep)] ?? [1, 0];
  }
  const [a, b] = coefs;
  const out = new Float32Array(original.length);
  for (let j = 0; j < out.length; j++) out[j] = a * (original[j] ?? 0) + b * (noise[j] ?? 0);
  return out;
}

/** The call index of a timestep value (the second match when it repeats, as diffusers picks). */
export function indexForTimestep(schedule: Schedule, t: number): number {
  const hits = schedule.timesteps.flatMap((v, i) => (v === t ? [i] : []));
  const hit = hits.length > 1 ? hits[1] : hits[0];
  if (hit === undefined) {
    throw new InputError(`timestep ${t} is not in this schedule (${schedule.timesteps.join(", ")}); pass a call index`);
  }
  return hit;
}

/**
 * First call index of an img2img run at `strength` ∈ [0, 1]: diffusers skips
 * t_start = steps − min(⌊steps·strength⌋, steps) steps, i.e. t_start·order calls.
 */
export function startIndexForStrength(schedule: Schedule, strength: number): number {
  if (!(strength >= 0 && strength <= 1)) throw new InputError(`strength must be in [0, 1] (got ${strength})`);
  const init = Math.min(Math.floor(schedule.steps * strength), schedule.steps);
  return Math.min(Math.max(schedule.steps - init, 0) * schedule.order, schedule.calls);
}

/** ᾱ at the previous timestep; past the start, 1 or ᾱ₀ (set_alpha_to_one). */
export function alphaPrev(schedule: Schedule, prevT: number): number {
  const ac = schedule.alphasCumprod;
  if (prevT >= 0) return ac[prevT] ?? 1;
  return schedule.config.setAlphaToOne ? 1 : (ac[0] ?? 1);
}
