/** Reverse-mode autodiff: appends the backward graph of a scalar loss with respect to chosen tensors. */
import { ShapeError } from "../errors.js";
import { constant } from "./apply.js";
import type { Op } from "./op.js";
import * as g from "./ops.js";
import type { Rule } from "./rule.js";
import { RULES } from "./rules/index.js";
import { isConcrete } from "./shape.js";
import { type Tensor, topoNodes } from "./tensor.js";

/** Ones shaped like t (concrete shapes only). */
function onesLike(t: Tensor): Tensor {
  if (!isConcrete(t.shape)) throw new ShapeError(`grad: the loss shape ${t.typeString} must be concrete`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  return constant(new Float64Array(n).fill(1), t.shape, t.dtype);
}

/**
 * Gradients of `loss` (a scalar, or any tensor with `seed` as its cotangent) with respect to
 * each tensor of `wrt`, keyed like `wrt`. A tensor the loss does not depend on gets zeros.
 */
export function grad(loss: Tensor, wrt: ReadonlyMap<string, Tensor>, seed?: Tensor): Map<string, Tensor> {
  const targets = new Set([...wrt.values()].map((t) => t.id));
  const nodes = topoNodes([loss]);
  // Forward sweep: which tensors depend on a target (only those need gradients).
  const active = new Set(targets);
  for (const n of nodes) {
    if (n.inputs.some((t) => active.has(t.id))) for (const o of n.outputs) active.add(o.id);
  }
  const grads = new Map<number, Tensor>();
  grads.set(loss.id, seed ?? onesLike(loss));
  for (let k = nodes.length - 1; k >= 0; k--) {
    const n = nodes[k];
    if (n === undefined || !n.outputs.some((o) => active.has(o.id))) continue;
    const gOut = n.outputs.map((o) => grads.get(o.id));
    if (gOut.every((x) => x === undefined)) continue;
    const rule = RULES[n.op] as unknown as Rule<Op>;
    if (rule.vjp === null) {
      if (n.inputs.some((t) => active.has(t.id) && (t.dtype === "float32" || t.dtype === "float16" || t.dtype === "float64"))) {
        throw new ShapeError(`grad: ${n.op} has no gradient, but the loss depends on its input through it`);
      }
      continue;
    }
    const gIn = rule.vjp(n, gOut);
    n.inputs.forEach((t, i) => {
      const gi = gIn[i];
      if (gi === undefined || !active.has(t.id)) return;
      const prev = grads.get(t.id);
      grads.set(t.id, prev === undefined ? gi : g.add(prev, gi));
    });
  }
  const out = new Map<string, Tensor>();
  for (const [key, t] of wrt) out.set(key, grads.get(t.id) ?? g.mul(t, 0));
  return out;
}
