/**
 * UniPC (A1111 "UniPC"): Zhao et al. 2023, "UniPC: A Unified Predictor-Corrector Framework",
 * Algorithms 1–2 (UniP-p predictor, UniC-p corrector, B(h) = h for bh1 or eʰ − 1 for bh2),
 * in data prediction (predict_x0) by default; the corrector re-uses each new model call.
 * Behaviour of diffusers' UniPCMultistepScheduler (v0.27.2):
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_unipc_multistep.py
 */
import type { SchedulerConfig } from "./config.js";
import { interp, makeAlphasCumprod, trainSigmas } from "./common.js";
import { karrasOverTraining, multistepTimesteps, vpOfSigma } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, lincomb } from "./vector.js";
import { solveLinear } from "./linear-solve.js";

const f = Math.fround;

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  const alphasCumprod = makeAlphasCumprod(config);
  const train = trainSigmas(alphasCumprod);
  let timesteps = multistepTimesteps(config, steps, config.numTrainTimesteps);
  let sigmas: number[];
  if (config.useKarrasSigmas) {
    ({ timesteps, sigmas } = karrasOverTraining(train, steps));
    sigmas.push(sigmas[sigmas.length - 1] ?? 0);
  } else {
    sigmas = [...timesteps.map((t) => interp(t, train)), train[0] ?? 0];
  }
  return buildSchedule({
    className: "UniPCMultistepScheduler",
    config,
    steps,
    timesteps,
    alphasCumprod,
    sigmas: sigmas.map(f),
    kind: "vp-sigma",
  });
}

/** The model output as x₀ (predict_x0) or ε, at σ. */
function convert(c: SchedulerConfig, sample: Float32Array, out: Float32Array, sigma: number): Float32Array {
  const { alpha, sigma: s } = vpOfSigma(sigma);
  const p = c.predictionType;
  if (c.predictX0) {
    if (p === "epsilon") return lincomb([[1 / alpha, sample], [-s / alpha, out]]);
    return p === "v_prediction" ? lincomb([[alpha, sample], [-s, out]]) : out;
  }
  if (p === "epsilon") return out;
  return p === "v_prediction" ? lincomb([[alpha, out], [s, sample]]) : lincomb([[1 / s, sample], [-alpha / s, out]]);
}

/**
 * UniP/UniC update from σ[from] to σ[to] of order `order` with history `m` (newest last, m0 = base):
 * x_t = (σ_t/σ_s)·x − α_t·φ₁·m0 − α_t·B(h)·(Σ ρ_k·D_k [+ ρ_last·(model_t − m0)]) in the x₀ form.
 */
function uniUpdate(
  c: SchedulerConfig,
  sig: readonly number[],
  to: number,
  x: Float32Array,
  m: readonly Float32Array[],
  order: number,
  corrector: Float32Array | null,
): Float32Array {
  const from = to - 1;
  const t = vpOfSigma(sig[to] ?? 0);
  const s0 = vpOfSigma(sig[from] ?? 0);
  const h = t.lambda - s0.lambda;
  const m0 = m[m.length - 1] ?? x;
  const rks: number[] = [];
  const diffs: Float32Array[] = [];
  for (let k = 1; k < order; k++) {
    const rk = (vpOfSigma(sig[from - k] ?? 0).lambda - s0.lambda) / h;
    rks.push(rk);
    diffs.push(lincomb([[1 / rk, m[m.length - 1 - k] ?? m0], [-1 / rk, m0]]));
  }
  rks.push(1);
  const hh = c.predictX0 ? -h : h;
  const phi1 = Math.expm1(hh);
  const bh = c.solverType === "bh1" ? hh : Math.expm1(hh);
  const b: number[] = [];
  let phiK = phi1 / hh - 1;
  let factorial = 1;
  for (let k = 1; k <= order; k++) {
    b.push((phiK * factorial) / bh);
    factorial *= k + 1;
    phiK = phiK / hh - 1 / factorial;
  }
  const R = (size: number): number[][] => Array.from({ length: size }, (_, row) => rks.slice(0, size).map((r) => r ** row));
  let rhos: number[];
  if (corrector !== null) rhos = order === 1 ? [0.5] : solveLinear(R(order), b);
  else rhos = order === 2 ? [0.5] : order > 2 ? solveLinear(R(order - 1), b.slice(0, order - 1)) : [];
  const [scaleX, scaleM] = c.predictX0 ? [t.sigma / s0.sigma, t.alpha] : [t.alpha / s0.alpha, t.sigma];
  const terms: [number, Float32Array][] = [[scaleX, x], [-scaleM * phi1, m0]];
  diffs.forEach((d, k) => terms.push([-scaleM * bh * (rhos[k] ?? 0), d]));
  if (corrector !== null) {
    const last = -scaleM * bh * (rhos[rhos.length - 1] ?? 0);
    terms.push([last, corrector], [-last, m0]);
  }
  return lincomb(terms);
}

/** Corrector (UniC, with the previous order) on the new model call, then predictor (UniP) to the next σ. */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  _rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "UniPC");
  const c = schedule.config;
  const sig = schedule.sigmas ?? [];
  const m = convert(c, sample, modelOut, sig[i] ?? 0);
  let x = sample;
  if (i > 0 && state.saved !== null && !c.disableCorrector.includes(i - 1)) {
    x = uniUpdate(c, sig, i, state.saved, state.history, state.lastOrder, m);
  }
  const history = [...state.history, m].slice(-c.solverOrder);
  const capped = c.lowerOrderFinal ? Math.min(c.solverOrder, schedule.calls - i) : c.solverOrder;
  const order = Math.min(capped, Math.min(state.taken, c.solverOrder) + 1);
  const prevSample = uniUpdate(c, sig, i + 1, x, history, order, null);
  const next = { taken: state.taken + 1, history, saved: x, lastOrder: order };
  return { prevSample, state: next, predOriginal: c.predictX0 ? m : null };
}

/** UniPCMultistepScheduler. */
export const UNIPC: SchedulerImpl = { className: "UniPCMultistepScheduler", createSchedule, step };
