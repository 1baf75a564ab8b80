/** The closed op set of the graph IR: each op maps onto one ONNX op (opset 21). */
import type { DType } from "./dtype.js";
import type { Dim } from "./shape.js";

/** Every op the IR knows. Adding one means adding its four rules (see rule.ts). */
export enum Op {
  // elementwise binary (numpy broadcasting)
  Add = "Add",
  Sub = "Sub",
  Mul = "Mul",
  Div = "Div",
  Pow = "Pow",
  Max = "Max",
  Min = "Min",
  // comparisons → bool
  Equal = "Equal",
  Greater = "Greater",
  Less = "Less",
  // elementwise unary
  Sqrt = "Sqrt",
  Exp = "Exp",
  Log = "Log",
  Neg = "Neg",
  Abs = "Abs",
  Tanh = "Tanh",
  Sigmoid = "Sigmoid",
  Erf = "Erf",
  Relu = "Relu",
  Sin = "Sin",
  Cos = "Cos",
  Gelu = "Gelu",
  Where = "Where",
  Cast = "Cast",
  // linear algebra and convolution
  MatMul = "MatMul",
  Conv = "Conv",
  ConvTranspose = "ConvTranspose",
  Resize = "Resize",
  // shape
  Reshape = "Reshape",
  Transpose = "Transpose",
  Concat = "Concat",
  Slice = "Slice",
  Split = "Split",
  Expand = "Expand",
  Unsqueeze = "Unsqueeze",
  Squeeze = "Squeeze",
  Gather = "Gather",
  // reductions and normalization
  ReduceSum = "ReduceSum",
  ReduceMean = "ReduceMean",
  ReduceMax = "ReduceMax",
  Softmax = "Softmax",
  LayerNormalization = "LayerNormalization",
  GroupNormalization = "GroupNormalization",
  // fused kernels (VJPs in primitive ops)
  MultiHeadAttention = "MultiHeadAttention",
}

type NoAttrs = Record<never, never>;

/** Attributes of 2-D convolutions; pads are [top, left, bottom, right] as ONNX has them. */
export interface ConvAttrs {
  readonly strides: readonly [number, number];
  readonly pads: readonly [number, number, number, number];
  readonly dilations: readonly [number, number];
  readonly group: number;
}

/** Attributes of each op. */
export interface OpAttrs {
  [Op.Add]: NoAttrs;
  [Op.Sub]: NoAttrs;
  [Op.Mul]: NoAttrs;
  [Op.Div]: NoAttrs;
  [Op.Pow]: NoAttrs;
  [Op.Max]: NoAttrs;
  [Op.Min]: NoAttrs;
  [Op.Equal]: NoAttrs;
  [Op.Greater]: NoAttrs;
  [Op.Less]: NoAttrs;
  [Op.Sqrt]: NoAttrs;
  [Op.Exp]: NoAttrs;
  [Op.Log]: NoAttrs;
  [Op.Neg]: NoAttrs;
  [Op.Abs]: NoAttrs;
  [Op.Tanh]: NoAttrs;
  [Op.Sigmoid]: NoAttrs;
  [Op.Erf]: NoAttrs;
  [Op.Relu]: NoAttrs;
  [Op.Sin]: NoAttrs;
  [Op.Cos]: NoAttrs;
  /** "none" is the exact erf form; "tanh" the approximation. */
  [Op.Gelu]: { readonly approximate: "none" | "tanh" };
  /** (cond: bool, x, y) → cond ? x : y, broadcasting. */
  [Op.Where]: NoAttrs;
  [Op.Cast]: { readonly to: DType };
  /** numpy matmul: batched, broadcasting leading dims; rank ≥ 2 on both sides. */
  [Op.MatMul]: NoAttrs;
  /** (x [N,C,H,W], w [O,C/group,kh,kw], bias? [O]). */
  [Op.Conv]: ConvAttrs;
  /** (x [N,C,H,W], w [C,O/group,kh,kw], bias? [O]). */
  [Op.ConvTranspose]: ConvAttrs & { readonly outputPadding: readonly [number, number] };
  /** Nearest-neighbour resize of the last two dims by integer-ratio scales (asymmetric, floor): out[i] = in[floor(i / scale)]. */
  [Op.Resize]: { readonly scales: readonly [number, number] };
  /** Target shape; at most one -1, inferred. */
  [Op.Reshape]: { readonly shape: readonly Dim[] };
  [Op.Transpose]: { readonly perm: readonly number[] };
  [Op.Concat]: { readonly axis: number };
  /** Python-style slices per axis, positive steps; ends clamp to the dim. */
  [Op.Slice]: {
    readonly axes: readonly number[];
    readonly starts: readonly number[];
    readonly ends: readonly number[];
    readonly steps: readonly number[];
  };
  [Op.Split]: { readonly axis: number; readonly sizes: readonly number[] };
  [Op.Expand]: { readonly shape: readonly Dim[] };
  [Op.Unsqueeze]: { readonly axes: readonly number[] };
  [Op.Squeeze]: { readonly axes: readonly number[] };
  /** (data, indices: int64) → data taken along axis. */
  [Op.Gather]: { readonly axis: number };
  [Op.ReduceSum]: { readonly axes: readonly number[]; readonly keepdims: boolean };
  [Op.ReduceMean]: { readonly axes: readonly number[]; readonly keepdims: boolean };
  [Op.ReduceMax]: { readonly axes: readonly number[]; readonly keepdims: boolean };
  [Op.Softmax]: { readonly axis: number };
  /** (x, scale, bias?) normalized over dims axis..end. */
  [Op.LayerNormalization]: { readonly axis: number; readonly epsilon: number };
  /** (x [N,C,...], scale [C], bias [C]) normalized over groups of C/numGroups channels. */
  [Op.GroupNormalization]: { readonly numGroups: number; readonly epsilon: number };
  /**
   * (q [B, Lq, H·d], k [B, Lk, H·d], v [B, Lk, H·dv]) → [B, Lq, H·dv]: softmax(q·kᵀ·scale)·v per
   * head, without a mask; onnxruntime's com.microsoft MultiHeadAttention.
   */
  [Op.MultiHeadAttention]: { readonly numHeads: number; readonly scale: number };
}
