/**
 * Schedulers (samplers): pure functions over flat Float32Array latents. See common.ts for the
 * calling convention; `samplerConfig("Euler a")` → `createSchedule(cfg, steps)` → loop `step`.
 */
import { InputError } from "../errors.js";
import type { SchedulerClass, SchedulerConfig } from "./config.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { DDIM } from "./ddim.js";
import { DDPM } from "./ddpm.js";
import { DPM_SOLVER_MULTISTEP } from "./dpm-solver-multistep.js";
import { EULER } from "./euler.js";
import { EULER_ANCESTRAL } from "./euler-ancestral.js";
import { HEUN } from "./heun.js";
import { KDPM2 } from "./kdpm2.js";
import { KDPM2_ANCESTRAL } from "./kdpm2-ancestral.js";
import { LCM } from "./lcm.js";
import { LMS } from "./lms.js";
import { PNDM } from "./pndm.js";
import { UNIPC } from "./unipc.js";

// The public scheduler API, re-exported from the files that define (and document) it.
export { SCHEDULER_CLASSES, SD15_SCHEDULER_SETTINGS, parseSchedulerConfig } from "./config.js";
export type { PredictionType, SchedulerClass, SchedulerConfig, TimestepSpacing } from "./config.js";
export { INITIAL_STATE } from "./common.js";
export type { NoiseSource, Schedule, SchedulerState, StepResult } from "./common.js";
export { addNoise, indexForTimestep, initNoiseSigma, scaleModelInput, startIndexForStrength } from "./schedule.js";
export { SAMPLERS, getScheduler, samplerConfig } from "./samplers.js";
export type { SamplerInfo } from "./samplers.js";
export { TorchGenerator, randn } from "./torch-random.js";
export type { NoiseTensor } from "./torch-random.js";

/** Every implemented scheduler by diffusers class name. */
export const SCHEDULER_IMPLS: Readonly<Record<SchedulerClass, SchedulerImpl>> = Object.freeze({
  DDPMScheduler: DDPM,
  DDIMScheduler: DDIM,
  PNDMScheduler: PNDM,
  LMSDiscreteScheduler: LMS,
  EulerDiscreteScheduler: EULER,
  EulerAncestralDiscreteScheduler: EULER_ANCESTRAL,
  HeunDiscreteScheduler: HEUN,
  KDPM2DiscreteScheduler: KDPM2,
  KDPM2AncestralDiscreteScheduler: KDPM2_ANCESTRAL,
  DPMSolverMultistepScheduler: DPM_SOLVER_MULTISTEP,
  UniPCMultistepScheduler: UNIPC,
  LCMScheduler: LCM,
});

/** Builds the readonly schedule of `config.className` for `steps` inference steps. */
export function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  if (!Number.isInteger(steps) || steps < 1 || steps > config.numTrainTimesteps) {
    throw new InputError(`steps must be an integer in [1, ${config.numTrainTimesteps}] (got ${steps})`);
  }
  return SCHEDULER_IMPLS[config.className].createSchedule(config, steps);
}

/**
 * Advances call `i` of `schedule`: `sample` is the current latent, `modelOut` the UNet output for
 * scaleModelInput(schedule, i, sample) at schedule.timesteps[i]; `state` comes from the previous
 * call (INITIAL_STATE first). Returns the next latent and state; inputs are not modified.
 */
export function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  if (!Number.isInteger(i) || i < 0 || i >= schedule.calls) {
    throw new InputError(`step: call index must be an integer in [0, ${schedule.calls - 1}] (got ${i})`);
  }
  return SCHEDULER_IMPLS[schedule.className].step(schedule, i, sample, modelOut, state, rng);
}

/** Alias of getScheduler (the name the pipelines use). */
export { getScheduler as findSampler } from "./samplers.js";

/** Alias of step (the name the pipelines use). */
export const schedulerStep = step;
