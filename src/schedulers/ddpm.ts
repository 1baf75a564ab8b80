/**
 * DDPM: ancestral sampling of Ho et al. 2020, "Denoising Diffusion Probabilistic Models",
 * through the posterior q(x_{t−1} | x_t, x₀) of eq. 6–7, strided to the inference timesteps.
 * Behaviour of diffusers' DDPMScheduler (v0.27.2), variance types fixed_small(_log), fixed_large:
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_ddpm.py
 */
import { ConfigError } from "../errors.js";
import type { SchedulerConfig } from "./config.js";
import { integerTimesteps } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { alphaSchedule } from "./schedule.js";
import { checkSameLength, clamp, drawNoise, lincomb, x0FromAlpha } from "./vector.js";

const VARIANCE_TYPES = ["fixed_small", "fixed_small_log", "fixed_large"];

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  if (!VARIANCE_TYPES.includes(config.varianceType ?? "fixed_small")) {
    throw new ConfigError(
      `DDPM variance_type ${JSON.stringify(config.varianceType)} is not supported; use one of ${VARIANCE_TYPES.join(", ")}`,
    );
  }
  return alphaSchedule("DDPMScheduler", config, steps, integerTimesteps(config, steps));
}

/** Posterior mean (eq. 7) plus √variance·z while t > 0. */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "DDPM");
  const c = schedule.config;
  const t = schedule.timesteps[i] ?? 0;
  const prevT = t - Math.floor(c.numTrainTimesteps / schedule.steps);
  const at = schedule.alphasCumprod[t] ?? 1;
  const ap = prevT >= 0 ? (schedule.alphasCumprod[prevT] ?? 1) : 1;
  const betaT = 1 - at;
  const alphaCur = at / ap;
  const betaCur = 1 - alphaCur;
  let x0 = x0FromAlpha(sample, modelOut, at, c.predictionType);
  if (c.clipSample) x0 = clamp(x0, c.clipSampleRange);
  const terms: [number, Float32Array][] = [
    [(Math.sqrt(ap) * betaCur) / betaT, x0],
    [(Math.sqrt(alphaCur) * (1 - ap)) / betaT, sample],
  ];
  if (t > 0) {
    const noise = drawNoise(rng, sample.length, "DDPM");
    const variance = c.varianceType === "fixed_large" ? betaCur : Math.max(((1 - ap) / betaT) * betaCur, 1e-20);
    terms.push([Math.sqrt(variance), noise]);
  }
  return { prevSample: lincomb(terms), state: { ...state, taken: state.taken + 1 }, predOriginal: x0 };
}

/** DDPMScheduler. */
export const DDPM: SchedulerImpl = { className: "DDPMScheduler", createSchedule, step };
