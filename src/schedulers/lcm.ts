/**
 * LCM: multistep consistency sampling of Luo et al. 2023, "Latent Consistency Models",
 * Algorithm 1: x₀ via the consistency boundary scalings c_skip, c_out at t·timestep_scaling,
 * then re-noise to the next timestep with fresh noise (none after the last step).
 * Behaviour of diffusers' LCMScheduler (v0.27.2):
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_lcm.py
 */
import { InputError } from "../errors.js";
import type { SchedulerConfig } from "./config.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { alphaPrev, alphaSchedule } from "./schedule.js";
import { checkSameLength, clamp, drawNoise, lincomb, x0FromAlpha } from "./vector.js";

const SIGMA_DATA = 0.5;

/** Timesteps picked evenly from the distillation schedule k·⌊T/N⌋ − 1 (N = original_inference_steps). */
function lcmTimesteps(c: SchedulerConfig, steps: number): number[] {
  const original = c.originalInferenceSteps;
  if (steps > original) {
    throw new InputError(`LCM runs at most original_inference_steps = ${original} steps (got ${steps}); use fewer steps`);
  }
  const k = Math.floor(c.numTrainTimesteps / original);
  const origin = Array.from({ length: original }, (_, j) => (original - j) * k - 1);
  const stride = original / steps; // numpy.linspace(0, N, steps, endpoint=False), then floor
  return Array.from({ length: steps }, (_, j) => origin[Math.floor(j * stride)] ?? 0);
}

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  return alphaSchedule("LCMScheduler", config, steps, lcmTimesteps(config, steps));
}

/** denoised = c_out·x₀ + c_skip·x; then √ᾱ_next·denoised + √(1−ᾱ_next)·z unless last. */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "LCM");
  const c = schedule.config;
  const t = schedule.timesteps[i] ?? 0;
  const prevT = schedule.timesteps[i + 1] ?? t;
  const at = schedule.alphasCumprod[t] ?? 1;
  const ap = alphaPrev(schedule, prevT);
  const scaled = t * c.timestepScaling;
  const cSkip = SIGMA_DATA ** 2 / (scaled ** 2 + SIGMA_DATA ** 2);
  const cOut = scaled / Math.sqrt(scaled ** 2 + SIGMA_DATA ** 2);
  let x0 = x0FromAlpha(sample, modelOut, at, c.predictionType);
  if (c.clipSample) x0 = clamp(x0, c.clipSampleRange);
  const denoised = lincomb([[cOut, x0], [cSkip, sample]]);
  const next = { ...state, taken: state.taken + 1 };
  if (i === schedule.steps - 1) return { prevSample: denoised, state: next, predOriginal: denoised };
  const noise = drawNoise(rng, sample.length, "LCM");
  const prevSample = lincomb([[Math.sqrt(ap), denoised], [Math.sqrt(1 - ap), noise]]);
  return { prevSample, state: next, predOriginal: denoised };
}

/** LCMScheduler. */
export const LCM: SchedulerImpl = { className: "LCMScheduler", createSchedule, step };
