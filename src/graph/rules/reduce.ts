/** Reductions (ReduceSum, ReduceMean, ReduceMax over listed axes) and, re-exported, the normalizations. */
import { ShapeError } from "../../errors.js";
import { Op } from "../op.js";
import * as g from "../ops.js";
import type { Rule, RuleTable, TensorType, Value } from "../rule.js";
import type { Dim } from "../shape.js";
import { dimProduct, fmtShape, numel } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { NORM_RULES } from "./norm.js";
import { arity, broadcastMap, needFloat, roundAll } from "./util.js";

type Reduce = Op.ReduceSum | Op.ReduceMean | Op.ReduceMax;

/** Output type of a reduction: checks the axes (in range, no repeats) and applies keepdims. No axes: the identity, as numpy. */
function inferReduce(inputs: readonly TensorType[], axes: readonly number[], keepdims: boolean, float: boolean): TensorType[] {
  arity(inputs, 1);
  const x = inputs[0] as TensorType;
  if (float) needFloat(x);
  else if (x.dtype === "bool") throw new ShapeError("input must be numeric, got bool; cast it first");
  const rank = x.shape.length;
  for (const [i, a] of axes.entries()) {
    if (!Number.isInteger(a) || a < 0 || a >= rank) {
      throw new ShapeError(`axis ${a} is out of range for shape ${fmtShape(x.shape)}; expected 0..${rank - 1}`);
    }
    if (axes.indexOf(a) !== i) throw new ShapeError(`axis ${a} is listed twice in axes [${axes.join(",")}]`);
  }
  const shape: Dim[] = [];
  for (const [a, d] of x.shape.entries()) {
    if (!axes.includes(a)) shape.push(d);
    else if (keepdims) shape.push(1);
  }
  return [{ dtype: x.dtype, shape }];
}

/**
 * Folds every element of `x` into its output cell: `step(acc, v)` from `init`, then `finish(acc, count)`.
 * Output cells are in row-major order, which is the same with or without keepdims.
 */
function evalReduce(
  x: Value,
  axes: readonly number[],
  init: number,
  step: (acc: number, v: number) => number,
  finish: (acc: number, count: number) => number = (acc) => acc,
): Float64Array {
  const kept = x.shape.map((d, a) => (axes.includes(a) ? 1 : d));
  const cell = broadcastMap(kept, x.shape); // input flat index → output flat index
  const out = new Float64Array(numel(kept)).fill(init);
  for (let i = 0; i < x.data.length; i++) {
    const o = cell[i] ?? 0;
    out[o] = step(out[o] ?? init, x.data[i] ?? 0);
  }
  const count = x.data.length / Math.max(out.length, 1);
  for (let o = 0; o < out.length; o++) out[o] = finish(out[o] ?? init, count);
  return roundAll(x.dtype, out);
}

/** The output gradient with the reduced axes put back as size-1 dims (a no-op under keepdims). */
function keptGrad(gy: Tensor, axes: readonly number[], keepdims: boolean): Tensor {
  return keepdims ? gy : g.unsqueeze(gy, [...axes].sort((a, b) => a - b));
}

/** The number of elements reduced into each output cell; must be concrete for the VJP. */
function reducedCount(x: Tensor, axes: readonly number[]): number {
  const n = dimProduct(axes.map((a) => x.shape[a] as Dim));
  if (typeof n !== "number") {
    throw new ShapeError(
      `ReduceMean VJP: reduced dims of ${x.label} ${x.typeString} are symbolic (${n}); training graphs need concrete shapes`,
    );
  }
  return n;
}

function reduceRule<K extends Reduce>(
  op: K,
  float: boolean,
  evaluate: (x: Value, axes: readonly number[]) => Float64Array,
  vjp: (x: Tensor, y: Tensor, gyKept: Tensor, axes: readonly number[], keepdims: boolean) => Tensor,
): Rule<K> {
  return {
    infer: (inputs, a) => inferReduce(inputs, a.axes, a.keepdims, float),
    // ONNX reads an empty axes input as "reduce everything", so no axes is lowered as Identity.
    lower: (ctx, n, ins, outs) =>
      n.attrs.axes.length === 0
        ? ctx.emit("Identity", ins, outs)
        : ctx.emit(op, [...ins, ctx.int64(n.attrs.axes)], outs, { keepdims: n.attrs.keepdims ? 1 : 0 }),
    evaluate: ([x], a) => [evaluate(x as Value, a.axes)],
    vjp: (n, [gy]) => {
      if (gy === undefined) return [undefined];
      const { axes, keepdims } = n.attrs;
      if (axes.length === 0) return [gy];
      const x = n.inputs[0] as Tensor;
      return [vjp(x, n.outputs[0] as Tensor, keptGrad(gy, axes, keepdims), axes, keepdims)];
    },
  };
}

const REDUCE: RuleTable<Reduce> = {
  [Op.ReduceSum]: reduceRule(
    Op.ReduceSum,
    false,
    (x, axes) => evalReduce(x, axes, 0, (acc, v) => acc + v),
    (x, _y, gy) => g.expand(gy, x.shape),
  ),
  [Op.ReduceMean]: reduceRule(
    Op.ReduceMean,
    true,
    (x, axes) => evalReduce(x, axes, 0, (acc, v) => acc + v, (acc, count) => acc / count),
    (x, _y, gy, axes) => g.expand(g.div(gy, reducedCount(x, axes)), x.shape),
  ),
  // The gradient is shared equally among tied maxima, so it stays exact when values repeat.
  [Op.ReduceMax]: reduceRule(
    Op.ReduceMax,
    false,
    (x, axes) => evalReduce(x, axes, -Infinity, (acc, v) => (Number.isNaN(v) || v > acc ? v : acc)),
    (x, y, gy, axes, keepdims) => {
      const isMax = g.cast(g.equal(x, keptGrad(y, axes, keepdims)), x.dtype); // [x.shape], 1 at maxima
      const ties = g.reduceSum(isMax, axes, true);
      return g.mul(isMax, g.div(gy, ties));
    },
  ),
};

/** Rules of the reductions and normalizations. */
export const REDUCE_RULES: RuleTable<Reduce | Op.Softmax | Op.LayerNormalization | Op.GroupNormalization> = {
  ...REDUCE,
  ...NORM_RULES,
};
