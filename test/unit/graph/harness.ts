/**
 * Op test harness: for each case, the forward pass on onnxruntime is checked against the TS
 * reference evaluator, and the VJP (evaluated in float64) against central finite differences.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { constant, input } from "../../../src/graph/apply.js";
import type { DType } from "../../../src/graph/dtype.js";
import { isFloat } from "../../../src/graph/dtype.js";
import { evaluate } from "../../../src/graph/eval.js";
import { grad } from "../../../src/graph/grad.js";
import { hostToNumbers, valueToHost } from "../../../src/graph/host.js";
import { exportOnnx } from "../../../src/graph/onnx/export.js";
import { add, mul, reduceSum } from "../../../src/graph/ops.js";
import type { Value } from "../../../src/graph/rule.js";
import { numel } from "../../../src/graph/shape.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import { createSession } from "../../../src/runtime/session.js";

/** One input of an op case. */
export interface OpInput {
  name: string;
  shape: number[];
  dtype?: DType;
  /** Explicit values; default seeded normal random. */
  values?: number[];
  /** Random values in (0.5, 2). */
  positive?: boolean;
  /** Random integers in [lo, hi). */
  ints?: [number, number];
}

/** One row of an op table. */
export interface OpCase {
  name: string;
  inputs: OpInput[];
  build: (xs: Tensor[]) => Tensor | Tensor[];
  /** Check the VJP; default true when every output is float. */
  grad?: boolean;
  /** Forward tolerance, ORT vs reference (max abs, scaled by max(1, |ref|)); default 1e-4. */
  tol?: number;
  /** Finite-difference relative tolerance; default 1e-6. */
  gradTol?: number;
}

/** A seeded generator of uniform numbers in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Seeded standard normal samples. */
export function normals(n: number, seed: number): number[] {
  const u = rng(seed);
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()));
}

function makeValues(inp: OpInput, seed: number): number[] {
  const n = numel(inp.shape);
  if (inp.values) return inp.values;
  const u = rng(seed);
  if (inp.ints) {
    const [lo, hi] = inp.ints;
    return Array.from({ length: n }, () => lo + Math.floor(u() * (hi - lo)));
  }
  if (inp.positive) return Array.from({ length: n }, () => 0.5 + 1.5 * u());
  if (inp.dtype === "bool") return Array.from({ length: n }, () => (u() < 0.5 ? 1 : 0));
  return normals(n, seed);
}

function asList(t: Tensor | Tensor[]): Tensor[] {
  return Array.isArray(t) ? t : [t];
}

async function checkForward(c: OpCase, values: number[][]): Promise<void> {
  const xs = c.inputs.map((i) => input(i.name, i.dtype ?? "float32", i.shape));
  const outs = asList(c.build(xs));
  const feeds: Record<string, Value> = {};
  c.inputs.forEach((i, k) => (feeds[i.name] = { dtype: i.dtype ?? "float32", shape: i.shape, data: Float64Array.from(values[k] ?? []) }));
  const ref = evaluate(outs, feeds);
  const named = Object.fromEntries(outs.map((t, k) => [`out${k}`, t]));
  const model = exportOnnx(named, { name: c.name });
  const session = await createSession(model.bytes, { provider: "cpu", graphName: c.name });
  try {
    const hostFeeds = Object.fromEntries(model.inputs.map((i) => [i.name, valueToHost(feeds[i.name] as Value)]));
    const res = await session.run(hostFeeds);
    outs.forEach((_t, k) => {
      const got = hostToNumbers(res[`out${k}`] as never);
      const want = (ref[k] as Value).data;
      assert.equal(got.length, want.length, `${c.name}: output ${k} length`);
      let worst = 0;
      let at = -1;
      for (let i = 0; i < want.length; i++) {
        const w = want[i] ?? 0;
        const d = Math.abs((got[i] ?? 0) - w) / Math.max(1, Math.abs(w));
        if (d > worst || Number.isNaN(d)) [worst, at] = [d, i];
      }
      const tol = c.tol ?? 1e-4;
      assert.ok(worst <= tol, `${c.name}: ORT vs reference, output ${k}: maxRel ${worst} at ${at} (ORT ${got[at]}, ref ${want[at]})`);
    });
  } finally {
    await session.dispose();
  }
}

function checkGrad(c: OpCase, values: number[][], seed: number): void {
  // Rebuild in float64 so the finite differences are meaningful.
  const dt = (i: OpInput): DType => (i.dtype === undefined || i.dtype === "float32" ? "float64" : i.dtype);
  const xs = c.inputs.map((i) => input(i.name, dt(i), i.shape));
  const outs = asList(c.build(xs));
  let loss: Tensor | undefined;
  outs.forEach((o, k) => {
    const n = numel(o.shape as number[]);
    const w = constant(normals(n, seed + 17 * k + 1), o.shape as number[], o.dtype);
    const term = reduceSum(mul(o, w), o.shape.map((_, a) => a));
    loss = loss === undefined ? term : add(loss, term);
  });
  const floatIdx = c.inputs.map((i, k) => (isFloat(dt(i)) ? k : -1)).filter((k) => k >= 0);
  const wrt = new Map(floatIdx.map((k) => [c.inputs[k]?.name ?? "", xs[k] as Tensor]));
  const grads = grad(loss as Tensor, wrt);
  const feeds = (vals: number[][]): Record<string, Value> =>
    Object.fromEntries(c.inputs.map((i, k) => [i.name, { dtype: dt(i), shape: i.shape, data: Float64Array.from(vals[k] ?? []) }]));
  const keys = [...grads.keys()];
  const analytic = evaluate(keys.map((k) => grads.get(k) as Tensor), feeds(values));
  const lossAt = (vals: number[][]): number => (evaluate([loss as Tensor], feeds(vals))[0] as Value).data[0] ?? NaN;
  keys.forEach((key, j) => {
    const k = c.inputs.findIndex((i) => i.name === key);
    const a = (analytic[j] as Value).data;
    const base = values[k] as number[];
    const idx = base.length <= 48 ? base.map((_, i) => i) : Array.from({ length: 48 }, (_, i) => Math.floor((i * base.length) / 48));
    let maxDiff = 0;
    let maxRef = 0;
    let at = -1;
    for (const i of idx) {
      const h = 1e-5 * Math.max(1, Math.abs(base[i] ?? 0));
      const plus = values.map((v, m) => (m === k ? v.map((x, q) => (q === i ? x + h : x)) : v));
      const minus = values.map((v, m) => (m === k ? v.map((x, q) => (q === i ? x - h : x)) : v));
      const fd = (lossAt(plus) - lossAt(minus)) / (2 * h);
      const d = Math.abs((a[i] ?? 0) - fd);
      maxRef = Math.max(maxRef, Math.abs(fd));
      if (d > maxDiff || Number.isNaN(d)) [maxDiff, at] = [d, i];
    }
    const rel = maxDiff / Math.max(maxRef, 1e-8);
    const tol = c.gradTol ?? 1e-6;
    assert.ok(rel <= tol, `${c.name}: VJP of '${key}' vs finite differences: relErr ${rel} (maxAbs ${maxDiff} at ${at}, scale ${maxRef})`);
  });
}

/** Registers the forward and gradient tests of an op table. */
export function runOpCases(family: string, cases: OpCase[]): void {
  for (const c of cases) {
    test(`${family}: ${c.name}`, async () => {
      const seed = hash(c.name);
      const values = c.inputs.map((i, k) => makeValues(i, seed + 101 * k));
      await checkForward(c, values);
      const probe = asList(c.build(c.inputs.map((i) => input(i.name, i.dtype ?? "float32", i.shape))));
      const wantGrad = c.grad ?? (probe.every((t) => isFloat(t.dtype)) && c.inputs.some((i) => isFloat(i.dtype ?? "float32")));
      if (wantGrad) checkGrad(c, values, seed);
    });
  }
}
