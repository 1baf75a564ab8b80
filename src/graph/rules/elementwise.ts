/** Elementwise ops: binary arithmetic with broadcasting, comparisons, unary maths, GELU, Where, Cast. */
import { ShapeError } from "../../errors.js";
import { ONNX_DTYPE, isFloat, roundTo } from "../dtype.js";
import { Op } from "../op.js";
import * as g from "../ops.js";
import type { Rule, RuleTable, TensorType } from "../rule.js";
import { broadcastShapes } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { erf } from "./erf.js";
import { arity, mapElementwise, needFloat, sameDtype, unbroadcast } from "./util.js";

type Binary = Op.Add | Op.Sub | Op.Mul | Op.Div | Op.Pow | Op.Max | Op.Min;
type Compare = Op.Equal | Op.Greater | Op.Less;
type Unary = Op.Sqrt | Op.Exp | Op.Log | Op.Neg | Op.Abs | Op.Tanh | Op.Sigmoid | Op.Erf | Op.Relu | Op.Sin | Op.Cos;

function inferBinary(inputs: readonly TensorType[]): TensorType[] {
  arity(inputs, 2);
  return [{ dtype: sameDtype(inputs), shape: broadcastShapes(inputs.map((t) => t.shape)) }];
}

function binary<K extends Binary>(
  op: K,
  fn: (a: number, b: number) => number,
  vjp: (a: Tensor, b: Tensor, out: Tensor, gy: Tensor) => [Tensor, Tensor],
): Rule<K> {
  return {
    infer: inferBinary,
    lower: (ctx, _n, ins, outs) => ctx.emit(op, ins, outs),
    evaluate: (v, _a, [s]) => [mapElementwise(v, s ?? [], v[0]?.dtype ?? "float32", fn)],
    vjp: (n, [gy]) => {
      const [a, b] = n.inputs as [Tensor, Tensor];
      if (gy === undefined) return [undefined, undefined];
      const [ga, gb] = vjp(a, b, n.outputs[0] as Tensor, gy);
      return [unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)];
    },
  };
}

function compare<K extends Compare>(op: K, fn: (a: number, b: number) => boolean): Rule<K> {
  return {
    infer: (inputs) => [{ dtype: "bool", shape: inferBinary(inputs)[0]?.shape ?? [] }],
    lower: (ctx, _n, ins, outs) => ctx.emit(op, ins, outs),
    evaluate: (v, _a, [s]) => [mapElementwise(v, s ?? [], "bool", (a, b) => (fn(a, b) ? 1 : 0))],
    vjp: null,
  };
}

function unary<K extends Unary>(
  op: K,
  fn: (x: number) => number,
  vjp: (x: Tensor, y: Tensor, gy: Tensor) => Tensor,
  floatOnly = true,
): Rule<K> {
  return {
    infer: (inputs) => {
      arity(inputs, 1);
      const t = inputs[0] as TensorType;
      if (floatOnly) needFloat(t);
      return [t];
    },
    lower: (ctx, _n, ins, outs) => ctx.emit(op, ins, outs),
    evaluate: (v, _a, [s]) => [mapElementwise(v, s ?? [], v[0]?.dtype ?? "float32", fn)],
    vjp: (n, [gy]) => (gy === undefined ? [undefined] : [vjp(n.inputs[0] as Tensor, n.outputs[0] as Tensor, gy)]),
  };
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const GELU_C = 0.044715;

function geluFn(approximate: "none" | "tanh"): (x: number) => number {
  if (approximate === "tanh") return (x) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_C * x * x * x)));
  return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
}

/** d/dx of GELU: exact Φ(x) + x·φ(x), or the derivative of the tanh form. */
function geluGrad(x: Tensor, approximate: "none" | "tanh"): Tensor {
  if (approximate === "tanh") {
    const x2 = g.mul(x, x);
    const t = g.tanh(g.mul(g.mul(x, g.add(g.mul(x2, GELU_C), 1)), SQRT_2_OVER_PI));
    const du = g.mul(g.add(g.mul(x2, 3 * GELU_C), 1), SQRT_2_OVER_PI);
    const left = g.mul(g.add(t, 1), 0.5);
    return g.add(left, g.mul(g.mul(g.mul(x, 0.5), g.sub(1, g.mul(t, t))), du));
  }
  const cdf = g.mul(g.add(g.erf(g.mul(x, Math.SQRT1_2)), 1), 0.5);
  const pdf = g.mul(g.exp(g.mul(g.mul(x, x), -0.5)), INV_SQRT_2PI);
  return g.add(cdf, g.mul(x, pdf));
}

const BINARY: RuleTable<Binary> = {
  [Op.Add]: binary(Op.Add, (a, b) => a + b, (_a, _b, _y, gy) => [gy, gy]),
  [Op.Sub]: binary(Op.Sub, (a, b) => a - b, (_a, _b, _y, gy) => [gy, g.neg(gy)]),
  [Op.Mul]: binary(Op.Mul, (a, b) => a * b, (a, b, _y, gy) => [g.mul(gy, b), g.mul(gy, a)]),
  [Op.Div]: binary(Op.Div, (a, b) => a / b, (_a, b, y, gy) => [g.div(gy, b), g.neg(g.div(g.mul(gy, y), b))]),
  [Op.Pow]: binary(Op.Pow, (a, b) => a ** b, (a, b, y, gy) => [
    g.mul(gy, g.mul(b, g.pow(a, g.sub(b, 1)))),
    g.mul(gy, g.mul(y, g.log(a))),
  ]),
  // Ties send the whole gradient to the first operand.
  [Op.Max]: binary(Op.Max, Math.max, (a, b, _y, gy) => {
    const second = g.less(a, b);
    return [g.where(second, 0, gy), g.where(second, gy, 0)];
  }),
  [Op.Min]: binary(Op.Min, Math.min, (a, b, _y, gy) => {
    const second = g.greater(a, b);
    return [g.where(second, 0, gy), g.where(second, gy, 0)];
  }),
};

const COMPARE: RuleTable<Compare> = {
  [Op.Equal]: compare(Op.Equal, (a, b) => a === b),
  [Op.Greater]: compare(Op.Greater, (a, b) => a > b),
  [Op.Less]: compare(Op.Less, (a, b) => a < b),
};

const UNARY: RuleTable<Unary> = {
  [Op.Sqrt]: unary(Op.Sqrt, Math.sqrt, (_x, y, gy) => g.div(g.mul(gy, 0.5), y)),
  [Op.Exp]: unary(Op.Exp, Math.exp, (_x, y, gy) => g.mul(gy, y)),
  [Op.Log]: unary(Op.Log, Math.log, (x, _y, gy) => g.div(gy, x)),
  [Op.Neg]: unary(Op.Neg, (x) => -x, (_x, _y, gy) => g.neg(gy), false),
  [Op.Abs]: unary(Op.Abs, Math.abs, (x, _y, gy) => g.where(g.less(x, 0), g.neg(gy), gy), false),
  [Op.Tanh]: unary(Op.Tanh, Math.tanh, (_x, y, gy) => g.mul(gy, g.sub(1, g.mul(y, y)))),
  [Op.Sigmoid]: unary(Op.Sigmoid, (x) => 1 / (1 + Math.exp(-x)), (_x, y, gy) => g.mul(gy, g.mul(y, g.sub(1, y)))),
  [Op.Erf]: unary(Op.Erf, erf, (x, _y, gy) => g.mul(gy, g.mul(g.exp(g.neg(g.mul(x, x))), 2 / Math.sqrt(Math.PI)))),
  [Op.Relu]: unary(Op.Relu, (x) => Math.max(x, 0), (x, _y, gy) => g.where(g.greater(x, 0), gy, 0), false),
  [Op.Sin]: unary(Op.Sin, Math.sin, (x, _y, gy) => g.mul(gy, g.cos(x))),
  [Op.Cos]: unary(Op.Cos, Math.cos, (x, _y, gy) => g.neg(g.mul(gy, g.sin(x)))),
};

const OTHER: RuleTable<Op.Gelu | Op.Where | Op.Cast> = {
  [Op.Gelu]: {
    infer: (inputs) => {
      arity(inputs, 1);
      needFloat(inputs[0] as TensorType);
      return [inputs[0] as TensorType];
    },
    lower: (ctx, n, ins, outs) => ctx.emit("Gelu", ins, outs, { approximate: n.attrs.approximate }),
    evaluate: (v, a, [s]) => [mapElementwise(v, s ?? [], v[0]?.dtype ?? "float32", geluFn(a.approximate))],
    vjp: (n, [gy]) => (gy === undefined ? [undefined] : [g.mul(gy, geluGrad(n.inputs[0] as Tensor, n.attrs.approximate))]),
  },
  [Op.Where]: {
    infer: (inputs) => {
      arity(inputs, 3);
      const [c, x, y] = inputs as [TensorType, TensorType, TensorType];
      if (c.dtype !== "bool") throw new ShapeError(`condition must be bool, got ${c.dtype}`);
      return [{ dtype: sameDtype([x, y]), shape: broadcastShapes([c.shape, x.shape, y.shape]) }];
    },
    lower: (ctx, _n, ins, outs) => ctx.emit("Where", ins, outs),
    evaluate: (v, _a, [s]) => [mapElementwise(v, s ?? [], v[1]?.dtype ?? "float32", (c, x, y) => (c !== 0 ? x : y))],
    vjp: (n, [gy]) => {
      if (gy === undefined) return [undefined, undefined, undefined];
      const [c, x, y] = n.inputs as [Tensor, Tensor, Tensor];
      return [undefined, unbroadcast(g.where(c, gy, 0), x.shape), unbroadcast(g.where(c, 0, gy), y.shape)];
    },
  },
  [Op.Cast]: {
    infer: (inputs, a) => {
      arity(inputs, 1);
      return [{ dtype: a.to, shape: (inputs[0] as TensorType).shape }];
    },
    lower: (ctx, n, ins, outs) => ctx.emit("Cast", ins, outs, { to: ONNX_DTYPE[n.attrs.to] }),
    evaluate: (v, a) => [Float64Array.from(v[0]?.data ?? [], (x) => roundTo(a.to, x))],
    vjp: (n, [gy]) => {
      const x = n.inputs[0] as Tensor;
      if (gy === undefined || !isFloat(x.dtype) || !isFloat(n.attrs.to)) return [undefined];
      return [g.cast(gy, x.dtype)];
    },
  },
};

/** Rules of the elementwise ops. */
export const ELEMENTWISE_RULES: RuleTable<Binary | Compare | Unary | Op.Gelu | Op.Where | Op.Cast> = {
  ...BINARY,
  ...COMPARE,
  ...UNARY,
  ...OTHER,
};
