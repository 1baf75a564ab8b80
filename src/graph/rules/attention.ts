/**
 * Fused multi-head attention. onnxruntime's CPU kernel (com.microsoft MultiHeadAttention, float32)
 * runs a blocked "flash" attention that never holds the [B, H, Lq, Lk] scores, which at SD's 4096
 * latent tokens are 1 GiB per CFG pair; the VJP is written in primitive ops.
 */
import { ShapeError } from "../../errors.js";
import { ONNX_DTYPE } from "../dtype.js";
import { Op } from "../op.js";
import * as g from "../ops.js";
import type { Rule, RuleTable, TensorType, Value } from "../rule.js";
import type { Dim } from "../shape.js";
import { dimEq, fmtShape } from "../shape.js";
import type { Tensor } from "../tensor.js";
import { arity, needFloat, needRank, roundAll, sameDtype } from "./util.js";

function inferAttention(inputs: readonly TensorType[], attrs: { readonly numHeads: number }): TensorType[] {
  arity(inputs, 3);
  const dtype = sameDtype(inputs);
  const [q, k, v] = inputs as [TensorType, TensorType, TensorType];
  needFloat(q);
  needRank(q, 3, "q");
  needRank(k, 3, "k");
  needRank(v, 3, "v");
  const all = `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)}`;
  if (!dimEq(q.shape[0] as Dim, k.shape[0] as Dim) || !dimEq(k.shape[0] as Dim, v.shape[0] as Dim)) throw new ShapeError(`batch dims differ: ${all}`);
  if (!dimEq(k.shape[1] as Dim, v.shape[1] as Dim)) throw new ShapeError(`k and v must have the same length: ${all}`);
  const [c, ck, cv] = [q.shape[2], k.shape[2], v.shape[2]];
  if (c !== ck) throw new ShapeError(`q and k must have the same width: ${all}`);
  const h = attrs.numHeads;
  if (!Number.isInteger(h) || h < 1) throw new ShapeError(`numHeads must be a positive integer (got ${h})`);
  for (const w of [c, cv]) {
    if (typeof w !== "number" || w % h !== 0) throw new ShapeError(`widths must be numbers divisible by numHeads ${h}: ${all}`);
  }
  return [{ dtype, shape: [q.shape[0] as Dim, q.shape[1] as Dim, cv as number] }];
}

/** softmax(q·kᵀ·scale)·v per batch and head, in float64. */
function evalAttention([q, k, v]: readonly Value[], attrs: { readonly numHeads: number; readonly scale: number }): Float64Array {
  const [b, lq, c] = (q as Value).shape as [number, number, number];
  const lk = (k as Value).shape[1] as number;
  const cv = (v as Value).shape[2] as number;
  const h = attrs.numHeads;
  const [d, dv] = [c / h, cv / h];
  const out = new Float64Array(b * lq * cv);
  const p = new Float64Array(lk);
  for (let n = 0; n < b; n++) {
    for (let head = 0; head < h; head++) {
      for (let i = 0; i < lq; i++) {
        let max = -Infinity;
        for (let j = 0; j < lk; j++) {
          let s = 0;
          for (let e = 0; e < d; e++) s += ((q as Value).data[(n * lq + i) * c + head * d + e] ?? 0) * ((k as Value).data[(n * lk + j) * c + head * d + e] ?? 0);
          p[j] = s * attrs.scale;
          max = Math.max(max, p[j] as number);
        }
        let sum = 0;
        for (let j = 0; j < lk; j++) sum += p[j] = Math.exp((p[j] as number) - max);
        for (let e = 0; e < dv; e++) {
          let acc = 0;
          for (let j = 0; j < lk; j++) acc += (p[j] as number) * ((v as Value).data[(n * lk + j) * cv + head * dv + e] ?? 0);
          out[(n * lq + i) * cv + head * dv + e] = acc / sum;
        }
      }
    }
  }
  return roundAll((q as Value).dtype, out);
}

/** [B, L, H·c] → [B, H, L, c] */
function heads(x: Tensor, h: number): Tensor {
  const [b, l, c] = x.shape as [Dim, Dim, number];
  return g.transpose(g.reshape(x, [b, l, h, c / h]), [0, 2, 1, 3]);
}

/** [B, H, L, c] → [B, L, H·c] */
function merge(x: Tensor): Tensor {
  const [b, h, l, c] = x.shape as [Dim, number, Dim, number];
  return g.reshape(g.transpose(x, [0, 2, 1, 3]), [b, l, h * c]);
}

/** Swaps the last two dims of a rank-4 tensor. */
const mT = (x: Tensor): Tensor => g.transpose(x, [0, 1, 3, 2]);

const MHA: Rule<Op.MultiHeadAttention> = {
  infer: inferAttention,
  lower: (ctx, n, ins, outs) => {
    const dtype = (n.inputs[0] as Tensor).dtype;
    const attrs = { num_heads: n.attrs.numHeads, scale: { float: n.attrs.scale } };
    if (dtype === "float32") return ctx.emit("MultiHeadAttention", ins, outs, attrs, "com.microsoft");
    // The CPU kernel is float32 only: other dtypes run it in float32.
    const wide = ins.map((name) => {
      const t = ctx.temp("mha_f32");
      ctx.emit("Cast", [name], [t], { to: ONNX_DTYPE.float32 });
      return t;
    });
    const y = ctx.temp("mha_out");
    ctx.emit("MultiHeadAttention", wide, [y], attrs, "com.microsoft");
    ctx.emit("Cast", [y], outs, { to: ONNX_DTYPE[dtype] });
  },
  evaluate: (v, attrs) => [evalAttention(v, attrs)],
  // With P = softmax(S), S = Q·Kᵀ·s per head: dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − Σⱼ dP ⊙ P),
  // dQ = dS·K·s, dK = dSᵀ·Q·s. P is recomputed, as a fused forward keeps no scores.
  vjp: (n, [gy]) => {
    if (gy === undefined) return [undefined, undefined, undefined];
    const { numHeads: h, scale } = n.attrs;
    const [q, k, v] = (n.inputs as [Tensor, Tensor, Tensor]).map((t) => heads(t, h)) as [Tensor, Tensor, Tensor];
    const p = g.softmax(g.mul(g.matmul(q, mT(k)), scale), -1); // [B, H, Lq, Lk]
    const go = heads(gy, h); // [B, H, Lq, dv]
    const dp = g.matmul(go, mT(v));
    const ds = g.mul(p, g.sub(dp, g.reduceSum(g.mul(dp, p), [-1], true)));
    return [merge(g.mul(g.matmul(ds, k), scale)), merge(g.mul(g.matmul(mT(ds), q), scale)), merge(g.matmul(mT(p), go))];
  },
};

/** The fused ops' rules. */
export const ATTENTION_RULES: RuleTable<Op.MultiHeadAttention> = {
  [Op.MultiHeadAttention]: MHA,
};
