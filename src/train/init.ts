/** Initial parameter values for training from scratch, chosen from each parameter's key and shape. */
import type { Tensor } from "../graph/tensor.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Rng } from "./rng.js";

/** How to start one parameter. */
export type InitRule = "zeros" | "ones" | { readonly normal: number } | { readonly constant: number };

/**
 * The default rule: norm scales 1, biases 0, embedding tables and learned positions
 * (`…token_embedding.weight`, `…positional_embedding`) N(0, 0.02²), weights N(0, 1/fan_in)
 * (fan_in = all dims but the first, as checkpoints store [out, in, …]) — the linears of
 * `time_embedding.*` and `add_embedding.*` included.
 */
export function defaultInit(key: string, shape: readonly number[]): InitRule {
  if (key.endsWith(".bias")) return "zeros";
  if (shape.length <= 1) return "ones";
  if (/embedding(\.weight)?$/.test(key)) return { normal: 0.02 };
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return { normal: 1 / Math.sqrt(fanIn) };
}

/** Values for every parameter: `rule` (when it returns a rule) wins over `defaultInit`. */
export function initParams(
  params: ReadonlyMap<string, Tensor>,
  rng: Rng,
  rule: (key: string, shape: readonly number[]) => InitRule | undefined = () => undefined,
): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [key, t] of params) {
    const shape = t.shape as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    const r = rule(key, shape) ?? defaultInit(key, shape);
    let data: Float32Array;
    if (r === "zeros") data = new Float32Array(n);
    else if (r === "ones") data = new Float32Array(n).fill(1);
    else if ("constant" in r) data = new Float32Array(n).fill(r.constant);
    else data = rng.normals(n).map((v) => v * r.normal);
    out.set(key, { dtype: "float32", shape, data });
  }
  return out;
}
