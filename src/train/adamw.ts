/**
 * AdamW as graph ops (Loshchilov & Hutter 2019, https://arxiv.org/abs/1711.05101, Alg. 2),
 * with bias correction and global-norm gradient clipping, so that forward, backward and the
 * update are one onnxruntime run.
 */
import { input, scalar } from "../graph/apply.js";
import * as g from "../graph/ops.js";
import { numel } from "../graph/shape.js";
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

/** One flat group of the update: parameters, gradients and both moments laid end to end, [N] each. */
export interface FlatAdamWInput {
  readonly param: Tensor;
  readonly grad: Tensor;
  readonly m: Tensor;
  readonly v: Tensor;
}

/** New parameters and moments of one flat group. */
export interface FlatAdamWOutput {
  readonly param: Tensor;
  readonly m: Tensor;
  readonly v: Tensor;
}

/**
 * AdamW on flat groups (one per dtype): the gradient norm and clipping are global over all of
 * them. Inputs it adds: `adam.step` (1-based step count, float32 scalar) and `adam.lr`.
 */
export function adamwFlat(groups: readonly FlatAdamWInput[], cfg: AdamWConfig): { readonly groups: FlatAdamWOutput[]; readonly gradNorm: Tensor } {
  const step = input(adamNames.step, "float32", []);
  const lr = input(adamNames.lr, "float32", []);
  let sq: Tensor | undefined;
  for (const gr of groups) {
    const s = g.cast(g.reduceSum(g.mul(gr.grad, gr.grad), [0]), "float32");
    sq = sq === undefined ? s : g.add(sq, s);
  }
  const gradNorm = g.sqrt(sq ?? scalar(0));
  const clip =
    cfg.maxGradNorm === undefined ? undefined : g.minimum(g.div(cfg.maxGradNorm, g.add(gradNorm, 1e-6)), 1);
  // Bias corrections 1 − β^t, computed in the graph from the fed step.
  const bc1 = g.sub(1, g.pow(scalar(cfg.beta1), step));
  const bc2 = g.sub(1, g.pow(scalar(cfg.beta2), step));
  const out = groups.map(({ param: p, grad, m, v }) => {
    const asDt = (t: Tensor) => g.cast(t, p.dtype);
    const gr = clip === undefined ? grad : g.mul(grad, asDt(clip));
    const m1 = g.add(g.mul(m, cfg.beta1), g.mul(gr, 1 - cfg.beta1));
    const v1 = g.add(g.mul(v, cfg.beta2), g.mul(g.mul(gr, gr), 1 - cfg.beta2));
    const denom = g.add(g.sqrt(g.div(v1, asDt(bc2))), cfg.eps);
    const update = g.div(g.div(m1, asDt(bc1)), denom);
    // Decoupled weight decay: p ← p − lr·(update + λ·p).
    const decayed = cfg.weightDecay === 0 ? update : g.add(update, g.mul(p, cfg.weightDecay));
    return { param: g.sub(p, g.mul(decayed, asDt(lr))), m: m1, v: v1 };
  });
  return { groups: out, gradNorm };
}

/**
 * Builds one AdamW step over per-key tensors. Inputs it adds: `adam.step`, `adam.lr`, and per key
 * `adam.m.<key>` / `adam.v.<key>` shaped like the parameter. The update runs on the parameters of
 * each dtype laid end to end (one Concat in, one Split out): a dozen element-wise ops in all rather
 * than a dozen per tensor. (The Trainer feeds flat groups directly, see buildTrainStep.)
 */
export function adamwUpdate(
  params: ReadonlyMap<string, Tensor>,
  grads: ReadonlyMap<string, Tensor>,
  cfg: AdamWConfig,
): AdamWUpdate {
  const keys = [...params.keys()].filter((k) => grads.has(k));
  const byDtype = new Map<string, string[]>();
  for (const k of keys) {
    const dt = (params.get(k) as Tensor).dtype;
    byDtype.set(dt, [...(byDtype.get(dt) ?? []), k]);
  }
  const flat = (ts: readonly Tensor[]): Tensor => (ts.length === 1 ? g.reshape(ts[0] as Tensor, [-1]) : g.concat(ts.map((t) => g.reshape(t, [-1])), 0));
  const groups = [...byDtype.values()].map((ks) => {
    const ps = ks.map((k) => params.get(k) as Tensor);
    return {
      keys: ks,
      ps,
      in: {
        param: flat(ps),
        grad: flat(ks.map((k) => grads.get(k) as Tensor)),
        m: flat(ps.map((t, i) => input(adamNames.m(ks[i] as string), t.dtype, t.shape))),
        v: flat(ps.map((t, i) => input(adamNames.v(ks[i] as string), t.dtype, t.shape))),
      },
    };
  });
  const res = adamwFlat(groups.map((gr) => gr.in), cfg);
  const out: AdamWUpdate = { params: new Map(), m: new Map(), v: new Map(), gradNorm: res.gradNorm };
  groups.forEach(({ keys: ks, ps }, gi) => {
    const r = res.groups[gi] as FlatAdamWOutput;
    const sizes = ps.map((t) => numel(t.shape as number[]));
    const unflat = (t: Tensor, into: Map<string, Tensor>) => {
      const parts = ks.length === 1 ? [t] : g.split(t, sizes, 0);
      parts.forEach((part, i) => into.set(ks[i] as string, g.reshape(part, (ps[i] as Tensor).shape)));
    };
    unflat(r.param, out.params);
    unflat(r.m, out.m);
    unflat(r.v, out.v);
  });
  return out;
}
