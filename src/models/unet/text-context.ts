/** The context a U-Net with `textContext: "pooled"` reads: each prompt's pooled text state in every row. */

/** [B, D] pooled states → [B, L, D], row b's vector repeated L times. */
export function pooledContextRows(pooled: Float32Array, batch: number, length: number, dim: number): Float32Array {
  if (pooled.length !== batch * dim) throw new RangeError(`pooled states: expected ${batch}×${dim} values, got ${pooled.length}`);
  const out = new Float32Array(batch * length * dim);
  for (let b = 0; b < batch; b++) {
    const v = pooled.subarray(b * dim, (b + 1) * dim);
    for (let j = 0; j < length; j++) out.set(v, (b * length + j) * dim);
  }
  return out;
}
