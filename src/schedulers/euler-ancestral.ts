/**
 * Euler ancestral (A1111 "Euler a"): an Euler step down to σ_down, then fresh noise of
 * size σ_up, with σ_up² + σ_down² = σ_next² and σ_up = σ_next·√(1 − σ_next²/σ²) (k-diffusion's
 * `get_ancestral_step` at η = 1; Song et al. 2021, eq. 16 in the σ parameterisation).
 * Behaviour of diffusers' EulerAncestralDiscreteScheduler (v0.27.2):
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_euler_ancestral_discrete.py
 */
import type { SchedulerConfig } from "./config.js";
import { makeAlphasCumprod } from "./common.js";
import { ancestralSigmas, kDiffusionSigmas } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, drawNoise, lincomb, x0FromSigma } from "./vector.js";

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  const alphasCumprod = makeAlphasCumprod(config);
  if (config.rescaleBetasZeroSnr) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
  // This class has no Karras option in diffusers 0.27.2: a config asking for it is ignored there too.
  const { timesteps, sigmas } = kDiffusionSigmas({ ...config, useKarrasSigmas: false }, steps, alphasCumprod, {
    configRange: false,
    karrasTimesteps: "f32",
  });
  return buildSchedule({
    className: "EulerAncestralDiscreteScheduler",
    config,
    steps,
    timesteps,
    alphasCumprod,
    sigmas: [...sigmas, 0],
    kind: "k",
  });
}

/** Euler to σ_down, then add σ_up·z with z from `rng` (drawn at every step, also the last). */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "Euler a");
  const sigmas = schedule.sigmas ?? [];
  const sigma = sigmas[i] ?? 0;
  const [up, down] = ancestralSigmas(sigma, sigmas[i + 1] ?? 0);
  const x0 = x0FromSigma(sample, modelOut, sigma, schedule.config.predictionType);
  const noise = drawNoise(rng, sample.length, "Euler a");
  const dt = down - sigma;
  const prevSample = lincomb([[1 + dt / sigma, sample], [-dt / sigma, x0], [up, noise]]);
  return { prevSample, state: { ...state, taken: state.taken + 1 }, predOriginal: x0 };
}

/** EulerAncestralDiscreteScheduler. */
export const EULER_ANCESTRAL: SchedulerImpl = { className: "EulerAncestralDiscreteScheduler", createSchedule, step };
