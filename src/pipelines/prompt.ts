/** Row repetition for batched conditioning and latents. */
import type { Tensor } from "./types.js";

/** Repeats each row of a [k, L, D] tensor `times` times, row-major: [a, a, b, b] for times 2. */
export function repeatRows(x: Tensor, times: number): Tensor {
  const [k, ...rest] = x.shape as [number, ...number[]];
  const per = rest.reduce((a, b) => a * b, 1);
  const out = new Float32Array(k * times * per);
  for (let r = 0; r < k; r++) for (let t = 0; t < times; t++) out.set(x.data.subarray(r * per, (r + 1) * per), (r * times + t) * per);
  return { data: out, shape: [k * times, ...rest] };
}
