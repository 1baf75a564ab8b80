/**
 * PLMS (A1111 "PLMS"): the pseudo linear multistep method of Liu et al. 2022, "Pseudo Numerical
 * Methods for Diffusion Models" (PNDM), eq. 12 with the transfer φ of eq. 11, warmed up with a
 * pseudo improved-Euler step instead of Runge–Kutta (diffusers' skip_prk_steps, as SD uses).
 * Behaviour of diffusers' PNDMScheduler (v0.27.2): timesteps [t₀, t₁, t₁, t₂, …] (steps + 1 calls):
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_pndm.py
 */
import { ConfigError } from "../errors.js";
import type { SchedulerConfig } from "./config.js";
import { arangeDown, linspace, roundHalfEven } from "./common.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { alphaPrev, alphaSchedule } from "./schedule.js";
import { checkSameLength, lincomb } from "./vector.js";

/** Ascending base timesteps of PNDM's set_timesteps. */
function baseTimesteps(c: SchedulerConfig, n: number): number[] {
  const T = c.numTrainTimesteps;
  if (c.timestepSpacing === "linspace") return linspace(0, T - 1, n).map(roundHalfEven);
  if (c.timestepSpacing === "leading") {
    const ratio = Math.floor(T / n);
    return Array.from({ length: n }, (_, k) => k * ratio + c.stepsOffset);
  }
  return arangeDown(T, 0, -T / n).map((t) => roundHalfEven(t) - 1).reverse();
}

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  if (!config.skipPrkSteps) {
    throw new ConfigError(
      "PNDM with its Runge–Kutta warm-up (skip_prk_steps false) is not supported; set skip_prk_steps: true as SD's config does",
    );
  }
  const base = baseTimesteps(config, steps);
  const timesteps = [...base.slice(0, -1), ...base.slice(-2, -1), ...base.slice(-1)].reverse();
  return alphaSchedule("PNDMScheduler", config, steps, timesteps);
}

/** φ of eq. 11: moves x_t to x_prev along the noise estimate ε (v is converted first). */
function transfer(schedule: Schedule, x: Float32Array, t: number, prevT: number, eps: Float32Array): Float32Array {
  const at = schedule.alphasCumprod[t] ?? 1;
  const ap = alphaPrev(schedule, prevT);
  const bt = 1 - at;
  const e = schedule.config.predictionType === "v_prediction" ? lincomb([[Math.sqrt(at), eps], [Math.sqrt(bt), x]]) : eps;
  const denom = at * Math.sqrt(1 - ap) + Math.sqrt(at * bt * ap);
  return lincomb([[Math.sqrt(ap / at), x], [-(ap - at) / denom, e]]);
}

/** Linear multistep combination of the stored noise estimates (eq. 12; lower orders while warming up). */
function combine(ets: readonly Float32Array[]): Float32Array {
  const e = (k: number): Float32Array => ets[ets.length - k] ?? new Float32Array(0);
  if (ets.length === 1) return e(1);
  if (ets.length === 2) return lincomb([[3 / 2, e(1)], [-1 / 2, e(2)]]);
  if (ets.length === 3) return lincomb([[23 / 12, e(1)], [-16 / 12, e(2)], [5 / 12, e(3)]]);
  return lincomb([[55 / 24, e(1)], [-59 / 24, e(2)], [37 / 24, e(3)], [-9 / 24, e(4)]]);
}

/**
 * One PLMS call. The first call steps ahead with ε₀ and keeps x_t; the second re-evaluates at
 * the same timestep and redoes that step from x_t with (ε₀ + ε₁)/2; later calls use eq. 12.
 */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  _rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "PLMS");
  if (schedule.config.predictionType === "sample") {
    throw new ConfigError("PLMS supports prediction_type epsilon or v_prediction, not sample");
  }
  const ratio = Math.floor(schedule.config.numTrainTimesteps / schedule.steps);
  const t = schedule.timesteps[i] ?? 0;
  const taken = state.taken + 1;
  if (state.taken === 1) {
    const eps = lincomb([[0.5, modelOut], [0.5, state.history[0] ?? modelOut]]);
    const prevSample = transfer(schedule, state.saved ?? sample, t + ratio, t, eps);
    return { prevSample, state: { ...state, taken, saved: null }, predOriginal: null };
  }
  const history = [...state.history.slice(-3), modelOut];
  const saved = state.taken === 0 ? sample : state.saved;
  const prevSample = transfer(schedule, sample, t, t - ratio, combine(history));
  return { prevSample, state: { ...state, taken, history, saved }, predOriginal: null };
}

/** PNDMScheduler (PLMS steps only). */
export const PNDM: SchedulerImpl = { className: "PNDMScheduler", createSchedule, step };
