/**
 * LMS (A1111 "LMS"): linear multistep in σ, order 4 (k-diffusion's `sample_lms`). Each
 * step integrates the Lagrange polynomial through the last derivatives d = (x − x₀)/σ over
 * [σ_i, σ_{i+1}]. Behaviour of diffusers' LMSDiscreteScheduler (v0.27.2), which integrates
 * with scipy `quad`; the integrands are polynomials of degree ≤ 3, so 3-point Gauss–Legendre
 * quadrature is exact here.
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_lms_discrete.py
 */
import type { SchedulerConfig } from "./config.js";
import { makeAlphasCumprod } from "./common.js";
import { kDiffusionSigmas } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, lincomb, x0FromSigma } from "./vector.js";

const MAX_ORDER = 4;
const GAUSS_NODES = [-Math.sqrt(3 / 5), 0, Math.sqrt(3 / 5)];
const GAUSS_WEIGHTS = [5 / 9, 8 / 9, 5 / 9];

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  const alphasCumprod = makeAlphasCumprod(config);
  const { timesteps, sigmas } = kDiffusionSigmas(config, steps, alphasCumprod, {
    configRange: false,
    karrasTimesteps: "f64",
  });
  return buildSchedule({
    className: "LMSDiscreteScheduler",
    config,
    steps,
    timesteps,
    alphasCumprod,
    sigmas: [...sigmas, 0],
    kind: "k",
  });
}

/** ∫_{σ_i}^{σ_{i+1}} of the Lagrange basis polynomial of node σ_{i−j} over nodes σ_i … σ_{i−order+1}. */
function lmsCoefficient(sigmas: readonly number[], order: number, i: number, j: number): number {
  const s = (k: number): number => sigmas[k] ?? 0;
  const basis = (tau: number): number => {
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (k !== j) prod *= (tau - s(i - k)) / (s(i - j) - s(i - k));
    }
    return prod;
  };
  const a = s(i);
  const b = s(i + 1);
  const mid = (a + b) / 2;
  const half = (b - a) / 2;
  let sum = 0;
  for (let q = 0; q < GAUSS_NODES.length; q++) sum += (GAUSS_WEIGHTS[q] ?? 0) * basis(mid + half * (GAUSS_NODES[q] ?? 0));
  return sum * half;
}

/** x + Σ_j c_j·d_{i−j}, with the newest derivatives in `state.history` (newest last). */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  _rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "LMS");
  const sigmas = schedule.sigmas ?? [];
  const sigma = sigmas[i] ?? 0;
  const x0 = x0FromSigma(sample, modelOut, sigma, schedule.config.predictionType);
  const derivative = lincomb([[1 / sigma, sample], [-1 / sigma, x0]]);
  const history = [...state.history, derivative].slice(-MAX_ORDER);
  // diffusers takes the order from the step index, then pairs coefficients with the derivatives
  // it has (zip): after an img2img start some high-order coefficients go unused.
  const order = Math.min(i + 1, MAX_ORDER);
  const terms: [number, Float32Array][] = [[1, sample]];
  for (let j = 0; j < Math.min(order, history.length); j++) {
    const d = history[history.length - 1 - j];
    if (d !== undefined) terms.push([lmsCoefficient(sigmas, order, i, j), d]);
  }
  const prevSample = lincomb(terms);
  return { prevSample, state: { ...state, taken: state.taken + 1, history }, predOriginal: x0 };
}

/** LMSDiscreteScheduler. */
export const LMS: SchedulerImpl = { className: "LMSDiscreteScheduler", createSchedule, step };
