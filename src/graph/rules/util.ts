/** Helpers shared by the rule families: type checks, broadcasting for the evaluator, gradient reduction. */
import { ShapeError } from "../../errors.js";
import { apply1 } from "../apply.js";
import type { DType } from "../dtype.js";
import { isFloat, roundTo } from "../dtype.js";
import { Op } from "../op.js";
import type { Dim, Shape } from "../shape.js";
import { dimEq, fmtShape, numel, stridesOf } from "../shape.js";
import type { Tensor } from "../tensor.js";
import type { TensorType, Value } from "../rule.js";

/** Throws unless exactly `n` inputs (or between n and max) were given. */
export function arity(inputs: readonly TensorType[], n: number, max = n): void {
  if (inputs.length < n || inputs.length > max) {
    const want = n === max ? `${n}` : `${n} to ${max}`;
    throw new ShapeError(`expects ${want} inputs, got ${inputs.length}`);
  }
}

/** Throws unless all inputs share one dtype; returns it. */
export function sameDtype(inputs: readonly TensorType[]): DType {
  const d = inputs[0]?.dtype ?? "float32";
  for (const [i, t] of inputs.entries()) {
    if (t.dtype !== d) throw new ShapeError(`input #${i} is ${t.dtype} but input #0 is ${d}; cast one of them`);
  }
  return d;
}

/** Throws unless the dtype is a floating-point one. */
export function needFloat(t: TensorType, what = "input"): void {
  if (!isFloat(t.dtype)) throw new ShapeError(`${what} must be a float tensor, got ${t.dtype}`);
}

/** Throws unless the tensor has the given rank. */
export function needRank(t: TensorType, rank: number, what = "input"): void {
  if (t.shape.length !== rank) throw new ShapeError(`${what} must have rank ${rank}, got shape ${fmtShape(t.shape)}`);
}

/** For each flat index of `outShape`, the flat index into a tensor of `inShape` broadcast to it. */
export function broadcastMap(inShape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = numel(outShape);
  const map = new Int32Array(n);
  const rank = outShape.length;
  const inStr = stridesOf(inShape);
  const off = rank - inShape.length;
  const idx = new Array<number>(rank).fill(0);
  for (let f = 0; f < n; f++) {
    let k = 0;
    for (let a = 0; a < inShape.length; a++) if ((inShape[a] ?? 1) !== 1) k += (idx[a + off] ?? 0) * (inStr[a] ?? 0);
    map[f] = k;
    for (let a = rank - 1; a >= 0; a--) {
      const v = (idx[a] ?? 0) + 1;
      if (v < (outShape[a] ?? 1)) {
        idx[a] = v;
        break;
      }
      idx[a] = 0;
    }
  }
  return map;
}

/** Evaluates an elementwise function of broadcast inputs, rounding to `dtype`. */
export function mapElementwise(
  inputs: readonly Value[],
  outShape: readonly number[],
  dtype: DType,
  fn: (...xs: number[]) => number,
): Float64Array {
  const maps = inputs.map((v) => broadcastMap(v.shape, outShape));
  const out = new Float64Array(numel(outShape));
  const xs = new Array<number>(inputs.length).fill(0);
  for (let f = 0; f < out.length; f++) {
    for (let i = 0; i < inputs.length; i++) xs[i] = (inputs[i] as Value).data[(maps[i] as Int32Array)[f] ?? 0] ?? 0;
    out[f] = roundTo(dtype, fn(...xs));
  }
  return out;
}

/** Sums a gradient back to the shape of an operand that was broadcast (numpy rules). */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  const extra = g.rank - shape.length;
  const axes: number[] = [];
  for (let a = 0; a < g.rank; a++) {
    if (a < extra) axes.push(a);
    else if (shape[a - extra] === 1 && g.shape[a] !== 1) axes.push(a);
  }
  let r = g;
  if (axes.length > 0) r = apply1(Op.ReduceSum, [r], { axes, keepdims: true });
  if (extra > 0 || !sameShape(r.shape, shape)) r = apply1(Op.Reshape, [r], { shape: [...shape] });
  return r;
}

/** True when two shapes are certainly equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => dimEq(d, b[i] as Dim));
}

/** Rounds every element to the dtype. */
export function roundAll(d: DType, data: Float64Array): Float64Array {
  for (let i = 0; i < data.length; i++) data[i] = roundTo(d, data[i] ?? 0);
  return data;
}
