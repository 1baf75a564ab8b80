/**
 * DPM2 (A1111 "DPM2"): k-diffusion's `sample_dpm_2`, the 2nd-order DPM-Solver step of
 * Lu et al. 2022 (Alg. 1, midpoint) in σ: an Euler half step to the log-midpoint
 * σ_mid = √(σ_k·σ_{k+1}), a model call there, then a full step with that slope.
 * Behaviour of diffusers' KDPM2DiscreteScheduler (v0.27.2), timesteps [t₀, t_mid₁, t₁, …]:
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_k_dpm_2_discrete.py
 */
import type { SchedulerConfig } from "./config.js";
import { makeAlphasCumprod, sigmaToT } from "./common.js";
import { expandTwoStage, interleave, kDiffusionSigmas, logMidpoint, logTrainSigmas } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, lincomb, x0FromSigma } from "./vector.js";

const f = Math.fround;

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  const alphasCumprod = makeAlphasCumprod(config);
  const { timesteps, sigmas } = kDiffusionSigmas(config, steps, alphasCumprod, {
    configRange: false,
    karrasTimesteps: "round",
  });
  const s = [...sigmas, 0];
  // mid[j] between σ_{j−1} and σ_j; mid[0] is never used (diffusers has NaN there).
  const mid = s.map((v, j) => (j === 0 ? v : logMidpoint(v, s[j - 1] ?? 0)));
  const logSigmas = logTrainSigmas(alphasCumprod);
  const midT = mid.slice(1, -1).map((v) => f(sigmaToT(v, logSigmas)));
  const sig = expandTwoStage(s);
  const interpol = expandTwoStage(mid);
  const calls = 2 * steps - 1;
  return buildSchedule({
    className: "KDPM2DiscreteScheduler",
    config,
    steps,
    timesteps: interleave(timesteps, midT),
    alphasCumprod,
    sigmas: sig,
    callSigmas: Array.from({ length: calls }, (_, i) => (i % 2 === 0 ? sig[i] : interpol[i]) ?? 0),
    noiseSigmas: sig.slice(0, calls),
    kind: "k",
    order: 2,
    tables: { interpol },
  });
}

/** Half step to σ_mid when no sample is held (state.saved null), else the full step from the held sample. */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  _rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "DPM2");
  const sigmas = schedule.sigmas ?? [];
  const interpol = schedule.tables.interpol ?? [];
  const first = state.saved === null;
  const sigma = sigmas[first ? i : i - 1] ?? 0;
  const mid = interpol[first ? i + 1 : i] ?? 0;
  const next = sigmas[first ? i + 1 : i] ?? 0;
  const at = first ? sigma : mid;
  const x0 = x0FromSigma(sample, modelOut, at, schedule.config.predictionType);
  const dt = first ? mid - sigma : next - sigma;
  // x + (x − x₀)/σ_at · dt, applied to the held sample in the second stage.
  const base = first ? sample : (state.saved ?? sample);
  const prevSample = lincomb([[1, base], [dt / at, sample], [-dt / at, x0]]);
  const taken = state.taken + 1;
  return { prevSample, state: { ...state, taken, saved: first ? sample : null }, predOriginal: x0 };
}

/** KDPM2DiscreteScheduler. */
export const KDPM2: SchedulerImpl = { className: "KDPM2DiscreteScheduler", createSchedule, step };
