/** Linear algebra and spatial ops: batched MatMul, nearest Resize, and (from conv.ts) Conv and ConvTranspose. */
import { ShapeError, assert } from "../../errors.js";
import { constant } from "../apply.js";
import { Op } from "../op.js";
import * as g from "../ops.js";
import type { Grads, Rule, RuleTable, TensorType, Value } from "../rule.js";
import type { Dim } from "../shape.js";
import { broadcastShapes, dimDivide, dimProduct, dimEq, fmtShape, numel } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { CONV_RULES } from "./conv.js";
import { arity, broadcastMap, needFloat, roundAll, sameDtype, unbroadcast } from "./util.js";

function inferMatMul(inputs: readonly TensorType[]): TensorType[] {
  arity(inputs, 2);
  const dtype = sameDtype(inputs);
  const [a, b] = inputs as [TensorType, TensorType];
  needFloat(a);
  const pair = `${fmtShape(a.shape)} × ${fmtShape(b.shape)}`;
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new ShapeError(`needs rank ≥ 2 on both sides, got ${pair}; reshape a vector to [1,K] or [K,1]`);
  }
  const [m, k] = a.shape.slice(-2) as [Dim, Dim];
  const [k2, n] = b.shape.slice(-2) as [Dim, Dim];
  if (!dimEq(k, k2)) throw new ShapeError(`inner dims differ in ${pair}: a's last dim (${k}) must equal b's second-to-last (${k2})`);
  let batch: Dim[];
  try {
    batch = broadcastShapes([a.shape.slice(0, -2), b.shape.slice(0, -2)]);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    throw new ShapeError(`batch dims of ${pair} do not broadcast: ${e.message}`);
  }
  return [{ dtype, shape: [...batch, m, n] }];
}

/** Batched matrix product in float64; batch dims broadcast like numpy. */
function evalMatMul(v: readonly Value[], outShape: readonly number[]): Float64Array {
  const [a, b] = v as [Value, Value];
  const r = outShape.length;
  const [M, N] = outShape.slice(-2) as [number, number];
  const K = a.shape[a.shape.length - 1] ?? 1;
  const batch = outShape.slice(0, r - 2);
  const am = broadcastMap(a.shape.slice(0, -2), batch);
  const bm = broadcastMap(b.shape.slice(0, -2), batch);
  const out = new Float64Array(numel(outShape));
  for (let t = 0; t < am.length; t++) {
    const ao = (am[t] ?? 0) * M * K;
    const bo = (bm[t] ?? 0) * K * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let p = 0; p < K; p++) acc += (a.data[ao + i * K + p] ?? 0) * (b.data[bo + p * N + j] ?? 0);
        out[(t * M + i) * N + j] = acc;
      }
    }
  }
  return roundAll(a.dtype, out);
}

/** Swaps the last two dims. */
function mT(t: Tensor): Tensor {
  const perm = t.shape.map((_, i) => i);
  perm.splice(-2, 2, t.rank - 1, t.rank - 2);
  return g.transpose(t, perm);
}

const MATMUL: Rule<Op.MatMul> = {
  infer: inferMatMul,
  lower: (ctx, _n, ins, outs) => ctx.emit("MatMul", ins, outs),
  evaluate: (v, _a, [s]) => [evalMatMul(v, s ?? [])],
  vjp: (n, [gy]) => {
    if (gy === undefined) return [undefined, undefined];
    const [a, b] = n.inputs as [Tensor, Tensor];
    // gA = gY·Bᵀ, gB = Aᵀ·gY, each summed back over the batch dims its operand was broadcast along.
    return [unbroadcast(g.matmul(gy, mT(b)), a.shape), unbroadcast(g.matmul(mT(a), gy), b.shape)];
  },
};

/** A Resize scale as an exact ratio: up-sampling by an integer, or down-sampling by a power of two. */
interface Ratio {
  readonly up: number;
  readonly down: number;
}

/**
 * Integer scales ≥ 1, or 1/k for k a power of two. Other fractions are refused because ORT maps
 * out[i] to in[floor(i / scale)] with the float32 scale: 1/3 rounds up, so i / scale lands just
 * below 3i and floor picks the wrong pixel.
 */
function ratio(s: number): Ratio | undefined {
  if (Number.isInteger(s) && s >= 1) return { up: s, down: 1 };
  const k = Math.round(1 / s);
  if (Number.isSafeInteger(k) && k >= 2 && 1 / k === s && (k & (k - 1)) === 0) return { up: 1, down: k };
  return undefined;
}

function ratios(scales: readonly [number, number]): [Ratio, Ratio] {
  return scales.map((s) => {
    const r = ratio(s);
    if (r === undefined) throw new ShapeError(`scale ${s} is not supported: use an integer ≥ 1 or 1/2ⁿ (0.5, 0.25, …)`);
    return r;
  }) as [Ratio, Ratio];
}

/** a / b, which shape inference has already checked to be exact. */
function exactDiv(a: Dim, b: number): Dim {
  const q = dimDivide(a, b);
  assert(q !== undefined, () => `${a} divides by ${b}`);
  return q;
}

function inferResize(inputs: readonly TensorType[], attrs: { readonly scales: readonly [number, number] }): TensorType[] {
  arity(inputs, 1);
  const x = inputs[0] as TensorType;
  if (x.dtype === "bool") throw new ShapeError("bool tensors cannot be resized; cast to float32 first");
  if (x.shape.length < 2) throw new ShapeError(`Resize scales the last two dims, so needs rank ≥ 2, got ${fmtShape(x.shape)}`);
  const rs = ratios(attrs.scales);
  const r = x.shape.length;
  const spatial = x.shape.slice(-2).map((d, i) => {
    const { up, down } = rs[i] as Ratio;
    if (up > 1) return dimProduct([up, d]);
    const q = dimDivide(d, down);
    if (q === undefined) throw new ShapeError(`Resize by 1/${down} needs dim ${r - 2 + i} (${d}) to be a multiple of ${down}`);
    return q;
  });
  return [{ dtype: x.dtype, shape: [...x.shape.slice(0, -2), ...spatial] }];
}

/** out[.., i, j] = in[.., floor(i·down_h/up_h), floor(j·down_w/up_w)]: exact integer indexing. */
function evalResize(v: readonly Value[], scales: readonly [number, number], outShape: readonly number[]): Float64Array {
  const x = v[0] as Value;
  const [rh, rw] = ratios(scales);
  const [H, W] = x.shape.slice(-2) as [number, number];
  const [OH, OW] = outShape.slice(-2) as [number, number];
  const lead = numel(outShape.slice(0, -2));
  const out = new Float64Array(numel(outShape));
  for (let t = 0; t < lead; t++) {
    for (let i = 0; i < OH; i++) {
      const ih = Math.floor((i * rh.down) / rh.up);
      for (let j = 0; j < OW; j++) out[(t * OH + i) * OW + j] = x.data[(t * H + ih) * W + Math.floor((j * rw.down) / rw.up)] ?? 0;
    }
  }
  return out;
}

/**
 * Up-sampled axes: each input pixel was copied into a block, so its gradient is the block's sum.
 * Down-sampled axes: only the first pixel of each k×k block was read; spread gy back with a
 * nearest up-sample and zero the rest of each block with a constant mask.
 */
function resizeVjp(x: Tensor, scales: readonly [number, number], gy: Tensor): Tensor {
  const [rh, rw] = ratios(scales);
  const lead = x.shape.slice(0, -2);
  const r = x.rank;
  let gr = gy; // [..., OH, OW]
  if (rh.up > 1 || rw.up > 1) {
    const [oh, ow] = gy.shape.slice(-2) as [Dim, Dim];
    const blocks = g.reshape(gy, [...lead, exactDiv(oh, rh.up), rh.up, exactDiv(ow, rw.up), rw.up]);
    gr = g.reduceSum(blocks, [r - 1, r + 1]); // [..., OH/up_h, OW/up_w]
  }
  if (rh.down > 1 || rw.down > 1) {
    const [h, w] = x.shape.slice(-2) as [Dim, Dim];
    const spread = g.resizeNearest(gr, [rh.down, rw.down]); // x's shape
    const blocks = g.reshape(spread, [...lead, exactDiv(h, rh.down), rh.down, exactDiv(w, rw.down), rw.down]);
    const maskValues = Array.from({ length: rh.down * rw.down }, (_, i) => (i === 0 ? 1 : 0));
    gr = g.reshape(g.mul(blocks, constant(maskValues, [rh.down, 1, rw.down], x.dtype)), x.shape);
  }
  return gr;
}

const RESIZE: Rule<Op.Resize> = {
  infer: inferResize,
  lower: (ctx, n, ins, outs) => {
    const x = n.inputs[0] as Tensor;
    const scales = ctx.float32([...x.shape.slice(0, -2).map(() => 1), ...n.attrs.scales]);
    const attrs = { mode: "nearest", coordinate_transformation_mode: "asymmetric", nearest_mode: "floor" };
    ctx.emit("Resize", [ins[0] ?? "", "", scales], outs, attrs);
  },
  evaluate: (v, a, [s]) => [evalResize(v, a.scales, s ?? [])],
  vjp: (n, [gy]): Grads => (gy === undefined ? [undefined] : [resizeVjp(n.inputs[0] as Tensor, n.attrs.scales, gy)]),
};

/** Rules of MatMul, Conv, ConvTranspose and Resize. */
export const LINALG_RULES: RuleTable<Op.MatMul | Op.Conv | Op.ConvTranspose | Op.Resize> = {
  [Op.MatMul]: MATMUL,
  [Op.Resize]: RESIZE,
  ...CONV_RULES,
};
