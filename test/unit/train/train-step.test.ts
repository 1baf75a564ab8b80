/** Training through the engine: toy MLP and CNN trained by one-run steps; the same steps replayed by the reference evaluator. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { constant, input } from "../../../src/graph/apply.js";
import { evaluate } from "../../../src/graph/eval.js";
import { hostToNumbers, toHost } from "../../../src/graph/host.js";
import * as g from "../../../src/graph/ops.js";
import type { Value } from "../../../src/graph/rule.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import { adamNames, adamwUpdate } from "../../../src/train/adamw.js";
import { Trainer, buildTrainStep, flatNames } from "../../../src/train/train-step.js";
import { normals, rng } from "../graph/harness.js";

interface Problem {
  params: Map<string, Tensor>;
  init: Map<string, HostTensor>;
  loss: Tensor;
  batch: Record<string, HostTensor>;
}

function param(params: Map<string, Tensor>, init: Map<string, HostTensor>, key: string, shape: number[], scale: number, seed: number): Tensor {
  const t = input(key, "float32", shape);
  params.set(key, t);
  const n = shape.reduce((a, b) => a * b, 1);
  init.set(key, toHost("float32", shape, normals(n, seed).map((v) => v * scale)));
  return t;
}

/** y = sin(2·x0) + x1·x2 on 64 random points, MLP 3 → 32 → 32 → 1 with tanh. */
function mlpProblem(): Problem {
  const params = new Map<string, Tensor>();
  const init = new Map<string, HostTensor>();
  const w1 = param(params, init, "l1.weight", [3, 32], 0.6, 1);
  const b1 = param(params, init, "l1.bias", [32], 0.0, 2);
  const w2 = param(params, init, "l2.weight", [32, 32], 0.2, 3);
  const b2 = param(params, init, "l2.bias", [32], 0.0, 4);
  const w3 = param(params, init, "l3.weight", [32, 1], 0.2, 5);
  const x = input("x", "float32", [64, 3]);
  const y = input("y", "float32", [64, 1]);
  const h1 = g.tanh(g.add(g.matmul(x, w1), b1));
  const h2 = g.tanh(g.add(g.matmul(h1, w2), b2));
  const d = g.sub(g.matmul(h2, w3), y);
  const loss = g.reduceMean(g.mul(d, d), [0, 1]);
  const u = rng(7);
  const xs = Array.from({ length: 64 * 3 }, () => 2 * u() - 1);
  const ys = Array.from({ length: 64 }, (_, i) => Math.sin(2 * (xs[3 * i] ?? 0)) + (xs[3 * i + 1] ?? 0) * (xs[3 * i + 2] ?? 0));
  return { params, init, loss, batch: { x: toHost("float32", [64, 3], xs), y: toHost("float32", [64, 1], ys) } };
}

/** Learn a fixed 3×3 blur of 1×8×8 images with conv(1→4, 3×3) → relu → conv(4→1, 3×3). */
function cnnProblem(): Problem {
  const params = new Map<string, Tensor>();
  const init = new Map<string, HostTensor>();
  const c1 = param(params, init, "c1.weight", [4, 1, 3, 3], 0.4, 11);
  const b1 = param(params, init, "c1.bias", [4], 0.1, 12);
  const c2 = param(params, init, "c2.weight", [1, 4, 3, 3], 0.4, 13);
  const x = input("x", "float32", [16, 1, 8, 8]);
  const y = input("y", "float32", [16, 1, 8, 8]);
  const h = g.relu(g.conv2d(x, c1, b1, { padding: 1 }));
  const d = g.sub(g.conv2d(h, c2, undefined, { padding: 1 }), y);
  const loss = g.reduceMean(g.mul(d, d), [0, 1, 2, 3]);
  const xs = normals(16 * 64, 21).map((v) => Math.abs(v));
  const blur = constant([1, 2, 1, 2, 4, 2, 1, 2, 1].map((v) => v / 16), [1, 1, 3, 3]);
  const target = evaluate([g.conv2d(constant(xs, [16, 1, 8, 8]), blur, undefined, { padding: 1 })], {})[0] as Value;
  return { params, init, loss, batch: { x: toHost("float32", [16, 1, 8, 8], xs), y: toHost("float32", target.shape, target.data) } };
}

/** The same optimizer steps, run by the reference evaluator; returns the loss of each step. */
function referenceTraining(p: Problem, steps: number, lr: number): number[] {
  const step = buildTrainStep(p.loss, p.params, { optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 } });
  const names = Object.keys(step.outputs);
  const outs = names.map((n) => step.outputs[n] as Tensor);
  const vals = new Map<string, Value>();
  const val = (h: HostTensor): Value => ({ dtype: "float32", shape: h.shape, data: hostToNumbers(h) });
  // the flat groups the step is fed: each group's parameters end to end, in key order
  for (const gr of step.groups) {
    const data = Float64Array.from(gr.keys.flatMap((k) => [...hostToNumbers(p.init.get(k) as HostTensor)]));
    assert.equal(data.length, gr.size);
    vals.set(flatNames.param(gr.name), { dtype: "float32", shape: [gr.size], data });
    vals.set(flatNames.m(gr.name), { dtype: "float32", shape: [gr.size], data: new Float64Array(gr.size) });
    vals.set(flatNames.v(gr.name), { dtype: "float32", shape: [gr.size], data: new Float64Array(gr.size) });
  }
  for (const [k, h] of Object.entries(p.batch)) vals.set(k, val(h));
  const losses: number[] = [];
  for (let s = 1; s <= steps; s++) {
    vals.set(adamNames.step, { dtype: "float32", shape: [], data: Float64Array.of(s) });
    vals.set(adamNames.lr, { dtype: "float32", shape: [], data: Float64Array.of(lr) });
    const res = evaluate(outs, vals);
    const get = (n: string): Value => res[names.indexOf(n)] as Value;
    losses.push(get("loss").data[0] ?? NaN);
    for (const gr of step.groups) {
      vals.set(flatNames.param(gr.name), get(flatNames.newParam(gr.name)));
      vals.set(flatNames.m(gr.name), get(flatNames.newM(gr.name)));
      vals.set(flatNames.v(gr.name), get(flatNames.newV(gr.name)));
    }
  }
  return losses;
}

async function train(p: Problem, steps: number, lr: number): Promise<number[]> {
  const trainer = await Trainer.create(p.loss, p.params, p.init, {
    optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 },
  });
  try {
    const losses: number[] = [];
    for (let s = 0; s < steps; s++) losses.push((await trainer.step(p.batch, lr)).loss);
    assert.equal(trainer.state.step, steps);
    return losses;
  } finally {
    await trainer.dispose();
  }
}

function checkRun(name: string, ort: number[], ref: number[]): void {
  const first = ort[0] ?? NaN;
  const last = ort[ort.length - 1] ?? NaN;
  assert.ok(first / last >= 10, `${name}: loss fell only ${first} → ${last} (${(first / last).toFixed(2)}×, want ≥ 10×)`);
  // float32 onnxruntime vs float64-with-float32-rounding evaluator: the trajectories agree closely.
  ort.forEach((l, i) => {
    const r = ref[i] ?? NaN;
    assert.ok(Math.abs(l - r) <= 2e-3 * Math.max(Math.abs(r), 1e-3), `${name}: step ${i} loss ORT ${l} vs reference ${r}`);
  });
}

test("MLP trained by the one-run training step: loss falls ≥ 10× and matches the reference evaluator", async () => {
  const p = mlpProblem();
  const ort = await train(p, 150, 0.01);
  checkRun("MLP", ort, referenceTraining(p, 150, 0.01));
});

test("CNN trained by the one-run training step: loss falls ≥ 10× and matches the reference evaluator", async () => {
  const p = cnnProblem();
  const ort = await train(p, 80, 0.02);
  checkRun("CNN", ort, referenceTraining(p, 80, 0.02));
});

test("frozen parameters are fed but not updated", async () => {
  const p = mlpProblem();
  const trainer = await Trainer.create(p.loss, p.params, p.init, { trainable: new Set(["l3.weight"]) });
  try {
    await trainer.step(p.batch, 0.01);
    assert.deepEqual(trainer.trainable, ["l3.weight"]);
    assert.deepEqual(trainer.params.get("l1.weight")?.data, p.init.get("l1.weight")?.data);
    assert.notDeepEqual(trainer.params.get("l3.weight")?.data, p.init.get("l3.weight")?.data);
  } finally {
    await trainer.dispose();
  }
});

test("parameters the loss does not read: a frozen group is left out of the feeds, a trainable one only decays", async () => {
  const p = mlpProblem();
  const params = new Map(p.params).set("extra.frozen", input("extra.frozen", "float16", [3])).set("extra.idle", input("extra.idle", "float32", [4]));
  const init = new Map(p.init)
    .set("extra.frozen", { dtype: "float16", shape: [3], data: Uint16Array.of(0x3c00, 0x4000, 0x4200) })
    .set("extra.idle", toHost("float32", [4], [1, -2, 3, -4]));
  const trainable = new Set([...p.params.keys(), "extra.idle"]);
  const trainer = await Trainer.create(p.loss, params, init, { trainable, optimizer: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1 } });
  try {
    const first = await trainer.step(p.batch, 0.01);
    assert.ok(Number.isFinite(first.loss));
    assert.deepEqual([...(trainer.params.get("extra.frozen")?.data ?? [])], [0x3c00, 0x4000, 0x4200]);
    // no gradient: Adam's update is 0, so p ← p − lr·λ·p
    const idle = [...((trainer.params.get("extra.idle")?.data as Float32Array | undefined) ?? [])];
    [1, -2, 3, -4].forEach((v, i) => assert.ok(Math.abs((idle[i] ?? NaN) - v * (1 - 0.01 * 0.1)) < 1e-6, `extra.idle[${i}] = ${idle[i]}`));
  } finally {
    await trainer.dispose();
  }
});

test("flat groups: parameters laid end to end per dtype and kind, in vectors of at most 4 Mi elements", () => {
  const params = new Map<string, Tensor>();
  for (const [k, shape] of [["a", [1024, 2048]], ["b", [2048, 1024]], ["c", [16]], ["big", [5, 1024, 1024]], ["d", [8]]] as [string, number[]][]) params.set(k, input(k, "float32", shape));
  params.set("frozen", input("frozen", "float32", [4]));
  const x = input("x", "float32", [8]);
  const loss = g.reduceSum([...params.values()].reduce((acc, t) => g.add(acc, g.reduceSum(t, [...t.shape.keys()])), g.reduceSum(x, [0])), []);
  const { groups } = buildTrainStep(loss, params, { trainable: new Set(["a", "b", "c", "big", "d"]) });
  const summary = groups.map((gr) => `${gr.name}: ${gr.keys.join("+")} @ ${gr.offsets.join(",")} = ${gr.size}`);
  assert.deepEqual(summary, [
    "train.float32.0: a+b @ 0,2097152 = 4194304", // exactly 4 Mi: still one vector
    "train.float32.1: c @ 0 = 16",
    "train.float32.2: big @ 0 = 5242880", // over the cap alone: a vector of its own
    "train.float32.3: d @ 0 = 8",
    "frozen.float32.0: frozen @ 0 = 4",
  ]);
});

test("adamwUpdate (per-key AdamW, public API): a second step with clipping and weight decay matches the hand-computed update", () => {
  const cfg = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 1 };
  const shapes: Record<string, number[]> = { a: [2], b: [1, 2] };
  const p0: Record<string, number[]> = { a: [1, -2], b: [0.5, 3] };
  const grads: Record<string, number[]> = { a: [3, 0], b: [-4, 0] }; // norm 5: clipped to 1/5
  const m0: Record<string, number[]> = { a: [0.1, -0.2], b: [0, 0.3] };
  const v0: Record<string, number[]> = { a: [0.01, 0.04], b: [0.02, 0] };
  const params = new Map(Object.keys(shapes).map((k) => [k, input(k, "float32", shapes[k] as number[])]));
  const gradTensors = new Map(Object.keys(shapes).map((k) => [k, input(`g.${k}`, "float32", shapes[k] as number[])]));
  const up = adamwUpdate(params, gradTensors, cfg);
  const step = 2;
  const lr = 0.01;
  const feeds = new Map<string, Value>([
    [adamNames.step, { dtype: "float32", shape: [], data: Float64Array.of(step) }],
    [adamNames.lr, { dtype: "float32", shape: [], data: Float64Array.of(lr) }],
  ]);
  for (const k of Object.keys(shapes)) {
    const v = (d: number[]): Value => ({ dtype: "float32", shape: shapes[k] as number[], data: Float64Array.from(d) });
    feeds.set(k, v(p0[k] as number[]));
    feeds.set(`g.${k}`, v(grads[k] as number[]));
    feeds.set(adamNames.m(k), v(m0[k] as number[]));
    feeds.set(adamNames.v(k), v(v0[k] as number[]));
  }
  const keys = Object.keys(shapes);
  const outs = evaluate([up.gradNorm, ...keys.flatMap((k) => [up.params.get(k), up.m.get(k), up.v.get(k)] as Tensor[])], feeds);
  assert.ok(Math.abs(((outs[0] as Value).data[0] as number) - 5) < 1e-5, "gradient norm before clipping");
  const clip = 1 / (5 + 1e-6);
  keys.forEach((k, ki) => {
    const [pOut, mOut, vOut] = outs.slice(1 + 3 * ki, 4 + 3 * ki) as Value[];
    assert.deepEqual(pOut?.shape, shapes[k]);
    (p0[k] as number[]).forEach((p, i) => {
      const gr = (grads[k] as number[])[i] as number * clip;
      const m = 0.9 * ((m0[k] as number[])[i] as number) + 0.1 * gr;
      const v = 0.99 * ((v0[k] as number[])[i] as number) + 0.01 * gr * gr;
      const update = m / (1 - 0.9 ** step) / (Math.sqrt(v / (1 - 0.99 ** step)) + 1e-8);
      const want = p - lr * (update + 0.1 * p);
      const close = (got: number, exp: number, what: string) => assert.ok(Math.abs(got - exp) <= 1e-5 * Math.max(1, Math.abs(exp)), `${k}[${i}] ${what}: ${got} vs ${exp}`);
      close(mOut?.data[i] as number, m, "m");
      close(vOut?.data[i] as number, v, "v");
      close(pOut?.data[i] as number, want, "param");
    });
  });
});
