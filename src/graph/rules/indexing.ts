/** Indexing ops: Slice (Python-style, positive steps) and Gather, with helpers the shape family shares. */
import { ShapeError } from "../../errors.js";
import { constant, scalar } from "../apply.js";
import type { DType } from "../dtype.js";
import { isFloat } from "../dtype.js";
import { Op } from "../op.js";
import * as g from "../ops.js";
import type { RuleTable, TensorType } from "../rule.js";
import type { Dim, Shape } from "../shape.js";
import { dimDivide, dimProduct, normAxis, numel, stridesOf } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { arity } from "./util.js";

/** Zeros of a (possibly symbolic) shape: a scalar 0 expanded, so symbolic dims resolve at run time. */
export function zeros(shape: Shape, dtype: DType): Tensor {
  return g.expand(scalar(0, dtype), shape);
}

/** Advances a row-major multi-index over `shape` by one (an odometer). */
export function nextIndex(idx: number[], shape: readonly number[]): void {
  for (let a = shape.length - 1; a >= 0; a--) {
    const v = (idx[a] ?? 0) + 1;
    if (v < (shape[a] ?? 1)) {
      idx[a] = v;
      return;
    }
    idx[a] = 0;
  }
}

/** Start and length of x[start:end:step] on a dim of size n (Python semantics, step > 0). */
function sliceRange(n: number, start: number, end: number, step: number): [number, number] {
  const clamp = (v: number): number => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = clamp(start);
  return [s, Math.max(0, Math.ceil((clamp(end) - s) / step))];
}

/** Length of a slice of dim d; a symbolic dim must be taken whole, with a step that divides it. */
function sliceDim(d: Dim, start: number, end: number, step: number): Dim {
  if (typeof d === "number") return sliceRange(d, start, end, step)[1];
  const len = start === 0 && end === Infinity ? dimDivide(d, step) : undefined;
  if (len === undefined) {
    throw new ShapeError(
      `a slice of symbolic dim ${d} must take the whole dim (start 0, end Infinity) with a step dividing it; got ${start}:${end}:${step}`,
    );
  }
  return len;
}

type SliceAttrs = { readonly axes: readonly number[]; readonly starts: readonly number[]; readonly ends: readonly number[]; readonly steps: readonly number[] };

/** Checks slice attributes and returns the axes normalized against `rank`. */
function checkSlice(a: SliceAttrs, rank: number): number[] {
  const k = a.axes.length;
  if (a.starts.length !== k || a.ends.length !== k || a.steps.length !== k) {
    throw new ShapeError(`axes, starts, ends and steps must have one entry per axis; got ${k}, ${a.starts.length}, ${a.ends.length}, ${a.steps.length}`);
  }
  const axes = a.axes.map((x) => normAxis(x, rank));
  if (new Set(axes).size !== k) throw new ShapeError(`axes must not repeat, got [${a.axes.join(",")}]`);
  a.steps.forEach((s) => {
    if (!Number.isInteger(s) || s <= 0) throw new ShapeError(`steps must be positive integers, got ${s}; reverse with a Gather`);
  });
  a.starts.forEach((s) => {
    if (!Number.isInteger(s)) throw new ShapeError(`starts must be integers, got ${s}`);
  });
  a.ends.forEach((e) => {
    if (!Number.isInteger(e) && e !== Infinity) throw new ShapeError(`ends must be integers or Infinity, got ${e}`);
  });
  return axes;
}

function inferSlice(inputs: readonly TensorType[], a: SliceAttrs): TensorType[] {
  arity(inputs, 1);
  const x = inputs[0] as TensorType;
  const shape = [...x.shape];
  checkSlice(a, x.shape.length).forEach((ax, i) => {
    shape[ax] = sliceDim(x.shape[ax] as Dim, a.starts[i] ?? 0, a.ends[i] ?? 0, a.steps[i] ?? 1);
  });
  return [{ dtype: x.dtype, shape }];
}

function evalSlice(x: { shape: readonly number[]; data: Float64Array }, a: SliceAttrs, out: readonly number[]): Float64Array {
  const rank = x.shape.length;
  const starts = new Array<number>(rank).fill(0);
  const steps = new Array<number>(rank).fill(1);
  checkSlice(a, rank).forEach((ax, i) => {
    starts[ax] = sliceRange(x.shape[ax] ?? 0, a.starts[i] ?? 0, a.ends[i] ?? 0, a.steps[i] ?? 1)[0];
    steps[ax] = a.steps[i] ?? 1;
  });
  const st = stridesOf(x.shape);
  const res = new Float64Array(numel(out));
  const idx = new Array<number>(rank).fill(0);
  for (let f = 0; f < res.length; f++) {
    let k = 0;
    for (let d = 0; d < rank; d++) k += ((starts[d] ?? 0) + (idx[d] ?? 0) * (steps[d] ?? 1)) * (st[d] ?? 0);
    res[f] = x.data[k] ?? 0;
    nextIndex(idx, out);
  }
  return res;
}

/** Gradient of one sliced axis: spreads h (len entries along `axis`) back over a dim of size n with zeros. */
function unslice(h: Tensor, axis: number, n: Dim, start: number, end: number, step: number): Tensor {
  const at = (d: Dim): Dim[] => h.shape.map((e, i) => (i === axis ? d : e));
  let s = 0;
  let len: Dim = h.shape[axis] as Dim;
  if (typeof n === "number") [s, len] = sliceRange(n, start, end, step);
  if (len === 0) return zeros(at(n), h.dtype);
  let r = h;
  if (step > 1) {
    // Interleave step−1 zeros after each entry: [.., len, 1, ..] ++ [.., len, step−1, ..] → [.., len·step, ..].
    const u = g.unsqueeze(h, [axis + 1]);
    const z = zeros(u.shape.map((e, i) => (i === axis + 1 ? step - 1 : e)), h.dtype);
    r = g.reshape(g.concat([u, z], axis + 1), at(dimProduct([len, step])));
  }
  if (typeof n !== "number") return r; // whole symbolic dim: nothing to pad
  const covered = Math.min((len as number) * step, n - s);
  if (covered < (len as number) * step) r = g.slice(r, [axis], [0], [covered]);
  const parts = [r];
  if (s > 0) parts.unshift(zeros(at(s), h.dtype));
  if (s + covered < n) parts.push(zeros(at(n - s - covered), h.dtype));
  return parts.length === 1 ? r : g.concat(parts, axis);
}

/** Gather's gradient for data: a scatter-add written as a one-hot MatMul (see GATHER's note). */
function gatherGrad(data: Tensor, indices: Tensor, axis: number, gy: Tensor): Tensor {
  const v = data.shape[axis] as Dim;
  if (typeof v !== "number") throw new ShapeError(`Gather: the gradient needs a concrete size along axis ${axis}, got ${v}`);
  const n = dimProduct(indices.shape);
  const flat = g.reshape(indices, [1, n]); // [1, N]
  const idx = g.where(g.less(flat, 0), g.add(flat, v), flat);
  const arange = constant(Array.from({ length: v }, (_, i) => i), [v, 1], indices.dtype); // [V, 1]
  const oneHot = g.cast(g.equal(arange, idx), gy.dtype); // [V, N]
  const p = dimProduct(data.shape.slice(0, axis));
  const q = dimProduct(data.shape.slice(axis + 1));
  const gd = p === 1 ? g.matmul(oneHot, g.reshape(gy, [n, q])) : g.matmul(oneHot, g.reshape(gy, [p, n, q])); // [P?, V, Q]
  return g.reshape(gd, data.shape);
}

function inferGather(inputs: readonly TensorType[], a: { readonly axis: number }): TensorType[] {
  arity(inputs, 2);
  const [x, i] = inputs as [TensorType, TensorType];
  if (i.dtype !== "int64" && i.dtype !== "int32") throw new ShapeError(`indices must be int64 (or int32), got ${i.dtype}`);
  const ax = normAxis(a.axis, x.shape.length);
  return [{ dtype: x.dtype, shape: [...x.shape.slice(0, ax), ...i.shape, ...x.shape.slice(ax + 1)] }];
}

function evalGather(x: { shape: readonly number[]; data: Float64Array }, ind: Float64Array, axis: number): Float64Array {
  const ax = normAxis(axis, x.shape.length);
  const outer = numel(x.shape.slice(0, ax));
  const v = x.shape[ax] ?? 1;
  const inner = numel(x.shape.slice(ax + 1));
  const res = new Float64Array(outer * ind.length * inner);
  let f = 0;
  for (let o = 0; o < outer; o++) {
    for (const raw of ind) {
      const j = raw < 0 ? raw + v : raw;
      if (j < 0 || j >= v) throw new ShapeError(`Gather: index ${raw} is out of range for a dim of size ${v}`);
      const base = (o * v + j) * inner;
      for (let q = 0; q < inner; q++) res[f++] = x.data[base + q] ?? 0;
    }
  }
  return res;
}

/** Rules of Slice and Gather. */
export const INDEXING_RULES: RuleTable<Op.Slice | Op.Gather> = {
  [Op.Slice]: {
    infer: inferSlice,
    lower: (ctx, n, ins, outs) => {
      const x = n.inputs[0] as Tensor;
      const axes = checkSlice(n.attrs, x.rank);
      const starts: number[] = [];
      const ends: number[] = [];
      // Concrete dims get exact bounds; a symbolic dim is taken whole (see sliceDim).
      axes.forEach((ax, i) => {
        const d = x.shape[ax] as Dim;
        const step = n.attrs.steps[i] ?? 1;
        const [s, len] = typeof d === "number" ? sliceRange(d, n.attrs.starts[i] ?? 0, n.attrs.ends[i] ?? 0, step) : [0, -1];
        starts.push(s);
        ends.push(len < 0 ? Number.MAX_SAFE_INTEGER : len === 0 ? s : s + (len - 1) * step + 1);
      });
      const inputs = [ins[0] as string, ctx.int64(starts), ctx.int64(ends), ctx.int64(axes), ctx.int64(n.attrs.steps)];
      ctx.emit("Slice", inputs, outs);
    },
    evaluate: ([x], a, [out]) => [evalSlice(x as { shape: readonly number[]; data: Float64Array }, a, out ?? [])],
    vjp: (n, [gy]) => {
      if (gy === undefined) return [undefined];
      const x = n.inputs[0] as Tensor;
      let h = gy;
      checkSlice(n.attrs, x.rank).forEach((ax, i) => {
        h = unslice(h, ax, x.shape[ax] as Dim, n.attrs.starts[i] ?? 0, n.attrs.ends[i] ?? 0, n.attrs.steps[i] ?? 1);
      });
      return [h];
    },
  },
  // The data gradient costs a [V, N] one-hot and a V·N·(other dims) MatMul (N = number of
  // indices): for a CLIP token embedding (V = 49408, N = 2·77, 768 wide) about 12 GFLOP per
  // step, acceptable for the small models we train; a ScatterElements op would be O(N·768).
  [Op.Gather]: {
    infer: inferGather,
    lower: (ctx, n, ins, outs) => ctx.emit("Gather", ins, outs, { axis: normAxis(n.attrs.axis, (n.inputs[0] as Tensor).rank) }),
    evaluate: ([x, i], a) => [evalGather(x as { shape: readonly number[]; data: Float64Array }, (i as { data: Float64Array }).data, a.axis)],
    vjp: (n, [gy]) => {
      const [x, i] = n.inputs as [Tensor, Tensor];
      if (gy === undefined || !isFloat(x.dtype)) return [undefined, undefined];
      return [gatherGrad(x, i, normAxis(n.attrs.axis, x.rank), gy), undefined];
    },
  },
};
