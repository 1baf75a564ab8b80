/**
 * Inference sigma/timestep schedules shared by several samplers: the k-diffusion family
 * (Euler, Heun, LMS, DPM2), the multistep solvers (DPM-Solver++, UniPC) and integer spacings.
 */
import type { SchedulerConfig } from "./config.js";
import { arangeDown, interp, karrasSigmas, linspace, roundHalfEven, sigmaToT, spacedTimesteps, trainSigmas } from "./common.js";

const f = Math.fround;

/** Options of kDiffusionSigmas that differ between the sampler classes. */
export interface KSigmaOptions {
  /** Euler honours config.sigmaMin/sigmaMax for Karras sigmas; the others do not. */
  readonly configRange: boolean;
  /** Timesteps derived from Karras sigmas: kept fractional (float32 or float64) or rounded. */
  readonly karrasTimesteps: "f32" | "f64" | "round";
}

/**
 * Timesteps and sigmas (descending, float32, without the final 0) of the k-diffusion-style
 * samplers: σ interpolated at the spaced timesteps, or Karras sigmas mapped back to timesteps.
 */
export function kDiffusionSigmas(
  c: SchedulerConfig,
  steps: number,
  alphasCumprod: readonly number[],
  opts: KSigmaOptions,
): { timesteps: number[]; sigmas: number[] } {
  const train = trainSigmas(alphasCumprod);
  let timesteps = spacedTimesteps(c, steps).map(f);
  let sigmas = timesteps.map((t) => interp(t, train));
  if (c.useKarrasSigmas) {
    const lo = (opts.configRange ? c.sigmaMin : null) ?? sigmas[sigmas.length - 1] ?? 0;
    const hi = (opts.configRange ? c.sigmaMax : null) ?? sigmas[0] ?? 0;
    sigmas = karrasSigmas(lo, hi, steps);
    const logSigmas = train.map((s) => f(Math.log(s)));
    const ts = sigmas.map((s) => sigmaToT(s, logSigmas));
    timesteps = opts.karrasTimesteps === "f32" ? ts.map(f) : opts.karrasTimesteps === "round" ? ts.map(roundHalfEven) : ts;
  }
  return { timesteps, sigmas: sigmas.map(f) };
}

/** [x₀, x₁, x₁, x₂, x₂, …, x_n, x_n, x_n]: diffusers' layout of per-call values for 2-stage samplers. */
export function expandTwoStage(xs: readonly number[]): number[] {
  const first = xs[0] ?? 0;
  const last = xs[xs.length - 1] ?? 0;
  return [first, ...xs.slice(1).flatMap((x) => [x, x]), last];
}

/** Integer inference timesteps (DDPM, DDIM): spacedTimesteps rounded half-to-even. */
export function integerTimesteps(c: SchedulerConfig, n: number): number[] {
  return spacedTimesteps(c, n).map(roundHalfEven);
}

/**
 * Integer timesteps of the multistep solvers (DPM-Solver, UniPC): n+1 points over
 * [0, last − 1] with the final one dropped (linspace, leading), or trailing from `last`.
 */
export function multistepTimesteps(c: SchedulerConfig, n: number, last: number): number[] {
  if (c.timestepSpacing === "linspace") return linspace(0, last - 1, n + 1).map(roundHalfEven).reverse().slice(0, -1);
  if (c.timestepSpacing === "leading") {
    const ratio = Math.floor(last / (n + 1));
    return Array.from({ length: n }, (_, k) => (n - k) * ratio + c.stepsOffset);
  }
  return arangeDown(last, 0, -c.numTrainTimesteps / n).map((t) => roundHalfEven(t) - 1);
}

/** α_σ = 1/√(σ²+1), σ_σ = σ·α_σ and λ = log α_σ − log σ_σ of the VP form of a k-sigma. */
export function vpOfSigma(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = 1 / Math.sqrt(sigma * sigma + 1);
  const s = sigma * alpha;
  return { alpha, sigma: s, lambda: Math.log(alpha) - Math.log(s) };
}

/** Karras sigmas over the whole training range and their rounded timesteps (DPM-Solver, UniPC). */
export function karrasOverTraining(train: readonly number[], n: number): { timesteps: number[]; sigmas: number[] } {
  const sigmas = karrasSigmas(train[0] ?? 0, train[train.length - 1] ?? 0, n);
  const logSigmas = train.map((s) => f(Math.log(s)));
  return { timesteps: sigmas.map((s) => roundHalfEven(sigmaToT(s, logSigmas))), sigmas };
}

/** exp(lerp(log a, log b, ½)) in float32 as torch computes it (0 when either is 0). */
export function logMidpoint(a: number, b: number): number {
  const la = f(Math.log(a));
  const lb = f(Math.log(b));
  return f(Math.exp(f(lb - f(f(lb - la) * 0.5))));
}

/** Per-call timesteps [t₀, t′₁, t₁, t′₂, …, t_{n−1}] interleaving interpolated timesteps `mids`. */
export function interleave(timesteps: readonly number[], mids: readonly number[]): number[] {
  return [timesteps[0] ?? 0, ...timesteps.slice(1).flatMap((t, k) => [mids[k] ?? 0, t])];
}

/** Training log-sigmas in float32, for sigma → timestep lookups. */
export function logTrainSigmas(alphasCumprod: readonly number[]): number[] {
  return trainSigmas(alphasCumprod).map((s) => f(Math.log(s)));
}

/** [σ_up, σ_down] of an ancestral step from σ to σ_next, in float32 like diffusers. */
export function ancestralSigmas(sigma: number, next: number): [number, number] {
  const s2 = f(sigma * sigma);
  const n2 = f(next * next);
  const up = f(Math.sqrt(f(f(n2 * f(s2 - n2)) / s2)));
  const down = f(Math.sqrt(f(n2 - f(up * up))));
  return [up, down];
}
