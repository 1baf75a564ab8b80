import assert from "node:assert/strict";
import { test } from "node:test";
import { input } from "../../../src/graph/apply.js";
import { evaluate } from "../../../src/graph/eval.js";
import * as g from "../../../src/graph/ops.js";
import { erf } from "../../../src/graph/rules/erf.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import { ShapeError } from "../../../src/errors.js";
import { type OpCase, type OpInput, runOpCases } from "./harness.js";

const x = (shape: number[] = [2, 3]) => ({ name: "x", shape });
const y = (shape: number[] = [2, 3]) => ({ name: "y", shape });
const pos = (name: string, shape: number[] = [2, 3]) => ({ name, shape, positive: true });
const un = (f: (t: Tensor) => Tensor, inputs: OpInput[] = [x()]) => ({ inputs, build: ([a]: Tensor[]) => f(a as Tensor) });
const bin = (f: (a: Tensor, b: Tensor) => Tensor, inputs: OpInput[] = [x(), y()]) => ({
  inputs,
  build: ([a, b]: Tensor[]) => f(a as Tensor, b as Tensor),
});

const cases: OpCase[] = [
  { name: "Add", ...bin(g.add) },
  { name: "Add broadcast [2,3]+[3]", ...bin(g.add, [x(), y([3])]) },
  { name: "Add broadcast [2,1,4]+[3,1]", ...bin(g.add, [x([2, 1, 4]), y([3, 1])]) },
  { name: "Add scalar", ...un((a) => g.add(a, 2.5)) },
  { name: "Sub", ...bin(g.sub, [x([4, 1]), y([1, 5])]) },
  { name: "Mul", ...bin(g.mul, [x([2, 3, 4]), y([4])]) },
  { name: "Div", ...bin(g.div, [x(), pos("y")]) },
  { name: "Pow", ...bin(g.pow, [pos("x"), y()]) },
  { name: "Pow scalar exponent", ...un((a) => g.pow(a, 3)) },
  { name: "Max", ...bin(g.maximum) },
  { name: "Min", ...bin(g.minimum, [x(), y([3])]) },
  { name: "Equal", ...bin(g.equal, [{ name: "x", shape: [6], values: [1, 2, 3, 4, 5, 6] }, { name: "y", shape: [6], values: [1, 0, 3, 0, 5, 0] }]) },
  { name: "Greater", ...bin(g.greater) },
  { name: "Less", ...bin(g.less) },
  { name: "Sqrt", ...un(g.sqrt, [pos("x")]) },
  { name: "Exp", ...un(g.exp) },
  { name: "Log", ...un(g.log, [pos("x")]) },
  { name: "Neg", ...un(g.neg) },
  { name: "Abs", ...un(g.abs) },
  { name: "Tanh", ...un(g.tanh) },
  { name: "Sigmoid", ...un(g.sigmoid) },
  { name: "Erf", ...un(g.erf) },
  { name: "Relu", ...un(g.relu) },
  { name: "Sin", ...un(g.sin) },
  { name: "Cos", ...un(g.cos) },
  { name: "Gelu exact", ...un((a) => g.gelu(a)) },
  { name: "Gelu tanh", ...un((a) => g.gelu(a, "tanh")) },
  {
    name: "Where",
    inputs: [{ name: "c", shape: [2, 3], dtype: "bool" }, x(), y([3])],
    build: ([c, a, b]) => g.where(c as Tensor, a as Tensor, b as Tensor),
  },
  { name: "Cast float→int64", ...un((a) => g.cast(g.mul(a, 10), "int64")), grad: false },
  // Rounding to float16 defeats finite differences; its VJP (a Cast back) is checked through the float64 case.
  { name: "Cast float32→float16→float32", ...un((a) => g.cast(g.cast(a, "float16"), "float32")), tol: 1e-3, grad: false },
  { name: "Cast float32→float64", ...un((a) => g.mul(g.cast(a, "float64"), g.cast(a, "float64"))) },
];

runOpCases("elementwise", cases);

test("erf matches known values", () => {
  // erf(0.5), erf(1), erf(2), erf(3.5) to 16 digits.
  assert.ok(Math.abs(erf(0.5) - 0.5204998778130465) < 1e-15);
  assert.ok(Math.abs(erf(1) - 0.8427007929497149) < 1e-15);
  assert.ok(Math.abs(erf(2) - 0.9953222650189527) < 1e-15);
  assert.ok(Math.abs(erf(3.5) - 0.9999992569016276) < 1e-15);
  assert.equal(erf(-1), -erf(1));
});

test("broadcast hand-computed: [[1],[2]] * [10, 20, 30]", () => {
  const a = input("a", "float32", [2, 1]);
  const b = input("b", "float32", [3]);
  const [v] = evaluate([g.mul(a, b)], {
    a: { dtype: "float32", shape: [2, 1], data: Float64Array.from([1, 2]) },
    b: { dtype: "float32", shape: [3], data: Float64Array.from([10, 20, 30]) },
  });
  assert.deepEqual(v?.shape, [2, 3]);
  assert.deepEqual([...(v?.data ?? [])], [10, 20, 30, 20, 40, 60]);
});

test("shape errors name the op and the tensors", () => {
  const a = input("unet.a", "float32", [2, 3]);
  const b = input("unet.b", "float32", [4]);
  assert.throws(() => g.add(a, b), (e: unknown) => e instanceof ShapeError && /^Add: cannot broadcast.*'unet\.a'.*'unet\.b'/.test(e.message));
  const i = input("ids", "int64", [3]);
  assert.throws(() => g.add(a, i), /Add: input #1 is int64 but input #0 is float32/);
  assert.throws(() => g.sqrt(i), /Sqrt: input must be a float tensor, got int64/);
});

test("symbolic dims broadcast and stay symbolic", () => {
  const a = input("a", "float32", ["B", 4, "H", "W"]);
  const b = input("b", "float32", [4, 1, 1]);
  assert.deepEqual(g.add(a, b).shape, ["B", 4, "H", "W"]);
  assert.throws(() => g.add(a, input("c", "float32", ["N", 4, 1, 1])), /cannot broadcast dim B with N/);
});
