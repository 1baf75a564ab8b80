/**
 * AdamW as graph ops (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101, Alg. 2),
 * with bias correction and global-norm gradient clipping, so that forward, backward and the
 * update are one onnxruntime run.
 */
import { input, scalar } from "../graph/apply.js";
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";

/** AdamW hyperparameters (PyTorch defaults except weightDecay). */
export interface AdamWConfig {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Clip the global gradient L2 norm to this value; undefined = no clipping. */
  readonly maxGradNorm?: number;
}

/** PyTorch's AdamW defaults (lr is fed per step). */
export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

/** Names of the optimizer's graph inputs and outputs for a parameter key. */
export const adamNames = {
  step: "adam.step",
  lr: "adam.lr",
  m: (k: string) => `adam.m.${k}`,
  v: (k: string) => `adam.v.${k}`,
  newParam: (k: string) => `new.${k}`,
  newM: (k: string) => `new.adam.m.${k}`,
  newV: (k: string) => `new.adam.v.${k}`,
};

/** The update graph: new params and moments from params, grads and moments. */
export interface AdamWUpdate {
  readonly params: Map<string, Tensor>;
  readonly m: Map<string, Tensor>;
  readonly v: Map<string, Tensor>;
  /** Global gradient norm before clipping. */
  readonly gradNorm: Tensor;
}

/** √(Σ‖g‖²) over all gradients. */
function globalNorm(grads: ReadonlyMap<string, Tensor>): Tensor {
  let total: Tensor | undefined;
  for (const gr of grads.values()) {
    const sq = g.reduceSum(g.mul(gr, gr), gr.shape.map((_, a) => a));
    total = total === undefined ? sq : g.add(total, sq);
  }
  return g.sqrt(total ?? scalar(0));
}

/**
 * Builds one AdamW step. Inputs it adds: `adam.step` (1-based step count, float32 scalar),
 * `adam.lr`, and per key `adam.m.<key>` / `adam.v.<key>` shaped like the parameter.
 */
export function adamwUpdate(
  params: ReadonlyMap<string, Tensor>,
  grads: ReadonlyMap<string, Tensor>,
  cfg: AdamWConfig,
): AdamWUpdate {
  const step = input(adamNames.step, "float32", []);
  const lr = input(adamNames.lr, "float32", []);
  const gradNorm = globalNorm(grads);
  const clip =
    cfg.maxGradNorm === undefined ? undefined : g.minimum(g.div(cfg.maxGradNorm, g.add(gradNorm, 1e-6)), 1);
  // Bias corrections 1 − β^t, computed in the graph from the fed step.
  const bc1 = g.sub(1, g.pow(scalar(cfg.beta1), step));
  const bc2 = g.sub(1, g.pow(scalar(cfg.beta2), step));
  const out: AdamWUpdate = { params: new Map(), m: new Map(), v: new Map(), gradNorm };
  for (const [key, p] of params) {
    const raw = grads.get(key);
    if (raw === undefined) continue;
    const gr = clip === undefined ? raw : g.mul(raw, clip);
    const m = input(adamNames.m(key), p.dtype, p.shape);
    const v = input(adamNames.v(key), p.dtype, p.shape);
    const m1 = g.add(g.mul(m, cfg.beta1), g.mul(gr, 1 - cfg.beta1));
    const v1 = g.add(g.mul(v, cfg.beta2), g.mul(g.mul(gr, gr), 1 - cfg.beta2));
    const denom = g.add(g.sqrt(g.div(v1, bc2)), cfg.eps);
    const update = g.div(g.div(m1, bc1), denom);
    // Decoupled weight decay: p ← p − lr·(update + λ·p).
    const decayed = cfg.weightDecay === 0 ? update : g.add(update, g.mul(p, cfg.weightDecay));
    out.params.set(key, g.sub(p, g.mul(decayed, lr)));
    out.m.set(key, m1);
    out.v.set(key, v1);
  }
  return out;
}
