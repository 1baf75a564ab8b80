/** Builder functions: the public way to make graph nodes. Numbers become scalars of the other operand's dtype. */
import { ShapeError } from "../errors.js";
import { apply, apply1, scalar } from "./apply.js";
import type { DType } from "./dtype.js";
import { Op } from "./op.js";
import type { Dim } from "./shape.js";
import { normAxis } from "./shape.js";
import type { Tensor } from "./tensor.js";

/** A tensor or a number (a scalar of the other operand's dtype). */
export type TensorLike = Tensor | number;

function pair(a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  if (typeof a === "number" && typeof b === "number") throw new ShapeError("binary op on two numbers: make one a tensor");
  const ta = typeof a === "number" ? scalar(a, (b as Tensor).dtype) : a;
  const tb = typeof b === "number" ? scalar(b, ta.dtype) : b;
  return [ta, tb];
}

/** a + b */
export const add = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Add, pair(a, b), {});
/** a − b */
export const sub = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Sub, pair(a, b), {});
/** a · b (elementwise) */
export const mul = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Mul, pair(a, b), {});
/** a / b */
export const div = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Div, pair(a, b), {});
/** a ^ b */
export const pow = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Pow, pair(a, b), {});
/** elementwise max(a, b) */
export const maximum = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Max, pair(a, b), {});
/** elementwise min(a, b) */
export const minimum = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Min, pair(a, b), {});
/** a == b → bool */
export const equal = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Equal, pair(a, b), {});
/** a > b → bool */
export const greater = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Greater, pair(a, b), {});
/** a < b → bool */
export const less = (a: TensorLike, b: TensorLike): Tensor => apply1(Op.Less, pair(a, b), {});

/** √x */
export const sqrt = (x: Tensor): Tensor => apply1(Op.Sqrt, [x], {});
/** eˣ */
export const exp = (x: Tensor): Tensor => apply1(Op.Exp, [x], {});
/** ln x */
export const log = (x: Tensor): Tensor => apply1(Op.Log, [x], {});
/** −x */
export const neg = (x: Tensor): Tensor => apply1(Op.Neg, [x], {});
/** |x| */
export const abs = (x: Tensor): Tensor => apply1(Op.Abs, [x], {});
/** tanh x */
export const tanh = (x: Tensor): Tensor => apply1(Op.Tanh, [x], {});
/** 1 / (1 + e⁻ˣ) */
export const sigmoid = (x: Tensor): Tensor => apply1(Op.Sigmoid, [x], {});
/** erf x */
export const erf = (x: Tensor): Tensor => apply1(Op.Erf, [x], {});
/** max(x, 0) */
export const relu = (x: Tensor): Tensor => apply1(Op.Relu, [x], {});
/** sin x */
export const sin = (x: Tensor): Tensor => apply1(Op.Sin, [x], {});
/** cos x */
export const cos = (x: Tensor): Tensor => apply1(Op.Cos, [x], {});
/** GELU, exact (erf) or tanh-approximated. */
export const gelu = (x: Tensor, approximate: "none" | "tanh" = "none"): Tensor => apply1(Op.Gelu, [x], { approximate });
/** cond ? x : y */
export function where(cond: Tensor, x: TensorLike, y: TensorLike): Tensor {
  const [tx, ty] = pair(x, y);
  return apply1(Op.Where, [cond, tx, ty], {});
}
/** Converts the element type. */
export const cast = (x: Tensor, to: DType): Tensor => (x.dtype === to ? x : apply1(Op.Cast, [x], { to }));

/** Batched matrix product (numpy matmul semantics, rank ≥ 2). */
export const matmul = (a: Tensor, b: Tensor): Tensor => apply1(Op.MatMul, [a, b], {});

/** Options of 2-D convolutions; `padding` is one number, symmetric [ph, pw], or [top, left, bottom, right]. */
export interface Conv2dOptions {
  readonly stride?: number | readonly [number, number];
  readonly padding?: number | readonly [number, number] | readonly [number, number, number, number];
  readonly dilation?: number | readonly [number, number];
  readonly groups?: number;
  readonly label?: string;
}

function two(v: number | readonly [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === "number" ? [v, v] : [v[0], v[1]];
}

/** ONNX pads [top, left, bottom, right] from a padding option. */
function fourPads(p: Conv2dOptions["padding"]): readonly [number, number, number, number] {
  if (p !== undefined && typeof p !== "number" && p.length === 4) return p;
  const [ph, pw] = two(p as number | readonly [number, number] | undefined, 0);
  return [ph, pw, ph, pw];
}

function convAttrs(o: Conv2dOptions) {
  return {
    strides: two(o.stride, 1),
    pads: fourPads(o.padding),
    dilations: two(o.dilation, 1),
    group: o.groups ?? 1,
  };
}

/** 2-D convolution: x [N,C,H,W], w [O,C/groups,kh,kw], bias [O]. */
export function conv2d(x: Tensor, w: Tensor, bias?: Tensor, o: Conv2dOptions = {}): Tensor {
  return apply1(Op.Conv, bias ? [x, w, bias] : [x, w], convAttrs(o), o.label);
}

/** 2-D transposed convolution: x [N,C,H,W], w [C,O/groups,kh,kw], bias [O]. */
export function convTranspose2d(
  x: Tensor,
  w: Tensor,
  bias?: Tensor,
  o: Conv2dOptions & { readonly outputPadding?: number | readonly [number, number] } = {},
): Tensor {
  const attrs = { ...convAttrs(o), outputPadding: two(o.outputPadding, 0) };
  return apply1(Op.ConvTranspose, bias ? [x, w, bias] : [x, w], attrs, o.label);
}

/** Nearest-neighbour resize of the last two dims (out[i] = in[floor(i / scale)]). */
export function resizeNearest(x: Tensor, scale: number | readonly [number, number]): Tensor {
  return apply1(Op.Resize, [x], { scales: two(scale, 1) });
}

/** Reshapes; one entry may be −1 (inferred). */
export const reshape = (x: Tensor, shape: readonly Dim[]): Tensor => apply1(Op.Reshape, [x], { shape });
/** Permutes dims. */
export const transpose = (x: Tensor, perm: readonly number[]): Tensor => apply1(Op.Transpose, [x], { perm });
/** Joins tensors along an axis. */
export const concat = (xs: readonly Tensor[], axis: number): Tensor => apply1(Op.Concat, xs, { axis });

/** Slices x[start:end:step] along each listed axis (end clamps; use Infinity for "to the end"). */
export function slice(
  x: Tensor,
  axes: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
  steps?: readonly number[],
): Tensor {
  const ax = axes.map((a) => normAxis(a, x.rank));
  return apply1(Op.Slice, [x], { axes: ax, starts, ends, steps: steps ?? ax.map(() => 1) });
}

/** Splits along an axis into pieces of the given sizes. */
export const split = (x: Tensor, sizes: readonly number[], axis: number): Tensor[] =>
  apply(Op.Split, [x], { axis: normAxis(axis, x.rank), sizes });
/** Broadcasts to a shape (numpy rules). */
export const expand = (x: Tensor, shape: readonly Dim[]): Tensor => apply1(Op.Expand, [x], { shape });
/** Inserts size-1 dims at the axes of the output. */
export const unsqueeze = (x: Tensor, axes: readonly number[]): Tensor => apply1(Op.Unsqueeze, [x], { axes });
/** Removes size-1 dims. */
export const squeeze = (x: Tensor, axes: readonly number[]): Tensor => apply1(Op.Squeeze, [x], { axes });
/** Takes entries of x along an axis at int64 indices. */
export const gather = (x: Tensor, indices: Tensor, axis = 0): Tensor => apply1(Op.Gather, [x, indices], { axis });

/** Σ over axes. */
export const reduceSum = (x: Tensor, axes: readonly number[], keepdims = false): Tensor =>
  apply1(Op.ReduceSum, [x], { axes: axes.map((a) => normAxis(a, x.rank)), keepdims });
/** Mean over axes. */
export const reduceMean = (x: Tensor, axes: readonly number[], keepdims = false): Tensor =>
  apply1(Op.ReduceMean, [x], { axes: axes.map((a) => normAxis(a, x.rank)), keepdims });
/** Max over axes. */
export const reduceMax = (x: Tensor, axes: readonly number[], keepdims = false): Tensor =>
  apply1(Op.ReduceMax, [x], { axes: axes.map((a) => normAxis(a, x.rank)), keepdims });
/** Softmax along an axis. */
export const softmax = (x: Tensor, axis = -1): Tensor => apply1(Op.Softmax, [x], { axis: normAxis(axis, x.rank) });

/** Layer norm over dims axis..end: (x − μ)/√(σ² + ε) · scale + bias. */
export function layerNorm(x: Tensor, scale: Tensor, bias: Tensor | undefined, epsilon: number, axis = -1): Tensor {
  return apply1(Op.LayerNormalization, bias ? [x, scale, bias] : [x, scale], { axis: normAxis(axis, x.rank), epsilon });
}

/**
 * Multi-head attention softmax(q·kᵀ·scale)·v (Vaswani et al. 2017, eq. 1) as one fused op, no mask:
 * q [B, Lq, H·d], k [B, Lk, H·d], v [B, Lk, H·dv] → [B, Lq, H·dv]; scale defaults to 1/√d.
 */
export function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, numHeads: number, scale?: number): Tensor {
  const d = q.shape[2];
  if (typeof d !== "number" || d % numHeads !== 0) throw new ShapeError(`MultiHeadAttention: q's last dim (${String(d)}) must be a number divisible by numHeads ${numHeads}`);
  return apply1(Op.MultiHeadAttention, [q, k, v], { numHeads, scale: scale ?? 1 / Math.sqrt(d / numHeads) });
}

/** Group norm of x [N,C,...] over groups of C/numGroups channels, per-channel scale and bias [C]. */
export function groupNorm(x: Tensor, scale: Tensor, bias: Tensor, numGroups: number, epsilon: number): Tensor {
  return apply1(Op.GroupNormalization, [x, scale, bias], { numGroups, epsilon });
}
