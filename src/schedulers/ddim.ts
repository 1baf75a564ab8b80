/**
 * DDIM (A1111 "DDIM"): Song et al. 2021, "Denoising Diffusion Implicit Models", eq. 12 with
 * σ_t = η·√((1−ᾱ_prev)/(1−ᾱ_t))·√(1−ᾱ_t/ᾱ_prev) (eq. 16); η = config.eta, 0 by default.
 * Behaviour of diffusers' DDIMScheduler (v0.27.2), including its previous timestep t − ⌊T/n⌋
 * for every spacing:
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_ddim.py
 */
import type { SchedulerConfig } from "./config.js";
import { integerTimesteps } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { alphaPrev, alphaSchedule } from "./schedule.js";
import { checkSameLength, clamp, drawNoise, epsFromAlpha, lincomb, x0FromAlpha } from "./vector.js";

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  return alphaSchedule("DDIMScheduler", config, steps, integerTimesteps(config, steps));
}

/** x_prev = √ᾱ_prev·x₀ + √(1−ᾱ_prev−σ²)·ε (+ σ·z when η > 0). */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "DDIM");
  const c = schedule.config;
  const t = schedule.timesteps[i] ?? 0;
  const prevT = t - Math.floor(c.numTrainTimesteps / schedule.steps);
  const at = schedule.alphasCumprod[t] ?? 1;
  const ap = alphaPrev(schedule, prevT);
  let x0 = x0FromAlpha(sample, modelOut, at, c.predictionType);
  const eps = epsFromAlpha(sample, modelOut, at, c.predictionType);
  if (c.clipSample) x0 = clamp(x0, c.clipSampleRange);
  const variance = ((1 - ap) / (1 - at)) * (1 - at / ap);
  const std = c.eta * Math.sqrt(variance);
  const terms: [number, Float32Array][] = [[Math.sqrt(ap), x0], [Math.sqrt(1 - ap - std * std), eps]];
  if (c.eta > 0) terms.push([std, drawNoise(rng, sample.length, "DDIM with eta > 0")]);
  return { prevSample: lincomb(terms), state: { ...state, taken: state.taken + 1 }, predOriginal: x0 };
}

/** DDIMScheduler. */
export const DDIM: SchedulerImpl = { className: "DDIMScheduler", createSchedule, step };
