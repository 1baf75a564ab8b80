/**
 * DPM2 ancestral (A1111 "DPM2 a"): k-diffusion's `sample_dpm_2_ancestral`: the DPM2 step of
 * kdpm2.ts aimed at σ_down, then σ_up of fresh noise (the ancestral split of euler-ancestral.ts).
 * Behaviour of diffusers' KDPM2AncestralDiscreteScheduler (v0.27.2), which draws a noise
 * tensor at every call (both stages) and uses it in the second:
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_k_dpm_2_ancestral_discrete.py
 */
import type { SchedulerConfig } from "./config.js";
import { makeAlphasCumprod, sigmaToT } from "./common.js";
import { ancestralSigmas, expandTwoStage, interleave, kDiffusionSigmas, logMidpoint, logTrainSigmas } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, drawNoise, lincomb, x0FromSigma } from "./vector.js";

const f = Math.fround;

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  const alphasCumprod = makeAlphasCumprod(config);
  const { timesteps, sigmas } = kDiffusionSigmas(config, steps, alphasCumprod, {
    configRange: false,
    karrasTimesteps: "round",
  });
  const s = [...sigmas, 0];
  const split = s.map((v, j) => (j < steps ? ancestralSigmas(v, s[j + 1] ?? 0) : [0, 0]));
  const up = split.map(([u]) => u ?? 0);
  const down = split.map(([, d]) => d ?? 0);
  // The half step aims at the log-midpoint of σ_j and σ_down,j; the last two are 0 (plain Euler).
  const mid = s.map((v, j) => (j >= steps - 1 ? 0 : logMidpoint(v, down[j] ?? 0)));
  const logSigmas = logTrainSigmas(alphasCumprod);
  const midT = mid.slice(0, -2).map((v) => f(sigmaToT(v, logSigmas)));
  const sig = expandTwoStage(s);
  const interpol = expandTwoStage(mid);
  const calls = 2 * steps - 1;
  return buildSchedule({
    className: "KDPM2AncestralDiscreteScheduler",
    config,
    steps,
    timesteps: interleave(timesteps, midT),
    alphasCumprod,
    sigmas: sig,
    callSigmas: Array.from({ length: calls }, (_, i) => (i % 2 === 0 ? sig[i] : interpol[i - 1]) ?? 0),
    noiseSigmas: sig.slice(0, calls),
    kind: "k",
    order: 2,
    tables: { interpol, up: expandTwoStage(up), down: expandTwoStage(down) },
  });
}

/** Half step to σ_mid when no sample is held, else the step to σ_down from the held sample plus σ_up·z. */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "DPM2 a");
  const { interpol = [], up = [], down = [] } = schedule.tables;
  const sigmas = schedule.sigmas ?? [];
  const first = state.saved === null;
  const k = first ? i : i - 1;
  const sigma = sigmas[k] ?? 0;
  const mid = interpol[k] ?? 0;
  const noise = drawNoise(rng, sample.length, "DPM2 a");
  const at = first ? sigma : mid;
  const x0 = x0FromSigma(sample, modelOut, at, schedule.config.predictionType);
  const taken = state.taken + 1;
  if (first) {
    const dt = mid - sigma;
    const prevSample = lincomb([[1 + dt / at, sample], [-dt / at, x0]]);
    return { prevSample, state: { ...state, taken, saved: sample }, predOriginal: x0 };
  }
  const dt = (down[k] ?? 0) - sigma;
  const prevSample = lincomb([[1, state.saved ?? sample], [dt / at, sample], [-dt / at, x0], [up[k] ?? 0, noise]]);
  return { prevSample, state: { ...state, taken, saved: null }, predOriginal: x0 };
}

/** KDPM2AncestralDiscreteScheduler. */
export const KDPM2_ANCESTRAL: SchedulerImpl = { className: "KDPM2AncestralDiscreteScheduler", createSchedule, step };
