/**
 * Heun (A1111 "Heun"): Karras et al. 2022, Algorithm 1 (2nd-order Heun on the probability-flow
 * ODE). Each step is two model calls: an Euler predictor to σ_{k+1}, then the corrector averages
 * the slopes at σ_k and σ_{k+1}; the last step is a lone Euler step to σ = 0.
 * Behaviour of diffusers' HeunDiscreteScheduler (v0.27.2), timesteps [t₀, t₁, t₁, …, t_{n−1}, t_{n−1}]:
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_heun_discrete.py
 */
import type { SchedulerConfig } from "./config.js";
import { makeAlphasCumprod } from "./common.js";
import { kDiffusionSigmas } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, clamp, lincomb, x0FromSigma } from "./vector.js";

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  const alphasCumprod = makeAlphasCumprod(config);
  const { timesteps, sigmas } = kDiffusionSigmas(config, steps, alphasCumprod, {
    configRange: false,
    karrasTimesteps: "f64",
  });
  const withZero = [...sigmas, 0];
  return buildSchedule({
    className: "HeunDiscreteScheduler",
    config,
    steps,
    timesteps: [timesteps[0] ?? 0, ...timesteps.slice(1).flatMap((t) => [t, t])],
    alphasCumprod,
    sigmas: [withZero[0] ?? 0, ...withZero.slice(1, -1).flatMap((s) => [s, s]), 0],
    kind: "k",
    order: 2,
  });
}

/** Predictor when no sample is held (state.saved null), else corrector. */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  _rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "Heun");
  const sigmas = schedule.sigmas ?? [];
  const c = schedule.config;
  const first = state.saved === null;
  const sigma = sigmas[first ? i : i - 1] ?? 0;
  const next = sigmas[first ? i + 1 : i] ?? 0;
  let x0 = x0FromSigma(sample, modelOut, first ? sigma : next, c.predictionType);
  if (c.clipSample) x0 = clamp(x0, c.clipSampleRange);
  const dt = next - sigma;
  const taken = state.taken + 1;
  if (first) {
    const derivative = lincomb([[1 / sigma, sample], [-1 / sigma, x0]]);
    const prevSample = lincomb([[1, sample], [dt, derivative]]);
    return { prevSample, state: { ...state, taken, history: [derivative], saved: sample }, predOriginal: x0 };
  }
  const d1 = state.history[state.history.length - 1] ?? new Float32Array(sample.length);
  // x_{k+1} = x_k + dt·(d₁ + d₂)/2 with d₂ = (x̃ − x₀)/σ_{k+1} at the predicted point x̃.
  const prevSample = lincomb([[1, state.saved ?? sample], [dt / 2, d1], [dt / (2 * next), sample], [-dt / (2 * next), x0]]);
  return { prevSample, state: { ...state, taken, history: [], saved: null }, predOriginal: x0 };
}

/** HeunDiscreteScheduler. */
export const HEUN: SchedulerImpl = { className: "HeunDiscreteScheduler", createSchedule, step };
