/** Multi-head scaled dot-product attention (Vaswani et al. 2017, eq. 1): primitive ops, or the fused op. */
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";

/** [B, L, heads·d] → [B, heads, L, d] */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, l, c] = x.shape as [number | string, number | string, number];
  return g.transpose(g.reshape(x, [b, l, heads, c / heads]), [0, 2, 1, 3]);
}

/** [B, heads, L, d] → [B, L, heads·d] */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, l, d] = x.shape as [number | string, number, number | string, number];
  return g.reshape(g.transpose(x, [0, 2, 1, 3]), [b, l, h * d]);
}

/** Options of `attention`. */
export interface AttentionOptions {
  /**
   * Compute `out` with the fused MultiHeadAttention op (no mask only). onnxruntime's CPU kernel
   * never holds the [B, H, Lq, Lk] scores and is faster for long self-attention (SD's 4096
   * latent tokens); `probs` is then only computed where something reads it.
   */
  readonly fused?: boolean;
}

/**
 * softmax(q·kᵀ/√d + mask)·v per head. q [B, Lq, H·d], k/v [B, Lk, H·d] → [B, Lq, H·d].
 * `mask` (additive, broadcastable to [B, H, Lq, Lk]) e.g. CLIP's causal mask.
 * Returns the attention probabilities too, for the explain view's heatmaps.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, heads: number, mask?: Tensor, opts: AttentionOptions = {}): { out: Tensor; probs: Tensor } {
  const d = (q.shape[2] as number) / heads;
  const qh = splitHeads(q, heads); // [B, H, Lq, d]
  const kh = g.transpose(splitHeads(k, heads), [0, 1, 3, 2]); // [B, H, d, Lk]
  // Scale the product, as the reference does (baddbmm with alpha): the same rounding, and
  // onnxruntime fuses MatMul + scalar Mul into one FusedMatMul, so it costs nothing.
  let scores = g.mul(g.matmul(qh, kh), 1 / Math.sqrt(d)); // [B, H, Lq, Lk]
  if (mask) scores = g.add(scores, mask);
  const probs = g.softmax(scores, -1);
  const fused = opts.fused === true && mask === undefined;
  const out = fused ? g.multiHeadAttention(q, k, v, heads) : mergeHeads(g.matmul(probs, splitHeads(v, heads)));
  return { out, probs };
}
