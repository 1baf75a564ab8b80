/** Creating nodes: runs the op's inference rule and wraps its errors with op and tensor names. */
import { ShapeError } from "../errors.js";
import type { DType } from "./dtype.js";
import type { Op, OpAttrs } from "./op.js";
import { RULES } from "./rules/index.js";
import type { Shape } from "./shape.js";
import { fmtShape, normDim } from "./shape.js";
import { type Node, Tensor, nextId, topoNodes } from "./tensor.js";

/** Applies an op to inputs; returns its outputs. `label` names the node in errors and prints. */
export function apply<K extends Op>(op: K, inputs: readonly Tensor[], attrs: OpAttrs[K], label?: string): Tensor[] {
  const rule = RULES[op];
  let types;
  try {
    types = rule.infer(inputs, attrs);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    const ins = inputs.map((t, i) => `#${i} ${t.label} ${t.typeString}`).join(", ");
    const where = label !== undefined ? ` '${label}'` : "";
    throw new ShapeError(`${op}${where}: ${e.message} (inputs: ${ins})`);
  }
  const outputs: Tensor[] = [];
  const node: Node<K> = { id: nextId(), op, inputs, attrs, outputs, label };
  types.forEach((t, index) => {
    outputs.push(new Tensor(t.dtype, t.shape.map((d) => (typeof d === "string" ? normDim(d) : d)), { kind: "node", node, index }));
  });
  return outputs;
}

/** Applies a single-output op. */
export function apply1<K extends Op>(op: K, inputs: readonly Tensor[], attrs: OpAttrs[K], label?: string): Tensor {
  return apply(op, inputs, attrs, label)[0] as Tensor;
}

/** A named graph input (a parameter, a batch, a feed). */
export function input(name: string, dtype: DType, shape: Shape): Tensor {
  return new Tensor(dtype, shape.map((d) => (typeof d === "string" ? normDim(d) : d)), { kind: "input", name });
}

/** A constant baked into the graph; `values` are given as numbers in row-major order. */
export function constant(values: ArrayLike<number>, shape: readonly number[], dtype: DType = "float32"): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (values.length !== n) {
    throw new ShapeError(`constant: ${values.length} values do not fill shape ${fmtShape(shape)} (${n} elements)`);
  }
  return new Tensor(dtype, shape, { kind: "constant", values: Float64Array.from(values) });
}

/** A rank-0 constant. */
export function scalar(value: number, dtype: DType = "float32"): Tensor {
  return constant([value], [], dtype);
}

/**
 * The graph of `outputs` rebuilt with some tensors replaced (keys: the tensors to replace, values:
 * what takes their place, of the same type); every node downstream of a replaced tensor is applied
 * again, the rest are shared. Returns the new outputs, in order.
 */
export function substitute(outputs: readonly Tensor[], replace: ReadonlyMap<Tensor, Tensor>): Tensor[] {
  const map = new Map<number, Tensor>();
  for (const [from, to] of replace) map.set(from.id, to);
  for (const n of topoNodes(outputs)) {
    const ins = n.inputs.map((t) => map.get(t.id) ?? t);
    if (ins.every((t, i) => t === n.inputs[i])) continue;
    const outs = apply(n.op, ins, n.attrs, n.label);
    n.outputs.forEach((o, i) => map.set(o.id, outs[i] as Tensor));
  }
  return outputs.map((t) => map.get(t.id) ?? t);
}
