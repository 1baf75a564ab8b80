import assert from "node:assert/strict";
import { test } from "node:test";
import { apply1, input } from "../../../src/graph/apply.js";
import type { DType } from "../../../src/graph/dtype.js";
import { evaluate } from "../../../src/graph/eval.js";
import { grad } from "../../../src/graph/grad.js";
import { hostToNumbers, valueToHost } from "../../../src/graph/host.js";
import { exportOnnx } from "../../../src/graph/onnx/export.js";
import { Op } from "../../../src/graph/op.js";
import * as g from "../../../src/graph/ops.js";
import type { Value } from "../../../src/graph/rule.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import { createSession } from "../../../src/runtime/session.js";
import { type OpCase, type OpInput, normals, runOpCases } from "./harness.js";

const x = (shape: number[], extra: Partial<OpInput> = {}): OpInput => ({ name: "x", shape, ...extra });
const p = (name: string, shape: number[], dtype?: DType): OpInput => ({ name, shape, ...(dtype ? { dtype } : {}) });
const un = (inputs: OpInput[], f: (t: Tensor) => Tensor) => ({ inputs, build: ([a]: Tensor[]) => f(a as Tensor) });
const ln = (shape: number[], axis: number, bias = true, dtype?: DType) => {
  const norm = shape.slice(axis < 0 ? shape.length + axis : axis);
  return {
    inputs: [p("x", shape, dtype), p("scale", norm, dtype), ...(bias ? [p("bias", norm, dtype)] : [])],
    build: ([a, s, b]: Tensor[]) => g.layerNorm(a as Tensor, s as Tensor, b, 1e-5, axis),
  };
};
const gn = (shape: number[], groups: number, dtype?: DType) => ({
  inputs: [p("x", shape, dtype), p("scale", [shape[1] as number], dtype), p("bias", [shape[1] as number], dtype)],
  build: ([a, s, b]: Tensor[]) => g.groupNorm(a as Tensor, s as Tensor, b as Tensor, groups, 1e-5),
});

const cases: OpCase[] = [
  { name: "ReduceSum axis 1", ...un([x([2, 3, 4])], (a) => g.reduceSum(a, [1])) },
  { name: "ReduceSum axes [0,2] keepdims", ...un([x([2, 3, 4])], (a) => g.reduceSum(a, [0, 2], true)) },
  { name: "ReduceSum axes [2,0] (unsorted)", ...un([x([2, 3, 4])], (a) => g.reduceSum(a, [2, 0])) },
  { name: "ReduceSum negative axis", ...un([x([2, 3])], (a) => g.reduceSum(a, [-1])) },
  { name: "ReduceSum all axes → scalar", ...un([x([2, 3])], (a) => g.reduceSum(a, [0, 1])) },
  { name: "ReduceSum no axes (identity)", ...un([x([2, 3])], (a) => g.reduceSum(a, [])) },
  { name: "ReduceMax no axes (identity)", ...un([x([2, 3])], (a) => g.reduceMax(a, [], true)) },
  { name: "ReduceSum int64", ...un([x([2, 3], { dtype: "int64", ints: [-5, 5] })], (a) => g.reduceSum(a, [0])) },
  { name: "ReduceMean axis 1 keepdims", ...un([x([2, 3, 4])], (a) => g.reduceMean(a, [1], true)) },
  { name: "ReduceMean axes [0,2]", ...un([x([2, 3, 4])], (a) => g.reduceMean(a, [0, 2])) },
  { name: "ReduceMean spatial [1,2] of [2,3,4,5]", ...un([x([2, 3, 4, 5])], (a) => g.reduceMean(a, [2, 3], true)) },
  { name: "ReduceMax axis 1", ...un([x([2, 3, 4])], (a) => g.reduceMax(a, [1])) },
  { name: "ReduceMax axes [0,2] keepdims", ...un([x([2, 3, 4])], (a) => g.reduceMax(a, [0, 2], true)) },
  // Two-way ties: the central difference at a tie is ½ for each, which the shared gradient matches.
  {
    name: "ReduceMax two-way ties",
    ...un([x([2, 3], { values: [1, 3, 3, -2, 0.5, -2] })], (a) => g.reduceMax(a, [1])),
  },
  { name: "ReduceMax int64", ...un([x([3, 4], { dtype: "int64", ints: [-9, 9] })], (a) => g.reduceMax(a, [1])) },
  { name: "Softmax last axis", ...un([x([2, 5])], (a) => g.softmax(a)) },
  { name: "Softmax middle axis", ...un([x([2, 3, 4])], (a) => g.softmax(a, 1)) },
  { name: "Softmax axis 0", ...un([x([3, 2])], (a) => g.softmax(a, 0)) },
  { name: "Softmax large logits", ...un([x([2, 3], { values: [100, 101, 102, -50, 0, 50] })], (a) => g.softmax(a)) },
  { name: "LayerNorm last axis", ...ln([2, 3, 4], -1) },
  { name: "LayerNorm no bias", ...ln([3, 5], -1, false) },
  { name: "LayerNorm axis 1 of rank 3", ...ln([2, 3, 4], 1) },
  { name: "LayerNorm axis 0", ...ln([2, 3], 0) },
  { name: "LayerNorm float16", ...ln([2, 8], -1, true, "float16"), grad: false, tol: 5e-3 },
  { name: "GroupNorm [2,4,3] 2 groups", ...gn([2, 4, 3], 2) },
  { name: "GroupNorm [2,6,2,3] 3 groups", ...gn([2, 6, 2, 3], 3) },
  { name: "GroupNorm 1 group", ...gn([2, 4, 2, 2], 1) },
  { name: "GroupNorm groups = channels", ...gn([1, 3, 2, 2], 3) },
  { name: "GroupNorm rank 2", ...gn([3, 4], 2) },
  { name: "GroupNorm float16", ...gn([1, 4, 2, 2], 2, "float16"), grad: false, tol: 5e-3 },
];

runOpCases("reduce", cases);

/** Evaluates `f` on one float32 input with the given values. */
function run(shape: number[], values: number[], f: (t: Tensor) => Tensor): Value {
  const t = input("x", "float32", shape);
  return evaluate([f(t)], { x: { dtype: "float32", shape, data: Float64Array.from(values) } })[0] as Value;
}

function close(got: Float64Array, want: readonly number[], tol = 1e-6): void {
  assert.equal(got.length, want.length);
  want.forEach((w, i) => assert.ok(Math.abs((got[i] ?? NaN) - w) <= tol, `at ${i}: got ${got[i]}, want ${w}`));
}

const M = [1, 2, 3, 4, 5, 6]; // [[1,2,3],[4,5,6]]

test("reductions of a 2×3 matrix, by hand", () => {
  const sum = run([2, 3], M, (t) => g.reduceSum(t, [1]));
  assert.deepEqual(sum.shape, [2]);
  close(sum.data, [6, 15]);
  const mean = run([2, 3], M, (t) => g.reduceMean(t, [0], true));
  assert.deepEqual(mean.shape, [1, 3]);
  close(mean.data, [2.5, 3.5, 4.5]);
  close(run([2, 3], [1, 9, 3, 4, -5, 6], (t) => g.reduceMax(t, [0])).data, [4, 9, 6]);
  close(run([2, 3], M, (t) => g.reduceSum(t, [0, 1])).data, [21]);
  // No axes is the identity (numpy's sum over axis=()), not ONNX's "reduce everything".
  const none = run([2, 3], M, (t) => g.reduceMean(t, []));
  assert.deepEqual(none.shape, [2, 3]);
  close(none.data, M);
});

test("softmax of ln 1, ln 2, ln 3 is 1/6, 1/3, 1/2", () => {
  close(run([3], [0, Math.log(2), Math.log(3)], (t) => g.softmax(t)).data, [1 / 6, 1 / 3, 1 / 2]);
});

test("layer norm of [1,2,3,4], by hand", () => {
  // μ = 2.5, σ² = 1.25 (biased); scale [1,1,2,2], bias [0,0,0,1].
  const t = input("x", "float32", [4]);
  const scale = input("scale", "float32", [4]);
  const bias = input("bias", "float32", [4]);
  const feeds = {
    x: { dtype: "float32" as const, shape: [4], data: Float64Array.from([1, 2, 3, 4]) },
    scale: { dtype: "float32" as const, shape: [4], data: Float64Array.from([1, 1, 2, 2]) },
    bias: { dtype: "float32" as const, shape: [4], data: Float64Array.from([0, 0, 0, 1]) },
  };
  const [y] = evaluate([g.layerNorm(t, scale, bias, 0)], feeds) as [Value];
  const r = 1 / Math.sqrt(1.25);
  close(y.data, [-1.5 * r, -0.5 * r, 2 * 0.5 * r, 2 * 1.5 * r + 1]);
});

test("group norm scales per channel (opset 21), by hand", () => {
  // x [1,4,2] = 1..8 in 2 groups: {1,2,3,4} and {5,6,7,8}, each μ ± (−1.5, −.5, .5, 1.5), σ² = 1.25.
  const t = input("x", "float32", [1, 4, 2]);
  const scale = input("scale", "float32", [4]);
  const bias = input("bias", "float32", [4]);
  const feeds = {
    x: { dtype: "float32" as const, shape: [1, 4, 2], data: Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8]) },
    scale: { dtype: "float32" as const, shape: [4], data: Float64Array.from([1, 2, 3, 4]) },
    bias: { dtype: "float32" as const, shape: [4], data: Float64Array.from([0, 0, 0, 10]) },
  };
  const [y] = evaluate([g.groupNorm(t, scale, bias, 2, 0)], feeds) as [Value];
  const r = 1 / Math.sqrt(1.25);
  const [a, b, c, d] = [-1.5 * r, -0.5 * r, 0.5 * r, 1.5 * r];
  close(y.data, [a, b, 2 * c, 2 * d, 3 * a, 3 * b, 4 * c + 10, 4 * d + 10]);
});

test("symbolic dims survive inference", () => {
  const t = input("x", "float32", ["B", 4, "H*W"]);
  assert.deepEqual(g.reduceMean(t, [2]).shape, ["B", 4]);
  assert.deepEqual(g.reduceSum(t, [0, 2], true).shape, [1, 4, 1]);
  assert.deepEqual(g.softmax(t).shape, ["B", 4, "H*W"]);
  const c = input("c", "float32", [4]);
  assert.deepEqual(g.groupNorm(t, c, c, 2, 1e-5).shape, ["B", 4, "H*W"]);
  assert.deepEqual(g.layerNorm(t, input("s", "float32", ["H*W"]), undefined, 1e-5).shape, ["B", 4, "H*W"]);
});

test("lowerings with a symbolic batch run on onnxruntime at B = 2", async () => {
  const x = input("x", "float32", ["B", 4, 3, 2]);
  const c = input("c", "float32", [4]);
  const w = input("w", "float32", [2]);
  const build = (t: Tensor, cc: Tensor, ww: Tensor): Tensor => {
    const h = g.groupNorm(t, cc, cc, 2, 1e-5); // [B, 4, 3, 2]
    const l = g.layerNorm(h, ww, undefined, 1e-5); // [B, 4, 3, 2]
    return g.add(g.softmax(l, 1), g.reduceMax(g.reduceMean(l, [1], true), [3], true)); // [B, 4, 3, 2]
  };
  const model = exportOnnx({ y: build(x, c, w) }, { name: "symbolic" });
  const value = (shape: number[], seed: number): Value => {
    const n = shape.reduce((p, q) => p * q, 1);
    return { dtype: "float32", shape, data: Float64Array.from(normals(n, seed)) };
  };
  const feeds = { x: value([2, 4, 3, 2], 1), c: value([4], 2), w: value([2], 3) };
  const concrete = (name: keyof typeof feeds): Tensor => input(name, "float32", [...feeds[name].shape]);
  const want = (evaluate([build(concrete("x"), concrete("c"), concrete("w"))], feeds)[0] as Value).data;
  const session = await createSession(model.bytes, { provider: "cpu", graphName: "symbolic" });
  try {
    const res = await session.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, valueToHost(v)])));
    close(hostToNumbers(res.y as never), [...want], 1e-4);
  } finally {
    await session.dispose();
  }
});

test("ReduceMean VJP over symbolic dims says training graphs need concrete shapes", () => {
  const t = input("x", "float32", ["B", 4]);
  const loss = g.reduceSum(g.reduceMean(t, [0]), [0]);
  assert.throws(() => grad(loss, new Map([["x", t]])), /ReduceMean VJP.*symbolic.*concrete shapes/);
});

test("infer errors name the op and say what was expected", () => {
  const t = input("x", "float32", [2, 3]);
  const reduce = (op: Op.ReduceSum | Op.ReduceMax, axes: number[]) => () => apply1(op, [t], { axes, keepdims: false });
  assert.throws(reduce(Op.ReduceSum, [2]), /^ShapeError: ReduceSum: axis 2 is out of range/);
  assert.throws(reduce(Op.ReduceMax, [1, 1]), /ReduceMax: axis 1 is listed twice/);
  const i = input("i", "int64", [2, 3]);
  assert.throws(() => g.reduceMean(i, [0]), /ReduceMean: input must be a float tensor, got int64/);
  assert.throws(() => g.softmax(i), /Softmax: input must be a float tensor/);
  assert.throws(() => apply1(Op.Softmax, [t], { axis: 2 }), /Softmax: axis 2 is out of range/);
  assert.throws(
    () => g.layerNorm(t, input("s", "float32", [2]), undefined, 1e-5),
    /LayerNormalization: scale \(input #1\) must have shape \[3\], got \[2\]/,
  );
  assert.throws(
    () => g.layerNorm(t, input("s", "float32", [3]), input("b", "float16", [3]), 1e-5),
    /LayerNormalization: input #2 is float16 but input #0 is float32/,
  );
  const c = input("c", "float32", [3]);
  const x4 = input("x4", "float32", [1, 3, 2, 2]);
  assert.throws(() => g.groupNorm(x4, c, c, 2, 1e-5), /GroupNormalization: channels 3 are not divisible by numGroups 2/);
  const b1 = input("b", "float32", [1]);
  assert.throws(() => g.groupNorm(x4, c, b1, 3, 1e-5), /GroupNormalization: bias \(input #2\) must have shape \[3\]/);
  const v = input("v", "float32", [3]);
  assert.throws(() => g.groupNorm(v, c, c, 1, 1e-5), /GroupNormalization: x must be \[N, C, …\] of rank ≥ 2/);
});
