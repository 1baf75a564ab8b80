/**
 * The four rules every op has: shape/dtype inference, ONNX lowering, a plain-TS reference
 * evaluator and a vector–Jacobian product. The table in rules/index.ts is typed
 * `{ [K in Op]: Rule<K> }`, so an op missing a rule fails to compile.
 */
import type { DType } from "./dtype.js";
import type { Op, OpAttrs } from "./op.js";
import type { Dim, Shape } from "./shape.js";
import type { Node, Tensor } from "./tensor.js";

/** Dtype and (possibly symbolic) shape of a tensor. */
export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/** A concrete value in the reference evaluator: every dtype held as float64 numbers. */
export interface Value {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

/** Attribute value of a raw ONNX node. */
/** A bare number is written as INT when it is an integer; `{ float }` forces FLOAT (e.g. an epsilon of exactly 1). */
export type OnnxAttrValue = number | string | readonly number[] | { readonly floats: readonly number[] } | { readonly float: number };

/** What a lowering rule may do while writing ONNX nodes. */
export interface LowerCtx {
  /**
   * Appends an ONNX node; ints are written as INT(S) and `{floats}` / non-integers as FLOAT(S).
   * `domain` names a non-standard operator set (e.g. "com.microsoft"), imported at version 1.
   */
  emit(opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: Record<string, OnnxAttrValue>, domain?: string): void;
  /** Name of an INT64 1-D constant holding `values`. */
  int64(values: readonly number[]): string;
  /** Name of a FLOAT 1-D constant holding `values` (e.g. Resize scales). */
  float32(values: readonly number[]): string;
  /** Name of an INT64 1-D tensor holding a shape, computed at run time for symbolic dims. */
  shape(dims: readonly Dim[]): string;
  /** A fresh intermediate value name. */
  temp(hint: string): string;
}

/** Gradient contributions, one per input (undefined where an input gets none). */
export type Grads = (Tensor | undefined)[];

/** The rules of one op. */
export interface Rule<K extends Op> {
  /** Output types from input types; throws ShapeError with a plain message (the caller adds the op and tensor names). */
  infer(inputs: readonly TensorType[], attrs: OpAttrs[K]): TensorType[];
  /** Writes ONNX nodes computing `outs` from `ins` (value names, in the node's order). */
  lower(ctx: LowerCtx, node: Node<K>, ins: readonly string[], outs: readonly string[]): void;
  /** Computes outputs with plain TS, in float64; `outShapes` are the concrete output shapes. */
  evaluate(inputs: readonly Value[], attrs: OpAttrs[K], outShapes: readonly (readonly number[])[]): Float64Array[];
  /** Vector–Jacobian product: input gradients from output gradients; null = not differentiable. */
  vjp: ((node: Node<K>, gOut: readonly (Tensor | undefined)[]) => Grads) | null;
}

/** A family's part of the rule table. */
export type RuleTable<K extends Op> = { readonly [P in K]: Rule<P> };
