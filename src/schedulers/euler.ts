/**
 * Euler (A1111 "Euler"): the first-order sampler of Karras et al. 2022, Algorithm 2 with
 * γ = 0 (no churn), on the probability-flow ODE dx/dσ = (x − x₀)/σ.
 * Behaviour of diffusers' EulerDiscreteScheduler (v0.27.2):
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_euler_discrete.py
 */
import type { SchedulerConfig } from "./config.js";
import { makeAlphasCumprod, trainSigmas } from "./common.js";
import { kDiffusionSigmas } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, lincomb, x0FromSigma } from "./vector.js";

const f = Math.fround;

/** Log-linear sigmas: n+1 values from σ_max down to σ_min, evenly spaced in log σ (diffusers quirk kept). */
function logLinearSigmas(train: readonly number[], steps: number): number[] {
  const hi = Math.log(train[train.length - 1] ?? 1);
  const lo = Math.log(train[0] ?? 1);
  return Array.from({ length: steps + 1 }, (_, k) => f(Math.exp(hi + ((lo - hi) * k) / steps)));
}

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  const alphasCumprod = makeAlphasCumprod(config);
  if (config.rescaleBetasZeroSnr) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
  const { timesteps, sigmas } = kDiffusionSigmas(config, steps, alphasCumprod, {
    configRange: true,
    karrasTimesteps: "f32",
  });
  const used = config.interpolationType === "log_linear" && !config.useKarrasSigmas
    ? logLinearSigmas(trainSigmas(alphasCumprod), steps)
    : sigmas;
  return buildSchedule({
    className: "EulerDiscreteScheduler",
    config,
    steps,
    timesteps,
    alphasCumprod,
    sigmas: [...used, 0],
    kind: "k",
  });
}

/** One Euler step from σ_i to σ_{i+1}: x + (x − x₀)/σ_i · (σ_{i+1} − σ_i). */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "Euler");
  const sigmas = schedule.sigmas ?? [];
  const sigma = sigmas[i] ?? 0;
  const next = sigmas[i + 1] ?? 0;
  // diffusers draws one (unused, as churn is 0) tensor per step: keep the generator in step.
  rng?.randn([sample.length]);
  const x0 = x0FromSigma(sample, modelOut, sigma, schedule.config.predictionType);
  const dt = next - sigma;
  const prevSample = lincomb([[1 + dt / sigma, sample], [-dt / sigma, x0]]);
  return { prevSample, state: { ...state, taken: state.taken + 1 }, predOriginal: x0 };
}

/** EulerDiscreteScheduler. */
export const EULER: SchedulerImpl = { className: "EulerDiscreteScheduler", createSchedule, step };
