/** Shape ops: Reshape, Transpose, Concat, Split, Expand, Unsqueeze, Squeeze (Slice and Gather live in indexing.ts). */
import { ShapeError } from "../../errors.js";
import { Op } from "../op.js";
import * as g from "../ops.js";
import type { LowerCtx, RuleTable, TensorType, Value } from "../rule.js";
import type { Dim, Shape } from "../shape.js";
import { broadcastShapes, dimDivide, dimEq, dimProduct, fmtShape, normAxis, normDim, numel, stridesOf } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { INDEXING_RULES, nextIndex, zeros } from "./indexing.js";
import { arity, broadcastMap, sameDtype, unbroadcast } from "./util.js";

/** The value's data, copied (layout-only ops). */
const copy = (v: Value | undefined): Float64Array => Float64Array.from(v?.data ?? []);

/** Splits a dim into its integer coefficient and symbol part: "2*B" → [2, "B"], 5 → [5, ""]. */
function coefSyms(d: Dim): [number, string] {
  const n = normDim(d);
  if (typeof n === "number") return [n, ""];
  const m = /^(\d+)\*(.+)$/.exec(n);
  return m ? [Number(m[1]), m[2] as string] : [1, n];
}

/** Sum of dims: numbers, or multiples of one symbolic monomial (B + B = 2*B); undefined otherwise. */
function dimSum(dims: readonly Dim[]): Dim | undefined {
  let coef = 0;
  let syms: string | undefined;
  for (const d of dims) {
    const [c, s] = coefSyms(d);
    if (syms !== undefined && s !== syms) return undefined;
    syms = s;
    coef += c;
  }
  return syms === undefined || syms === "" ? coef : normDim(`${coef}*${syms}`);
}

function checkDims(shape: readonly Dim[], allowMinusOne: boolean): void {
  for (const d of shape) {
    if (typeof d === "string") normDim(d);
    else if (!Number.isInteger(d) || d < (allowMinusOne ? -1 : 0)) throw new ShapeError(`target shape ${fmtShape(shape)} has a bad dim ${d}`);
  }
}

function inferReshape(inputs: readonly TensorType[], a: { readonly shape: readonly Dim[] }): TensorType[] {
  arity(inputs, 1);
  const x = inputs[0] as TensorType;
  checkDims(a.shape, true);
  const total = dimProduct(x.shape);
  const holes = a.shape.filter((d) => d === -1).length;
  if (holes > 1) throw new ShapeError(`target shape ${fmtShape(a.shape)} has more than one -1`);
  let shape: Dim[] = [...a.shape];
  if (holes === 1) {
    const known = dimProduct(a.shape.filter((d) => d !== -1));
    const rest = known === 0 ? undefined : dimDivide(total, known);
    if (rest === undefined) {
      throw new ShapeError(`cannot reshape ${fmtShape(x.shape)} (${total} elements) to ${fmtShape(a.shape)}: ${total} is not a multiple of ${known}`);
    }
    shape = a.shape.map((d) => (d === -1 ? rest : d));
  } else if (!dimEq(total, dimProduct(a.shape))) {
    throw new ShapeError(`cannot reshape ${fmtShape(x.shape)} (${total} elements) to ${fmtShape(a.shape)} (${dimProduct(a.shape)} elements)`);
  }
  return [{ dtype: x.dtype, shape: shape.map((d) => (typeof d === "string" ? normDim(d) : d)) }];
}

function checkPerm(perm: readonly number[], rank: number): void {
  const ok = perm.length === rank && perm.every((p) => Number.isInteger(p) && p >= 0 && p < rank) && new Set(perm).size === rank;
  if (!ok) throw new ShapeError(`perm must be a permutation of 0..${rank - 1}, got [${perm.join(",")}]`);
}

function evalTranspose(x: Value, perm: readonly number[], out: readonly number[]): Float64Array {
  const st = stridesOf(x.shape);
  const res = new Float64Array(numel(out));
  const idx = new Array<number>(out.length).fill(0);
  for (let f = 0; f < res.length; f++) {
    let k = 0;
    for (let a = 0; a < out.length; a++) k += (idx[a] ?? 0) * (st[perm[a] ?? 0] ?? 0);
    res[f] = x.data[k] ?? 0;
    nextIndex(idx, out);
  }
  return res;
}

function inferConcat(inputs: readonly TensorType[], a: { readonly axis: number }): TensorType[] {
  if (inputs.length === 0) throw new ShapeError("expects at least 1 input, got 0");
  const dtype = sameDtype(inputs);
  const first = inputs[0] as TensorType;
  const ax = normAxis(a.axis, first.shape.length);
  for (const [i, t] of inputs.entries()) {
    const ok = t.shape.length === first.shape.length && t.shape.every((d, k) => k === ax || dimEq(d, first.shape[k] as Dim));
    if (!ok) throw new ShapeError(`input #${i} ${fmtShape(t.shape)} must match input #0 ${fmtShape(first.shape)} on every axis but ${ax}`);
  }
  const along = inputs.map((t) => t.shape[ax] as Dim);
  const sum = dimSum(along);
  if (sum === undefined) throw new ShapeError(`cannot add dims ${along.join(" + ")} along axis ${ax}: they must be numbers or multiples of one symbol`);
  return [{ dtype, shape: first.shape.map((d, k) => (k === ax ? sum : d)) }];
}

/** Sizes of the dims before and after `axis`: concat and split move blocks of (size along axis)·inner values. */
function blocks(shape: readonly number[], axis: number): [number, number] {
  return [numel(shape.slice(0, axis)), numel(shape.slice(axis + 1))];
}

function evalConcat(vs: readonly Value[], axis: number, out: readonly number[]): Float64Array {
  const ax = normAxis(axis, out.length);
  const [outer, inner] = blocks(out, ax);
  const res = new Float64Array(numel(out));
  let f = 0;
  for (let o = 0; o < outer; o++) {
    for (const v of vs) {
      const len = (v.shape[ax] ?? 0) * inner;
      res.set(v.data.subarray(o * len, (o + 1) * len), f);
      f += len;
    }
  }
  return res;
}

/** Concat's gradient: slices of gy; symbolic parts (c_i·S) are sliced on a [Σc, S] view of the axis. */
function concatGrad(n: { inputs: readonly Tensor[]; attrs: { readonly axis: number } }, gy: Tensor): Tensor[] {
  const ax = normAxis(n.attrs.axis, gy.rank);
  const parts = n.inputs.map((t) => coefSyms(t.shape[ax] as Dim));
  const syms = parts[0]?.[1] ?? "";
  const total = parts.reduce((s, [c]) => s + c, 0);
  const view = syms === "" ? gy : g.reshape(gy, [...gy.shape.slice(0, ax), total, syms, ...gy.shape.slice(ax + 1)]);
  let off = 0;
  return n.inputs.map((x, i) => {
    const c = parts[i]?.[0] ?? 0;
    const s = g.slice(view, [ax], [off], [off + c]);
    off += c;
    return syms === "" ? s : g.reshape(s, x.shape);
  });
}

/**
 * Most outputs one ONNX Split node gets. onnxruntime's WebGPU provider binds each output as a
 * storage buffer and fails on a shader with more than the device allows (12 on some Vulkan
 * drivers); the optimizer's one Split over all parameters has hundreds of outputs.
 */
const MAX_SPLIT_OUTPUTS = 8;

/** Writes a Split as a tree of Splits of at most MAX_SPLIT_OUTPUTS outputs each (one node when that suffices). */
function emitSplit(ctx: LowerCtx, x: string, sizes: readonly number[], outs: readonly string[], axis: number): void {
  if (outs.length <= MAX_SPLIT_OUTPUTS) {
    ctx.emit("Split", [x, ctx.int64(sizes)], outs, { axis });
    return;
  }
  const per = Math.ceil(outs.length / MAX_SPLIT_OUTPUTS);
  const groups: { sizes: number[]; outs: string[] }[] = [];
  for (let i = 0; i < outs.length; i += per) groups.push({ sizes: sizes.slice(i, i + per), outs: outs.slice(i, i + per) });
  const names = groups.map((gr) => (gr.outs.length === 1 ? (gr.outs[0] as string) : ctx.temp("split")));
  ctx.emit("Split", [x, ctx.int64(groups.map((gr) => gr.sizes.reduce((a, b) => a + b, 0)))], names, { axis });
  groups.forEach((gr, i) => {
    if (gr.outs.length > 1) emitSplit(ctx, names[i] as string, gr.sizes, gr.outs, axis);
  });
}

function inferSplit(inputs: readonly TensorType[], a: { readonly axis: number; readonly sizes: readonly number[] }): TensorType[] {
  arity(inputs, 1);
  const x = inputs[0] as TensorType;
  const ax = normAxis(a.axis, x.shape.length);
  const d = x.shape[ax] as Dim;
  if (a.sizes.length === 0 || a.sizes.some((s) => !Number.isInteger(s) || s < 1)) {
    throw new ShapeError(`sizes must be positive integers, got [${a.sizes.join(",")}]`);
  }
  const sum = a.sizes.reduce((s, v) => s + v, 0);
  if (d !== sum) {
    const hint = typeof d === "string" ? "; a symbolic dim cannot be split: reshape it first" : "";
    throw new ShapeError(`sizes [${a.sizes.join(",")}] add up to ${sum} but axis ${ax} has size ${d}${hint}`);
  }
  return a.sizes.map((s) => ({ dtype: x.dtype, shape: x.shape.map((e, k) => (k === ax ? s : e)) }));
}

function evalSplit(x: Value, axis: number, sizes: readonly number[]): Float64Array[] {
  const ax = normAxis(axis, x.shape.length);
  const [outer, inner] = blocks(x.shape, ax);
  const res = sizes.map((s) => new Float64Array(outer * s * inner));
  let f = 0;
  for (let o = 0; o < outer; o++) {
    for (const [i, s] of sizes.entries()) {
      (res[i] as Float64Array).set(x.data.subarray(f, f + s * inner), o * s * inner);
      f += s * inner;
    }
  }
  return res;
}

function inferSqueeze(inputs: readonly TensorType[], a: { readonly axes: readonly number[] }): TensorType[] {
  arity(inputs, 1);
  const x = inputs[0] as TensorType;
  const axes = squeezeAxes(x.shape, a.axes);
  return [{ dtype: x.dtype, shape: x.shape.filter((_, k) => !axes.includes(k)) }];
}

/** Normalized squeeze axes; no axes means every dim that is certainly 1. */
function squeezeAxes(shape: Shape, axes: readonly number[]): number[] {
  if (axes.length === 0) return shape.flatMap((d, k) => (d === 1 ? [k] : []));
  const ax = axes.map((a) => normAxis(a, shape.length));
  if (new Set(ax).size !== ax.length) throw new ShapeError(`axes must not repeat, got [${axes.join(",")}]`);
  for (const k of ax) if (shape[k] !== 1) throw new ShapeError(`axis ${k} has size ${shape[k]}, not 1, so it cannot be squeezed`);
  return ax;
}

/** Normalized unsqueeze axes (positions in the output). */
function unsqueezeAxes(rank: number, axes: readonly number[]): number[] {
  const ax = axes.map((a) => normAxis(a, rank + axes.length));
  if (new Set(ax).size !== ax.length) throw new ShapeError(`axes must not repeat, got [${axes.join(",")}]`);
  return ax;
}

function inferUnsqueeze(inputs: readonly TensorType[], a: { readonly axes: readonly number[] }): TensorType[] {
  arity(inputs, 1);
  const x = inputs[0] as TensorType;
  const ax = unsqueezeAxes(x.shape.length, a.axes);
  const rest = [...x.shape];
  const shape = Array.from({ length: x.shape.length + ax.length }, (_, k) => (ax.includes(k) ? 1 : (rest.shift() as Dim)));
  return [{ dtype: x.dtype, shape }];
}

/** VJP of layout-only ops: reshape the gradient back to the input's shape. */
const reshapeBack = (n: { inputs: readonly Tensor[] }, [gy]: readonly (Tensor | undefined)[]): (Tensor | undefined)[] => [
  gy === undefined ? undefined : g.reshape(gy, (n.inputs[0] as Tensor).shape),
];

type ShapeOnly = Op.Reshape | Op.Transpose | Op.Concat | Op.Split | Op.Expand | Op.Unsqueeze | Op.Squeeze;

const LAYOUT: RuleTable<ShapeOnly> = {
  [Op.Reshape]: {
    infer: inferReshape,
    lower: (ctx, n, ins, outs) => {
      const shape = (n.outputs[0] as Tensor).shape;
      // allowzero: a literal 0 means an empty dim, not "copy the input's dim".
      ctx.emit("Reshape", [ins[0] as string, ctx.shape(shape)], outs, shape.includes(0) ? { allowzero: 1 } : {});
    },
    evaluate: ([x]) => [copy(x)],
    vjp: reshapeBack,
  },
  [Op.Transpose]: {
    infer: (inputs, a) => {
      arity(inputs, 1);
      const x = inputs[0] as TensorType;
      checkPerm(a.perm, x.shape.length);
      return [{ dtype: x.dtype, shape: a.perm.map((p) => x.shape[p] as Dim) }];
    },
    lower: (ctx, n, ins, outs) => ctx.emit("Transpose", ins, outs, { perm: n.attrs.perm }),
    evaluate: ([x], a, [out]) => [evalTranspose(x as Value, a.perm, out ?? [])],
    vjp: (n, [gy]) => {
      if (gy === undefined) return [undefined];
      const inv = new Array<number>(n.attrs.perm.length).fill(0);
      n.attrs.perm.forEach((p, i) => (inv[p] = i));
      return [g.transpose(gy, inv)];
    },
  },
  [Op.Concat]: {
    infer: inferConcat,
    lower: (ctx, n, ins, outs) => ctx.emit("Concat", ins, outs, { axis: normAxis(n.attrs.axis, (n.inputs[0] as Tensor).rank) }),
    evaluate: (vs, a, [out]) => [evalConcat(vs, a.axis, out ?? [])],
    vjp: (n, [gy]) => (gy === undefined ? n.inputs.map(() => undefined) : concatGrad(n, gy)),
  },
  [Op.Split]: {
    infer: inferSplit,
    lower: (ctx, n, ins, outs) => {
      const axis = normAxis(n.attrs.axis, (n.inputs[0] as Tensor).rank);
      emitSplit(ctx, ins[0] as string, n.attrs.sizes, outs, axis);
    },
    evaluate: ([x], a) => evalSplit(x as Value, a.axis, a.sizes),
    vjp: (n, gs) => {
      if (gs.every((t) => t === undefined)) return [undefined];
      const full = n.outputs.map((o, i) => gs[i] ?? zeros(o.shape, o.dtype));
      return [full.length === 1 ? full[0] : g.concat(full, n.attrs.axis)];
    },
  },
  [Op.Expand]: {
    infer: (inputs, a) => {
      arity(inputs, 1);
      const x = inputs[0] as TensorType;
      checkDims(a.shape, false);
      return [{ dtype: x.dtype, shape: broadcastShapes([x.shape, a.shape]) }];
    },
    lower: (ctx, n, ins, outs) => ctx.emit("Expand", [ins[0] as string, ctx.shape((n.outputs[0] as Tensor).shape)], outs),
    evaluate: ([x], _a, [out]) => {
      const map = broadcastMap((x as Value).shape, out ?? []);
      return [Float64Array.from(map, (k) => (x as Value).data[k] ?? 0)];
    },
    vjp: (n, [gy]) => [gy === undefined ? undefined : unbroadcast(gy, (n.inputs[0] as Tensor).shape)],
  },
  [Op.Unsqueeze]: {
    infer: inferUnsqueeze,
    lower: (ctx, n, ins, outs) => {
      const axes = unsqueezeAxes((n.inputs[0] as Tensor).rank, n.attrs.axes);
      ctx.emit("Unsqueeze", [ins[0] as string, ctx.int64(axes)], outs);
    },
    evaluate: ([x]) => [copy(x)],
    vjp: reshapeBack,
  },
  [Op.Squeeze]: {
    infer: inferSqueeze,
    lower: (ctx, n, ins, outs) => {
      const axes = squeezeAxes((n.inputs[0] as Tensor).shape, n.attrs.axes);
      if (axes.length === 0) ctx.emit("Identity", ins, outs);
      else ctx.emit("Squeeze", [ins[0] as string, ctx.int64(axes)], outs);
    },
    evaluate: ([x]) => [copy(x)],
    vjp: reshapeBack,
  },
};

/** Rules of the shape ops: layout changes, joins and splits, broadcasting, slicing and gathering. */
export const SHAPE_RULES: RuleTable<ShapeOnly | Op.Slice | Op.Gather> = { ...LAYOUT, ...INDEXING_RULES };
