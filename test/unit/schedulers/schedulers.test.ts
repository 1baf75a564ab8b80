/**
 * Scheduler goldens (../shared/golden/schedulers): every trajectory of the toy model
 * model_output = 0.1·scaled + 0.01·t/1000 is replayed step by step, within
 * |a − b| ≤ 1e-5·max(1, |b|); plus add_noise, the SD1.5 betas and the scheduler parts of the
 * tiny-pipeline and edit cases.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  INITIAL_STATE,
  addNoise,
  createSchedule,
  parseSchedulerConfig,
  samplerConfig,
  scaleModelInput,
  startIndexForStrength,
  step,
} from "../../../src/schedulers/index.js";
import type { NoiseSource, Schedule } from "../../../src/schedulers/index.js";
import { makeAlphasCumprod, makeBetas } from "../../../src/schedulers/common.js";
import { GOLDEN, compare, f32, nums, readSafetensors } from "./golden.js";
import type { GoldenTensor } from "./golden.js";

const TOL = 1e-5;
const f = Math.fround;

interface Run {
  name: string;
  class: string;
  config: Record<string, unknown>;
  num_inference_steps: number;
  init_noise_sigma: number;
  num_model_calls: number;
  file: string;
}
interface Index {
  runs: Run[];
  add_noise: { name: string; class: string; num_inference_steps: number | null; timesteps: number[]; keys: string[] }[];
}
const index = JSON.parse(readFileSync(`${GOLDEN}/schedulers/index.json`, "utf8")) as Index;

/** Asserts closeness, naming the tensor and printing maxAbs, meanAbs and the worst index. */
function near(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = TOL): void {
  const r = compare(actual, expected, tol);
  assert.ok(
    r.ok,
    `${what}: maxAbs ${r.maxAbs.toExponential(3)}, meanAbs ${r.meanAbs.toExponential(3)}, worst index ${r.worst} ` +
      `(${actual[r.worst]} vs ${expected[r.worst]}), lengths ${actual.length}/${expected.length}`,
  );
}

/** Replays the stored step noise in order, as the goldens ask (no RNG needed). */
function replay(file: Map<string, GoldenTensor>, calls: number): NoiseSource {
  const queue: Float32Array[] = [];
  for (let i = 0; i < calls; i++) {
    const key = `step${String(i).padStart(3, "0")}.noise`;
    if (file.has(key)) queue.push(f32(file, key));
  }
  return {
    randn: () => {
      const next = queue.shift();
      assert.ok(next !== undefined, "the sampler drew more noise than the reference did");
      return { data: next };
    },
  };
}

/** The toy model of the goldens, in float32 as torch evaluates it. */
function toyModel(scaled: Float32Array, t: number): Float32Array {
  const c = f((0.01 * t) / 1000);
  return scaled.map((v) => f(f(v * f(0.1)) + c));
}

const x0 = f32(readSafetensors(`${GOLDEN}/schedulers/x0.safetensors`), "x0");

for (const run of index.runs) {
  test(`golden trajectory ${run.name}, ${run.num_inference_steps} steps (${run.class})`, () => {
    const file = readSafetensors(`${GOLDEN}/schedulers/${run.file}`);
    const schedule = createSchedule(parseSchedulerConfig(run.config, { className: run.class }), run.num_inference_steps);
    assert.equal(schedule.calls, run.num_model_calls, "number of model calls");
    near(schedule.timesteps, nums(file, "timesteps"), "timesteps", 1e-6);
    if (file.has("sigmas")) near(schedule.sigmas ?? [], nums(file, "sigmas"), "sigmas", 1e-6);
    near([schedule.initNoiseSigma], [run.init_noise_sigma], "init_noise_sigma", 1e-6);
    const rng = replay(file, schedule.calls);
    let sample: Float32Array = x0.map((v) => f(v * schedule.initNoiseSigma));
    let state = INITIAL_STATE;
    for (let i = 0; i < schedule.calls; i++) {
      const p = `step${String(i).padStart(3, "0")}.`;
      near(sample, f32(file, `${p}sample`), `${p}sample`);
      const scaled = scaleModelInput(schedule, i, sample);
      near(scaled, f32(file, `${p}scaled`), `${p}scaled`);
      const out = toyModel(scaled, schedule.timesteps[i] ?? 0);
      near(out, f32(file, `${p}model_output`), `${p}model_output`);
      const r = step(schedule, i, sample, out, state, rng);
      near(r.prevSample, f32(file, `${p}prev_sample`), `${p}prev_sample`);
      for (const key of ["pred_original_sample", "denoised"]) {
        if (file.has(p + key)) near(r.predOriginal ?? [], f32(file, p + key), p + key);
      }
      sample = r.prevSample;
      state = r.state;
    }
    near(sample, f32(file, "final"), "final");
  });
}

test("add_noise goldens: img2img starts and DDPM training timesteps", () => {
  const file = readSafetensors(`${GOLDEN}/schedulers/add_noise.safetensors`);
  const original = f32(file, "original");
  const noise = f32(file, "noise");
  for (const entry of index.add_noise) {
    if (entry.num_inference_steps === null) {
      const run = index.runs.find((r) => r.class === "DDPMScheduler");
      assert.ok(run !== undefined);
      const schedule = createSchedule(parseSchedulerConfig(run.config, { className: run.class }), 20);
      entry.keys.forEach((key, k) => {
        near(addNoise(schedule, original, noise, { timestep: entry.timesteps[k] ?? -1 }), f32(file, key), key);
      });
      continue;
    }
    const run = index.runs.find((r) => r.name === entry.name);
    assert.ok(run !== undefined, `no run named ${entry.name}`);
    const schedule = createSchedule(parseSchedulerConfig(run.config, { className: run.class }), entry.num_inference_steps);
    for (const key of entry.keys) {
      const i = Number(/idx(\d+)$/.exec(key)?.[1]);
      near(addNoise(schedule, original, noise, i), f32(file, key), key);
      near(addNoise(schedule, original, noise, { timestep: schedule.timesteps[i] ?? -1 }), f32(file, key), `${key} by timestep`);
    }
  }
});

test("SD1.5 betas and alphas_cumprod are bit-exact (torch.linspace in float32, cumprod)", () => {
  const file = readSafetensors(`${GOLDEN}/schedulers/sd15_betas.safetensors`);
  const cfg = samplerConfig("DDIM");
  assert.deepEqual(makeBetas(cfg), nums(file, "betas"));
  assert.deepEqual(makeAlphasCumprod(cfg), nums(file, "alphas_cumprod"));
});

interface CaseMeta {
  scheduler_class: string;
  scheduler_overrides: Record<string, unknown>;
  num_inference_steps: number;
  timesteps: number[];
  strength?: number;
  full_timesteps?: number[];
  start_timestep?: number;
}

/** A case's scheduler as a pipeline builds it: the folder config + the case's class and overrides. */
function caseSchedule(folderConfig: string, meta: CaseMeta): Schedule {
  const json = JSON.parse(readFileSync(folderConfig, "utf8")) as Record<string, unknown>;
  const cfg = parseSchedulerConfig(json, { className: meta.scheduler_class, overrides: meta.scheduler_overrides });
  return createSchedule(cfg, meta.num_inference_steps);
}

test("tiny-pipeline cases: timesteps and initial latent from the folder's PNDM config", () => {
  const dir = `${GOLDEN}/tiny-pipeline`;
  const cases = (JSON.parse(readFileSync(`${dir}/cases/index.json`, "utf8")) as { cases: { name: string }[] }).cases;
  for (const { name } of cases) {
    const meta = JSON.parse(readFileSync(`${dir}/cases/${name}.json`, "utf8")) as CaseMeta;
    const schedule = caseSchedule(`${dir}/scheduler/scheduler_config.json`, meta);
    near(schedule.timesteps, meta.timesteps, `${name} timesteps`, 1e-6);
    const file = readSafetensors(`${dir}/cases/${name}.safetensors`);
    const initial = f32(file, "noise").map((v) => f(v * schedule.initNoiseSigma));
    near(initial, f32(file, "initial_latent"), `${name} initial_latent`);
  }
});

test("img2img cases: start index for strength, and add_noise at the start", () => {
  const dir = `${GOLDEN}/edit/img2img`;
  for (const name of ["euler_s06", "ddim_s03"]) {
    const meta = JSON.parse(readFileSync(`${dir}/${name}.json`, "utf8")) as CaseMeta;
    const schedule = caseSchedule(`${GOLDEN}/tiny-pipeline/scheduler/scheduler_config.json`, meta);
    near(schedule.timesteps, meta.full_timesteps ?? [], `${name} full_timesteps`, 1e-6);
    const start = startIndexForStrength(schedule, meta.strength ?? 1);
    near(schedule.timesteps.slice(start), meta.timesteps, `${name} timesteps run`, 1e-6);
    near([schedule.timesteps[start] ?? -1], [meta.start_timestep ?? NaN], `${name} start_timestep`, 1e-6);
    const file = readSafetensors(`${dir}/${name}.safetensors`);
    const noised = addNoise(schedule, f32(file, "init_latent"), f32(file, "noise"), start);
    near(noised, f32(file, "noised_latent"), `${name} noised_latent`);
  }
});

test("inpaint cases: timesteps of the full schedule", () => {
  const dir = `${GOLDEN}/edit/inpaint`;
  for (const name of ["inpaint9_euler", "inpaint4_euler"]) {
    const meta = JSON.parse(readFileSync(`${dir}/${name}.json`, "utf8")) as CaseMeta;
    const schedule = caseSchedule(`${GOLDEN}/tiny-pipeline/scheduler/scheduler_config.json`, meta);
    near(schedule.timesteps, meta.timesteps, `${name} timesteps`, 1e-6);
    assert.equal(startIndexForStrength(schedule, meta.strength ?? 1), 0);
  }
});

test("tiny-sd2 pipeline case: Euler v-prediction schedule from its scheduler_config.json", () => {
  const dir = `${GOLDEN}/tiny-sd2`;
  const json = JSON.parse(readFileSync(`${dir}/scheduler_config.json`, "utf8")) as Record<string, unknown>;
  const schedule = createSchedule(parseSchedulerConfig(json, { className: "EulerDiscreteScheduler" }), 5);
  assert.equal(schedule.config.predictionType, "v_prediction");
  const file = readSafetensors(`${dir}/cases/pipeline_euler_v.safetensors`);
  near(schedule.timesteps, nums(file, "timesteps"), "timesteps", 1e-6);
  near(f32(file, "noise").map((v) => f(v * schedule.initNoiseSigma)), f32(file, "initial_latent"), "initial_latent");
});
