/**
 * DPM-Solver++ multistep (A1111 "DPM++ 2M", "DPM++ 2M Karras", "DPM++ 2M SDE (Karras)"):
 * Lu et al. 2022, "DPM-Solver++", Algorithm 2 (2M, data prediction, midpoint or Heun form of
 * the second-order term; 3M with the third-order update), and the SDE variant of §5 ("SDE-DPM-Solver++(2M)").
 * Behaviour of diffusers' DPMSolverMultistepScheduler (v0.27.2):
 * https://github.com/huggingface/diffusers/blob/v0.27.2/src/diffusers/schedulers/scheduling_dpmsolver_multistep.py
 */
import { ConfigError } from "../errors.js";
import type { SchedulerConfig } from "./config.js";
import { interp, makeAlphasCumprod, trainSigmas } from "./common.js";
import { karrasOverTraining, multistepTimesteps, vpOfSigma } from "./sigma-schedules.js";
import type { NoiseSource, Schedule, SchedulerImpl, SchedulerState, StepResult } from "./common.js";
import { buildSchedule } from "./schedule.js";
import { checkSameLength, drawNoise, lincomb } from "./vector.js";

const f = Math.fround;

/** Last usable training timestep: λ below lambda_min_clipped is cut off (for cosine schedules). */
function lastTimestep(alphasCumprod: readonly number[], lambdaMin: number): number {
  const lambdas = alphasCumprod.map((a) => f(f(Math.log(f(Math.sqrt(a)))) - f(Math.log(f(Math.sqrt(f(1 - a)))))));
  const clipped = lambdas.filter((l) => l < lambdaMin).length; // searchsorted on the ascending flip
  return alphasCumprod.length - clipped;
}

function createSchedule(config: SchedulerConfig, steps: number): Schedule {
  if (config.algorithmType === "sde-dpmsolver++" && config.solverOrder === 3) {
    throw new ConfigError("sde-dpmsolver++ supports solver_order 1 or 2 (got 3); use dpmsolver++ for 3M");
  }
  const alphasCumprod = makeAlphasCumprod(config);
  if (config.rescaleBetasZeroSnr) alphasCumprod[alphasCumprod.length - 1] = 2 ** -24;
  const train = trainSigmas(alphasCumprod);
  let timesteps = multistepTimesteps(config, steps, lastTimestep(alphasCumprod, config.lambdaMinClipped));
  let sigmas: number[];
  if (config.useKarrasSigmas) ({ timesteps, sigmas } = karrasOverTraining(train, steps));
  else sigmas = timesteps.map((t) => interp(t, train));
  const a0 = alphasCumprod[0] ?? 1;
  const last = config.finalSigmasType === "zero" ? 0 : Math.sqrt(f(f(1 - a0) / a0));
  return buildSchedule({
    className: "DPMSolverMultistepScheduler",
    config,
    steps,
    timesteps,
    alphasCumprod,
    sigmas: [...sigmas, last].map(f),
    kind: "vp-sigma",
  });
}

/** x₀ estimate from the model output at σ (data prediction, eq. 9 of DPM-Solver++). */
function toX0(c: SchedulerConfig, sample: Float32Array, out: Float32Array, sigma: number): Float32Array {
  const { alpha, sigma: s } = vpOfSigma(sigma);
  if (c.predictionType === "epsilon") return lincomb([[1 / alpha, sample], [-s / alpha, out]]);
  if (c.predictionType === "v_prediction") return lincomb([[alpha, sample], [-s, out]]);
  return out;
}

/** Coefficients [x, D0, D1, D2, noise] of the update from σ_i to σ_{i+1} at the given order. */
function updateCoefs(c: SchedulerConfig, sig: readonly number[], i: number, order: number): number[] {
  const t = vpOfSigma(sig[i + 1] ?? 0);
  const s0 = vpOfSigma(sig[i] ?? 0);
  const h = t.lambda - s0.lambda;
  const em = Math.exp(-h);
  if (c.algorithmType === "sde-dpmsolver++") {
    const e2 = Math.exp(-2 * h);
    const d1 = c.solverType === "heun" ? t.alpha * ((1 - e2) / (-2 * h) + 1) : 0.5 * t.alpha * (1 - e2);
    return [(t.sigma / s0.sigma) * em, t.alpha * (1 - e2), order >= 2 ? d1 : 0, 0, t.sigma * Math.sqrt(1 - e2)];
  }
  const d1 = c.solverType === "heun" || order === 3 ? t.alpha * ((em - 1) / h + 1) : -0.5 * t.alpha * (em - 1);
  const d2 = -t.alpha * ((em - 1 + h) / (h * h) - 0.5);
  return [t.sigma / s0.sigma, -t.alpha * (em - 1), order >= 2 ? d1 : 0, order >= 3 ? d2 : 0, 0];
}

/** Finite differences D1 (and D2) of the x₀ history in λ (DPM-Solver++ eq. 13 and its 3rd-order form). */
function differences(sig: readonly number[], i: number, m: readonly Float32Array[], order: number): Float32Array[] {
  const lam = (k: number): number => vpOfSigma(sig[k] ?? 0).lambda;
  const h = lam(i + 1) - lam(i);
  const [m0, m1, m2] = [m[m.length - 1], m[m.length - 2], m[m.length - 3]];
  if (m0 === undefined || m1 === undefined || order < 2) return [];
  const r0 = (lam(i) - lam(i - 1)) / h;
  const d10 = lincomb([[1 / r0, m0], [-1 / r0, m1]]);
  if (order === 2 || m2 === undefined) return [d10];
  const r1 = (lam(i - 1) - lam(i - 2)) / h;
  const d11 = lincomb([[1 / r1, m1], [-1 / r1, m2]]);
  const w = r0 / (r0 + r1);
  return [lincomb([[1 + w, d10], [-w, d11]]), lincomb([[1 / (r0 + r1), d10], [-1 / (r0 + r1), d11]])];
}

/** One multistep update; the order ramps up from 1 and drops back at the end (lower_order_final). */
function step(
  schedule: Schedule,
  i: number,
  sample: Float32Array,
  modelOut: Float32Array,
  state: SchedulerState,
  rng?: NoiseSource,
): StepResult {
  checkSameLength(sample, modelOut, "DPM-Solver++");
  const c = schedule.config;
  const sig = schedule.sigmas ?? [];
  const n = schedule.calls;
  const x0 = toX0(c, sample, modelOut, sig[i] ?? 0);
  const history = [...state.history, x0].slice(-c.solverOrder);
  const sde = c.algorithmType === "sde-dpmsolver++";
  const noise = sde ? drawNoise(rng, sample.length, "DPM++ SDE") : null;
  const warm = Math.min(state.taken, c.solverOrder);
  const lowFinal = i === n - 1 && (c.eulerAtFinal || (c.lowerOrderFinal && n < 15) || c.finalSigmasType === "zero");
  const lowSecond = i === n - 2 && c.lowerOrderFinal && n < 15;
  let order = 3;
  if (c.solverOrder === 1 || warm < 1 || lowFinal) order = 1;
  else if (c.solverOrder === 2 || warm < 2 || lowSecond) order = 2;
  const [cx = 0, c0 = 0, c1 = 0, c2 = 0, cn = 0] = updateCoefs(c, sig, i, order);
  const diffs = differences(sig, i, history, order);
  const terms: [number, Float32Array][] = [[cx, sample], [c0, x0]];
  if (diffs[0] !== undefined) terms.push([c1, diffs[0]]);
  if (diffs[1] !== undefined) terms.push([c2, diffs[1]]);
  if (noise !== null) terms.push([cn, noise]);
  return { prevSample: lincomb(terms), state: { ...state, taken: state.taken + 1, history }, predOriginal: x0 };
}

/** DPMSolverMultistepScheduler (dpmsolver++ and sde-dpmsolver++). */
export const DPM_SOLVER_MULTISTEP: SchedulerImpl = { className: "DPMSolverMultistepScheduler", createSchedule, step };
