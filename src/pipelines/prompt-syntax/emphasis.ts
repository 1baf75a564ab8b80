/**
 * A1111's "Original" emphasis: scale each token's text-encoder output by its weight, then
 * rescale so the mean is what it was
 * ([modules/sd_emphasis.py](https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/00e09382cd85c77ac35545c7264855823dfc2eb1/modules/sd_emphasis.py), `EmphasisOriginal`).
 */

import { ShapeError } from "../../errors.js";

/**
 * z [k, T, D] (k chunks of T = 77 tokens) × weights[k][T] → new [k, T, D]. A1111 restores the
 * mean per encoder call, i.e. per 77-token chunk for one prompt; so does this (equal-sized
 * chunks: the whole tensor's mean is kept too). Arithmetic in float32 like torch's, means in float64.
 */
export function applyEmphasis(z: Float32Array, shape: readonly [number, number, number], weights: readonly (readonly number[])[]): Float32Array {
  const [k, tokens, dim] = shape;
  if (z.length !== k * tokens * dim) {
    throw new ShapeError(`applyEmphasis: embeddings have ${z.length} values, shape [${shape.join(", ")}] needs ${k * tokens * dim}`);
  }
  if (weights.length !== k || weights.some((w) => w.length !== tokens)) {
    throw new ShapeError(`applyEmphasis: weights must be ${k} chunks of ${tokens} (got ${weights.map((w) => w.length).join(", ")})`);
  }
  const out = new Float32Array(z.length);
  const per = tokens * dim;
  for (let c = 0; c < k; c++) {
    const w = weights[c] as readonly number[];
    let before = 0;
    let after = 0;
    for (let t = 0; t < tokens; t++) {
      const wt = Math.fround(w[t] as number);
      for (let i = c * per + t * dim, end = i + dim; i < end; i++) {
        const v = z[i] as number;
        const scaled = Math.fround(v * wt);
        out[i] = scaled;
        before += v;
        after += scaled;
      }
    }
    // All weights 0 (or an all-zero chunk) would divide by zero; A1111 gets NaN, we keep the product.
    if (after === 0) continue;
    const ratio = Math.fround(Math.fround(before / per) / Math.fround(after / per));
    for (let i = c * per; i < (c + 1) * per; i++) out[i] = Math.fround((out[i] as number) * ratio);
  }
  return out;
}
