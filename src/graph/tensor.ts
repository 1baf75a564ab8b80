/** Symbolic tensors and the nodes that produce them. Immutable; shared freely. */
import type { DType } from "./dtype.js";
import type { Op, OpAttrs } from "./op.js";
import type { Shape } from "./shape.js";
import { fmtShape } from "./shape.js";

/** Where a tensor's value comes from. */
export type Source =
  | { readonly kind: "input"; readonly name: string }
  | { readonly kind: "constant"; readonly values: Float64Array }
  | { readonly kind: "node"; readonly node: Node; readonly index: number };

/** An op application: inputs, attributes and the tensors it produces. */
export interface Node<K extends Op = Op> {
  readonly id: number;
  readonly op: K;
  readonly inputs: readonly Tensor[];
  readonly attrs: OpAttrs[K];
  readonly outputs: readonly Tensor[];
  /** Optional label (e.g. the module path) used in errors and printing. */
  readonly label: string | undefined;
}

let counter = 0;

/** A fresh id; ids order creation, which is also a valid topological order. */
export function nextId(): number {
  return counter++;
}

/** A typed symbolic tensor. */
export class Tensor {
  readonly id: number = nextId();
  constructor(
    readonly dtype: DType,
    readonly shape: Shape,
    readonly source: Source,
  ) {}

  /** Number of dims. */
  get rank(): number {
    return this.shape.length;
  }

  /** Name used in errors: the input name, "const", or op#id. */
  get label(): string {
    const s = this.source;
    if (s.kind === "input") return `'${s.name}'`;
    if (s.kind === "constant") return `const#${this.id}`;
    const lbl = s.node.label !== undefined ? ` '${s.node.label}'` : "";
    return `${s.node.op}#${s.node.id}${lbl}`;
  }

  /** "float32[B,4,64,64]" */
  get typeString(): string {
    return `${this.dtype}${fmtShape(this.shape)}`;
  }
}

/** The node producing t, or undefined for inputs and constants. */
export function producer(t: Tensor): Node | undefined {
  return t.source.kind === "node" ? t.source.node : undefined;
}

/** Tensors reachable from `outputs`, inputs-first (topological) order of their nodes. */
export function topoNodes(outputs: readonly Tensor[]): Node[] {
  const seen = new Set<number>();
  const nodes: Node[] = [];
  const stack: Tensor[] = [...outputs];
  while (stack.length > 0) {
    const t = stack.pop() as Tensor;
    const n = producer(t);
    if (n === undefined || seen.has(n.id)) continue;
    seen.add(n.id);
    nodes.push(n);
    for (const i of n.inputs) stack.push(i);
  }
  // Ids grow with creation and a node is always created after its inputs.
  return nodes.sort((a, b) => a.id - b.id);
}

/** Leaf tensors (inputs and constants) reachable from `outputs`, in creation order. */
export function leaves(outputs: readonly Tensor[]): Tensor[] {
  const seen = new Map<number, Tensor>();
  for (const t of outputs) if (t.source.kind !== "node") seen.set(t.id, t);
  for (const n of topoNodes(outputs)) for (const i of n.inputs) if (i.source.kind !== "node") seen.set(i.id, i);
  return [...seen.values()].sort((a, b) => a.id - b.id);
}
