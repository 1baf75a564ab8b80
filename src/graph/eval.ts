/** The reference evaluator: runs a graph with the plain-TS rules, in float64. Slow; for tests and small graphs. */
import { InputError } from "../errors.js";
import { roundTo } from "./dtype.js";
import { RULES } from "./rules/index.js";
import type { Value } from "./rule.js";
import type { Op } from "./op.js";
import type { Rule } from "./rule.js";
import { fmtShape, numel, resolveShape } from "./shape.js";
import { type Node, type Tensor, leaves, topoNodes } from "./tensor.js";

/** Binds symbolic dims from fed inputs; throws InputError on a shape that contradicts the graph. */
function bindDims(ins: readonly Tensor[], feeds: ReadonlyMap<string, Value>): Map<string, number> {
  const b = new Map<string, number>();
  for (const t of ins) {
    if (t.source.kind !== "input") continue;
    const name = t.source.name;
    const v = feeds.get(name);
    if (v === undefined) throw new InputError(`evaluate: no value fed for input '${name}' ${t.typeString}`);
    if (v.shape.length !== t.rank) {
      throw new InputError(`evaluate: input '${name}' expects ${t.typeString}, got ${fmtShape(v.shape)}`);
    }
    t.shape.forEach((d, i) => {
      const got = v.shape[i] ?? -1;
      if (typeof d === "number") {
        if (d !== got) throw new InputError(`evaluate: input '${name}' expects ${t.typeString}, got ${fmtShape(v.shape)}`);
      } else if (!d.includes("*")) {
        const prev = b.get(d);
        if (prev !== undefined && prev !== got) throw new InputError(`evaluate: dim ${d} is ${prev} in one input and ${got} in '${name}'`);
        b.set(d, got);
      }
    });
  }
  return b;
}

/** Evaluates `outputs` given values for the graph inputs (by name). */
export function evaluate(outputs: readonly Tensor[], feeds: ReadonlyMap<string, Value> | Record<string, Value>): Value[] {
  const fm = feeds instanceof Map ? feeds : new Map(Object.entries(feeds));
  const ins = leaves(outputs);
  const dims = bindDims(ins, fm);
  const vals = new Map<number, Value>();
  for (const t of ins) {
    if (t.source.kind === "input") {
      const v = fm.get(t.source.name) as Value;
      vals.set(t.id, { dtype: t.dtype, shape: v.shape, data: Float64Array.from(v.data, (x) => roundTo(t.dtype, x)) });
    } else if (t.source.kind === "constant") {
      vals.set(t.id, { dtype: t.dtype, shape: resolveShape(t.shape, dims), data: t.source.values });
    }
  }
  for (const n of topoNodes(outputs)) evalNode(n, vals, dims);
  return outputs.map((t) => vals.get(t.id) as Value);
}

function evalNode(n: Node, vals: Map<number, Value>, dims: ReadonlyMap<string, number>): void {
  const args = n.inputs.map((t) => vals.get(t.id) as Value);
  const outShapes = n.outputs.map((t) => resolveShape(t.shape, dims));
  const rule = RULES[n.op] as unknown as Rule<Op>;
  const datas = rule.evaluate(args, n.attrs, outShapes);
  n.outputs.forEach((t, i) => {
    const data = datas[i] as Float64Array;
    const shape = outShapes[i] as number[];
    if (data.length !== numel(shape)) {
      throw new InputError(`evaluate: ${n.op} produced ${data.length} values for shape ${fmtShape(shape)}`);
    }
    vals.set(t.id, { dtype: t.dtype, shape, data });
  });
}
