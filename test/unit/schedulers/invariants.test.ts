/**
 * Properties every sampler must have, including those the shared goldens do not cover
 * (DPM2, DPM2 a, DPM++ 2M SDE (Karras), UniPC variants, LCM): sane timesteps, an exact
 * denoiser recovers x₀, seeded runs repeat, nothing turns NaN, schedules are never mutated.
 * reference-variants.json pins some of them to diffusers 0.27.2 (see its description).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  INITIAL_STATE,
  SAMPLERS,
  TorchGenerator,
  addNoise,
  createSchedule,
  getScheduler,
  parseSchedulerConfig,
  samplerConfig,
  scaleModelInput,
  startIndexForStrength,
  step,
} from "../../../src/schedulers/index.js";
import type { NoiseSource, Schedule, SchedulerConfig } from "../../../src/schedulers/index.js";
import { SD15_SCHEDULER_SETTINGS } from "../../../src/schedulers/config.js";
import { ConfigError, InputError } from "../../../src/errors.js";
import { GOLDEN, compare, f32, readSafetensors } from "./golden.js";

const NAMES = [...SAMPLERS.map((s) => s.name), "DDPMScheduler"];
const STOCHASTIC = ["Euler a", "DPM2 a", "DPM2 a Karras", "DPM++ 2M SDE", "DPM++ 2M SDE Karras", "DDPMScheduler", "LCM"];
const x0 = f32(readSafetensors(`${GOLDEN}/schedulers/x0.safetensors`), "x0");
const f = Math.fround;

/** Runs a schedule from `start` with `model(x_in, t, i)`, returning the final latent. */
function run(s: Schedule, start: Float32Array, model: (x: Float32Array, t: number, i: number) => Float32Array, rng?: NoiseSource): Float32Array {
  let x = start;
  let state = INITIAL_STATE;
  for (let i = 0; i < s.calls; i++) {
    const r = step(s, i, x, model(scaleModelInput(s, i, x), s.timesteps[i] ?? 0, i), state, rng);
    x = r.prevSample;
    state = r.state;
  }
  return x;
}

const toy = (x: Float32Array, t: number): Float32Array => x.map((v) => f(0.1 * v + (0.01 * t) / 1000));
const finite = (x: ArrayLike<number>): boolean => Array.from(x).every(Number.isFinite);

test("timesteps lie in [0, 999], never increase, and the call count fits the sampler", () => {
  for (const name of NAMES) {
    for (const steps of [1, 2, 3, 10, 25]) {
      const s = createSchedule(samplerConfig(name), steps);
      const what = `${name}, ${steps} steps`;
      const expectedCalls = s.order === 2 ? 2 * steps - 1 : s.className === "PNDMScheduler" && steps > 1 ? steps + 1 : steps;
      assert.equal(s.calls, expectedCalls, `${what}: calls`);
      assert.equal(s.timesteps.length, s.calls);
      // DPM2 a aims its half step below σ_{k+1} when σ_up is large, so only its full steps are ordered.
      const stride = s.className === "KDPM2AncestralDiscreteScheduler" ? 2 : 1;
      s.timesteps.forEach((t, i) => {
        assert.ok(t >= 0 && t <= 999, `${what}: timestep ${i} = ${t}`);
        if (i >= stride && i % stride === 0) assert.ok(t <= (s.timesteps[i - stride] ?? 0), `${what}: timesteps increase at ${i}`);
      });
      if (s.sigmas !== null) {
        assert.ok(finite(s.sigmas) && s.sigmas.every((v, i) => v >= 0 && (i === 0 || v <= (s.sigmas?.[i - 1] ?? 0))), `${what}: sigmas`);
      }
      assert.ok(Number.isFinite(s.initNoiseSigma) && s.initNoiseSigma > 0, `${what}: initNoiseSigma`);
      assert.ok(Object.isFrozen(s) && Object.isFrozen(s.timesteps), `${what}: schedule frozen`);
    }
  }
});

test("sigma schedules end where they should: k-samplers at 0 from σ_max = 14.6146", () => {
  for (const name of ["Euler", "Euler a", "LMS", "Heun", "DPM2", "DPM2 a", "DPM++ 2M", "DPM++ 2M Karras"]) {
    const s = createSchedule(samplerConfig(name), 12);
    const sig = s.sigmas ?? [];
    assert.ok(Math.abs((sig[0] ?? 0) - 14.614645) < 1e-5, `${name}: first sigma ${sig[0]}`);
    assert.equal(sig[sig.length - 1], 0, `${name}: last sigma`);
  }
});

/** The sampler's config with an exact denoiser: prediction "sample" (PLMS only knows ε) and ᾱ_end = 1. */
function oracleConfig(name: string): SchedulerConfig {
  const info = getScheduler(name);
  const prediction = info.className === "PNDMScheduler" ? "epsilon" : "sample";
  return parseSchedulerConfig(SD15_SCHEDULER_SETTINGS, {
    className: info.className,
    overrides: { ...info.overrides, prediction_type: prediction, set_alpha_to_one: true },
  });
}

test("with a model that knows x₀ exactly, every sampler ends at x₀ (UniPC at its σ_min level)", () => {
  const eps = new TorchGenerator(5).randn([x0.length]).data;
  for (const name of NAMES) {
    for (const steps of [1, 4, 15]) {
      const s = createSchedule(oracleConfig(name), steps);
      // PLMS predicts ε: invert x = √ᾱ·x₀ + √(1−ᾱ)·ε at the call's timestep; the others get x₀.
      const oracle = (x: Float32Array, t: number): Float32Array => {
        if (s.className !== "PNDMScheduler") return x0;
        const a = s.alphasCumprod[t] ?? 1;
        return x.map((v, j) => (v - Math.sqrt(a) * (x0[j] ?? 0)) / Math.sqrt(1 - a));
      };
      let current = addNoise(s, x0, eps, 0);
      let state = INITIAL_STATE;
      const rng = new TorchGenerator(1);
      for (let i = 0; i < s.calls; i++) {
        const r = step(s, i, current, oracle(current, s.timesteps[i] ?? 0), state, rng);
        current = r.prevSample;
        state = r.state;
      }
      const last = s.className === "UniPCMultistepScheduler" ? (s.sigmas?.[s.calls] ?? 0) : 0;
      const expected = x0.map((v, j) => (v + last * (eps[j] ?? 0)) / Math.sqrt(1 + last * last));
      const r = compare(current, expected, 1e-4);
      assert.ok(r.ok, `${name}, ${steps} steps: maxAbs ${r.maxAbs} at ${r.worst}`);
    }
  }
});

test("no NaN or Infinity for any sampler, prediction type and step count", () => {
  for (const name of NAMES) {
    for (const prediction of ["epsilon", "v_prediction"]) {
      for (const steps of [1, 2, 3, 10]) {
        const cfg = samplerConfig(name, { ...SD15_SCHEDULER_SETTINGS, prediction_type: prediction });
        const s = createSchedule(cfg, steps);
        const out = run(s, x0.map((v) => v * s.initNoiseSigma), toy, new TorchGenerator(3));
        assert.ok(finite(out), `${name} ${prediction} ${steps} steps produced a non-finite value`);
      }
    }
  }
});

test("stochastic samplers repeat exactly for a seed and differ across seeds; they need an rng", () => {
  for (const name of STOCHASTIC) {
    const s = createSchedule(samplerConfig(name), 6);
    const start = x0.map((v) => v * s.initNoiseSigma);
    const a = run(s, start, toy, new TorchGenerator(11));
    const b = run(s, start, toy, new TorchGenerator(11));
    const c = run(s, start, toy, new TorchGenerator(12));
    assert.deepEqual(a, b, `${name}: same seed`);
    assert.notDeepEqual(a, c, `${name}: other seed`);
    assert.throws(() => run(s, start, toy), InputError, `${name} without rng`);
  }
  const euler = createSchedule(samplerConfig("Euler"), 4);
  assert.ok(finite(run(euler, x0, toy)), "Euler runs without an rng");
});

test("schedules are shared safely: interleaved runs equal separate runs, inputs stay untouched", () => {
  for (const name of ["DPM++ 2M Karras", "UniPC", "Heun", "PLMS", "LMS", "DPM2 a"]) {
    const s = createSchedule(samplerConfig(name), 5);
    const startA = x0.map((v) => v * s.initNoiseSigma);
    const startB = startA.map((v) => -v);
    const copyA = startA.slice();
    const alone = [run(s, startA, toy, new TorchGenerator(1)), run(s, startB, toy, new TorchGenerator(2))];
    let [xa, xb]: [Float32Array, Float32Array] = [startA, startB];
    let [sa, sb] = [INITIAL_STATE, INITIAL_STATE];
    const [ga, gb] = [new TorchGenerator(1), new TorchGenerator(2)];
    for (let i = 0; i < s.calls; i++) {
      const ra = step(s, i, xa, toy(scaleModelInput(s, i, xa), s.timesteps[i] ?? 0), sa, ga);
      const rb = step(s, i, xb, toy(scaleModelInput(s, i, xb), s.timesteps[i] ?? 0), sb, gb);
      [xa, sa, xb, sb] = [ra.prevSample, ra.state, rb.prevSample, rb.state];
    }
    assert.deepEqual([xa, xb], alone, `${name}: interleaved`);
    assert.deepEqual(startA, copyA, `${name}: input mutated`);
  }
});

interface Variant { name: string; class: string; overrides: Record<string, unknown>; steps: number; timesteps: number[]; final: string }

test("non-golden variants match diffusers 0.27.2 (reference-variants.json)", () => {
  const ref = JSON.parse(readFileSync(new URL("./reference-variants.json", import.meta.url), "utf8")) as { runs: Variant[] };
  assert.ok(ref.runs.length >= 10);
  for (const v of ref.runs) {
    const cfg = parseSchedulerConfig(SD15_SCHEDULER_SETTINGS, { className: v.class, overrides: { skip_prk_steps: true, ...v.overrides } });
    const s = createSchedule(cfg, v.steps);
    const ts = compare(s.timesteps, v.timesteps, 1e-6);
    assert.ok(ts.ok, `${v.name}: timesteps ${s.timesteps.join(", ")} vs ${v.timesteps.join(", ")}`);
    const expected = new Float32Array(new Uint8Array(Buffer.from(v.final, "base64")).buffer);
    const out = run(s, x0.map((x) => f(x * s.initNoiseSigma)), (x, t) => {
      const c = f((0.01 * t) / 1000);
      return x.map((y) => f(f(y * f(0.1)) + c));
    }, new TorchGenerator(1234));
    const r = compare(out, expected, 1e-5);
    assert.ok(r.ok, `${v.name}: maxAbs ${r.maxAbs.toExponential(3)}, meanAbs ${r.meanAbs.toExponential(3)}, worst index ${r.worst}`);
  }
});

test("A1111 names, aliases and classes resolve; unknown names are refused", () => {
  assert.equal(getScheduler("k_euler_a").name, "Euler a");
  assert.equal(getScheduler("dpm++ 2m karras").className, "DPMSolverMultistepScheduler");
  assert.equal(getScheduler("UniPCMultistepScheduler").className, "UniPCMultistepScheduler");
  const sde = samplerConfig("DPM++ 2M SDE Karras");
  assert.equal(sde.algorithmType, "sde-dpmsolver++");
  assert.equal(sde.useKarrasSigmas, true);
  assert.equal(samplerConfig("PLMS").skipPrkSteps, true);
  assert.equal(new Set(SAMPLERS.map((s) => s.name)).size, SAMPLERS.length);
  assert.throws(() => getScheduler("Euler b"), InputError);
});

test("config parsing: class defaults, -Infinity strings, and refusals", () => {
  const json = { _class_name: "PNDMScheduler", ...SD15_SCHEDULER_SETTINGS, lambda_min_clipped: "-Infinity" };
  assert.equal(parseSchedulerConfig(json).timestepSpacing, "leading");
  const dpm = parseSchedulerConfig(json, { className: "DPMSolverMultistepScheduler" });
  assert.equal(dpm.timestepSpacing, "linspace");
  assert.equal(dpm.lambdaMinClipped, -Infinity);
  assert.equal(parseSchedulerConfig({}, { className: "DDIMScheduler" }).setAlphaToOne, true);
  assert.throws(() => parseSchedulerConfig({ beta_start: "x" }, { className: "DDIMScheduler" }), ConfigError);
  assert.throws(() => parseSchedulerConfig({ thresholding: true }, { className: "DDIMScheduler" }), ConfigError);
  assert.throws(() => parseSchedulerConfig({}, { className: "FooScheduler" }), ConfigError);
  assert.throws(() => createSchedule(parseSchedulerConfig({}, { className: "PNDMScheduler" }), 10), ConfigError);
  assert.throws(() => createSchedule(samplerConfig("Euler"), 0), InputError);
  assert.throws(() => createSchedule(samplerConfig("LCM"), 60), InputError);
});

test("img2img start index counts calls: Heun/DPM2 skip two per step", () => {
  assert.equal(startIndexForStrength(createSchedule(samplerConfig("Heun"), 10), 0.75), 6);
  assert.equal(startIndexForStrength(createSchedule(samplerConfig("Euler"), 8), 0.6), 4);
  assert.equal(startIndexForStrength(createSchedule(samplerConfig("DDIM"), 10), 1), 0);
  assert.throws(() => startIndexForStrength(createSchedule(samplerConfig("Euler"), 8), 1.5), InputError);
});
