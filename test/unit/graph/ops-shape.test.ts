import assert from "node:assert/strict";
import { test } from "node:test";
import { ShapeError } from "../../../src/errors.js";
import { apply1, input } from "../../../src/graph/apply.js";
import { compile } from "../../../src/graph/compile.js";
import type { DType } from "../../../src/graph/dtype.js";
import { evaluate } from "../../../src/graph/eval.js";
import { grad } from "../../../src/graph/grad.js";
import { hostToNumbers, valueToHost } from "../../../src/graph/host.js";
import { Op } from "../../../src/graph/op.js";
import * as g from "../../../src/graph/ops.js";
import type { Value } from "../../../src/graph/rule.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import { type OpCase, runOpCases } from "./harness.js";

const x = (shape: number[]) => ({ name: "x", shape });
const un = (shape: number[], f: (t: Tensor) => Tensor | Tensor[]) => ({ inputs: [x(shape)], build: ([a]: Tensor[]) => f(a as Tensor) });
const three = (shapes: [number[], number[], number[]], axis: number) => ({
  inputs: shapes.map((shape, i) => ({ name: `x${i}`, shape })),
  build: (xs: Tensor[]) => g.concat(xs, axis),
});
const gather = (data: number[], idx: { shape: number[]; values?: number[]; ints?: [number, number] }, axis: number) => ({
  inputs: [x(data), { name: "i", dtype: "int64" as DType, ...idx }],
  build: ([a, i]: Tensor[]) => g.gather(a as Tensor, i as Tensor, axis),
});

const cases: OpCase[] = [
  { name: "Reshape [2,3,4]→[6,4]", ...un([2, 3, 4], (a) => g.reshape(a, [6, 4])) },
  { name: "Reshape [2,3,4]→[2,-1]", ...un([2, 3, 4], (a) => g.reshape(a, [2, -1])) },
  { name: "Reshape [2,3,4]→[-1,3,1,2]", ...un([2, 3, 4], (a) => g.reshape(a, [-1, 3, 1, 2])) },
  { name: "Transpose [1,0]", ...un([2, 3], (a) => g.transpose(a, [1, 0])) },
  { name: "Transpose NCHW→NHWC", ...un([2, 3, 4, 5], (a) => g.transpose(a, [0, 2, 3, 1])) },
  { name: "Concat axis 0", ...three([[1, 3], [2, 3], [3, 3]], 0) },
  { name: "Concat axis 1", ...three([[2, 1, 2], [2, 3, 2], [2, 2, 2]], 1) },
  { name: "Concat axis -1", ...three([[2, 2, 1], [2, 2, 3], [2, 2, 2]], -1) },
  { name: "Slice [1:3] axis 1", ...un([3, 5], (a) => g.slice(a, [1], [1], [3])) },
  { name: "Slice negative start/end", ...un([3, 6], (a) => g.slice(a, [-1], [-4], [-1])) },
  { name: "Slice end Infinity, step 2", ...un([3, 7], (a) => g.slice(a, [1], [1], [Infinity], [2])) },
  { name: "Slice step 3 overshooting the end", ...un([8, 2], (a) => g.slice(a, [0], [1], [100], [3])) },
  { name: "Slice step 3 stopping early", ...un([10], (a) => g.slice(a, [0], [2], [7], [3])) },
  { name: "Slice two axes", ...un([4, 5, 6], (a) => g.slice(a, [2, 0], [1, -3], [5, Infinity], [2, 1])) },
  { name: "Slice clamps start and end", ...un([4, 3], (a) => g.slice(a, [0], [-10], [10])) },
  { name: "Split equal", ...un([2, 6], (a) => g.split(a, [3, 3], 1)) },
  { name: "Split unequal, axis -1", ...un([2, 3, 6], (a) => g.split(a, [1, 2, 3], -1)) },
  { name: "Split axis 0, one output used", ...un([5, 2], (a) => (g.split(a, [2, 3], 0)[1] as Tensor)) },
  // 30 outputs: lowered as a tree of Splits of at most 8 outputs (WebGPU's storage-buffer limit)
  { name: "Split into 30 unequal parts", ...un([2, 60], (a) => g.split(a, Array.from({ length: 30 }, (_, i) => (i % 3) + 1), 1)) },
  { name: "Expand [3,1]→[2,3,4]", ...un([3, 1], (a) => g.expand(a, [2, 3, 4])) },
  { name: "Expand scalar→[2,3]", ...un([], (a) => g.expand(a, [2, 3])) },
  { name: "Expand [2,3] by [1,3] keeps 2", ...un([2, 3], (a) => g.expand(a, [1, 3])) },
  { name: "Unsqueeze [0]", ...un([2, 3], (a) => g.unsqueeze(a, [0])) },
  { name: "Unsqueeze [-1, 1]", ...un([2, 3], (a) => g.unsqueeze(a, [-1, 1])) },
  { name: "Squeeze [1]", ...un([2, 1, 3, 1], (a) => g.squeeze(a, [1])) },
  { name: "Squeeze all size-1 dims", ...un([1, 2, 1, 3], (a) => g.squeeze(a, [])) },
  { name: "Squeeze [-1]", ...un([2, 3, 1], (a) => g.squeeze(a, [-1])) },
  { name: "Gather embedding [6,4] by [2,3]", ...gather([6, 4], { shape: [2, 3], ints: [0, 6] }, 0) },
  { name: "Gather negative and repeated indices", ...gather([5, 3], { shape: [4], values: [-1, 2, -1, 0] }, 0) },
  { name: "Gather axis 1", ...gather([2, 4, 3], { shape: [5], ints: [-4, 4] }, 1) },
  { name: "Gather axis -1, scalar index", ...gather([2, 3, 4], { shape: [], values: [2] }, -1) },
];

runOpCases("shape", cases);

const v = (shape: number[], data: number[], dtype: DType = "float32"): Value => ({ dtype, shape, data: Float64Array.from(data) });
const run1 = (t: Tensor, feeds: Record<string, Value>): number[] => [...((evaluate([t], feeds)[0] as Value).data)];

test("hand-computed: transpose, concat, split, slice, expand", () => {
  const a = input("a", "float32", [2, 3]);
  const feeds = { a: v([2, 3], [1, 2, 3, 4, 5, 6]) };
  assert.deepEqual(run1(g.transpose(a, [1, 0]), feeds), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(run1(g.concat([a, a], 1), feeds), [1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6]);
  const [p, q] = g.split(a, [1, 2], 1) as [Tensor, Tensor];
  assert.deepEqual(run1(p, feeds), [1, 4]);
  assert.deepEqual(run1(q, feeds), [2, 3, 5, 6]);
  assert.deepEqual(run1(g.slice(a, [1], [-1], [Infinity]), feeds), [3, 6]);
  assert.deepEqual(run1(g.slice(a, [0, 1], [1, 0], [2, 3], [1, 2]), feeds), [4, 6]);
  assert.deepEqual(run1(g.expand(g.slice(a, [0], [0], [1]), [2, 2, 3]), feeds), [1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3]);
});

test("hand-computed: gather with negative indices, and its scatter-add gradient", () => {
  const table = input("table", "float64", [3, 2]);
  const ids = input("ids", "int64", [3]);
  const feeds = { table: v([3, 2], [1, 2, 3, 4, 5, 6], "float64"), ids: v([3], [2, -1, 0], "int64") };
  assert.deepEqual(run1(g.gather(table, ids), feeds), [5, 6, 5, 6, 1, 2]);
  // Σ gather(table, [0, 0, 2]) · [[1,10],[100,1000],[7,8]]: row 0 gets two rows of gy, row 1 none.
  const gy = input("gy", "float64", [3, 2]);
  const loss = g.reduceSum(g.mul(g.gather(table, ids), gy), [0, 1]);
  const gt = grad(loss, new Map([["t", table]])).get("t") as Tensor;
  const f2 = { ...feeds, ids: v([3], [0, -3, 2], "int64"), gy: v([3, 2], [1, 10, 100, 1000, 7, 8], "float64") };
  assert.deepEqual(run1(gt, f2), [101, 1010, 0, 0, 7, 8]);
  assert.throws(() => run1(g.gather(table, ids), { ...feeds, ids: v([3], [0, 3, 1], "int64") }), /index 3 is out of range for a dim of size 3/);
});

test("symbolic dims: reshape infers H*W, concat adds, slice and expand keep symbols", () => {
  const a = input("a", "float32", ["B", 4, "H", "W"]);
  const flat = g.reshape(a, ["B", 4, -1]);
  assert.deepEqual(flat.shape, ["B", 4, "H*W"]);
  assert.deepEqual(g.reshape(flat, ["B", 4, "W", "H"]).shape, ["B", 4, "W", "H"]);
  assert.deepEqual(g.reshape(a, [-1, "W"]).shape, ["4*B*H", "W"]);
  assert.deepEqual(g.concat([a, a], 0).shape, ["2*B", 4, "H", "W"]);
  assert.deepEqual(g.concat([a, g.concat([a, a], 0)], 0).shape, ["3*B", 4, "H", "W"]);
  assert.deepEqual(g.slice(g.concat([a, a], 0), [0], [0], [Infinity], [2]).shape, ["B", 4, "H", "W"]);
  assert.deepEqual(g.slice(a, [1, 2], [1, 0], [3, Infinity]).shape, ["B", 2, "H", "W"]);
  assert.deepEqual(g.expand(input("b", "float32", [1, 4, 1, 1]), ["B", 4, "H", "W"]).shape, ["B", 4, "H", "W"]);
  assert.deepEqual(g.gather(a, input("i", "int64", ["N", 2]), 1).shape, ["B", "N", 2, "H", "W"]);
  assert.deepEqual(g.squeeze(g.unsqueeze(a, [0, -1]), [0]).shape, ["B", 4, "H", "W", 1]);
});

test("infer errors name the op and say what was expected", () => {
  const a = input("a", "float32", [2, 3]);
  const s = input("s", "float32", ["B", 3]);
  const ids = input("ids", "float32", [2]);
  assert.throws(() => g.reshape(a, [4, -1]), (e: unknown) => e instanceof ShapeError && /^Reshape: cannot reshape \[2,3\] \(6 elements\) to \[4,-1\]/.test(e.message));
  assert.throws(() => g.reshape(a, [5]), /^ShapeError: Reshape: cannot reshape \[2,3\] \(6 elements\) to \[5\] \(5 elements\)/);
  assert.throws(() => g.reshape(a, [-1, -1]), /^ShapeError: Reshape: target shape \[-1,-1\] has more than one -1/);
  assert.throws(() => g.reshape(s, [-1, 2]), /^ShapeError: Reshape: cannot reshape \[B,3\] \(3\*B elements\)/);
  assert.throws(() => g.transpose(a, [0, 0]), /^ShapeError: Transpose: perm must be a permutation of 0\.\.1, got \[0,0\]/);
  assert.throws(() => g.concat([a, input("c", "float32", [3, 3])], 1), /^ShapeError: Concat: input #1 \[3,3\] must match input #0 \[2,3\] on every axis but 1/);
  assert.throws(() => g.concat([s, a], 0), /^ShapeError: Concat: cannot add dims B \+ 2 along axis 0/);
  assert.throws(() => g.slice(a, [1], [0], [2], [-1]), /^ShapeError: Slice: steps must be positive integers, got -1/);
  assert.throws(() => g.slice(s, [0], [1], [Infinity]), /^ShapeError: Slice: a slice of symbolic dim B must take the whole dim/);
  const badAxis = { axes: [2], starts: [0], ends: [1], steps: [1] };
  assert.throws(() => apply1(Op.Slice, [a], badAxis), /^ShapeError: Slice: axis 2 is out of range for rank 2/);
  assert.throws(() => g.split(a, [1, 1], 1), /^ShapeError: Split: sizes \[1,1\] add up to 2 but axis 1 has size 3/);
  assert.throws(() => g.split(s, [1, 1], 0), /^ShapeError: Split: .*a symbolic dim cannot be split/);
  assert.throws(() => g.expand(a, [4, 3]), /^ShapeError: Expand: cannot broadcast dim 2 with 4/);
  assert.throws(() => g.unsqueeze(a, [3]), /^ShapeError: Unsqueeze: axis 3 is out of range for rank 3/);
  assert.throws(() => g.squeeze(a, [0]), /^ShapeError: Squeeze: axis 0 has size 2, not 1/);
  assert.throws(() => g.gather(a, ids), /^ShapeError: Gather: indices must be int64 \(or int32\), got float32/);
});

test("symbolic graphs run on onnxruntime and match the evaluator, gradients included", async () => {
  const a = input("a", "float32", ["B", 3, 4]);
  const b = input("b", "float32", [1, 3, 1]);
  const both = g.concat([a, g.expand(b, ["B", 3, 4])], 0); // [2*B, 3, 4]
  const even = g.slice(both, [0, 2], [0, 1], [Infinity, Infinity], [2, 1]); // [B, 3, 3]
  const out = g.reshape(g.mul(even, even), ["B", -1]); // [B, 9]
  const loss = g.reduceSum(g.mul(g.reshape(both, [-1]), g.reshape(both, [-1])), [0]);
  const ga = grad(g.add(loss, g.reduceSum(out, [0, 1])), new Map([["a", a]])).get("a") as Tensor;
  assert.deepEqual(out.shape, ["B", 9]);
  const feeds = { a: v([2, 3, 4], Array.from({ length: 24 }, (_, i) => (i % 7) - 3)), b: v([1, 3, 1], [0.5, -1, 2]) };
  const want = evaluate([out, ga], feeds);
  const graph = await compile({ out, ga }, { name: "symbolic-shape" });
  try {
    const res = await graph.run({ a: valueToHost(feeds.a), b: valueToHost(feeds.b) });
    assert.deepEqual([...hostToNumbers(res.out as never)], [...(want[0] as Value).data]);
    assert.deepEqual([...hostToNumbers(res.ga as never)], [...(want[1] as Value).data]);
  } finally {
    await graph.dispose();
  }
});
