/** A readable text form of a graph, one line per node, for debugging and golden snapshot tests. */
import { fmtShape } from "./shape.js";
import { type Tensor, leaves, topoNodes } from "./tensor.js";

function fmtAttr(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(fmtAttr).join(",")}]`;
  if (typeof v === "number" && !Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  return String(v);
}

/**
 * Prints the graph computing `outputs`. Values are numbered in order of appearance (%0, %1, …),
 * so the text does not depend on how many tensors were created before.
 */
export function printGraph(outputs: Readonly<Record<string, Tensor>>): string {
  const outs = Object.values(outputs);
  const names = new Map<number, string>();
  const lines: string[] = [];
  let next = 0;
  const ty = (t: Tensor): string => `${t.dtype}${fmtShape(t.shape)}`;
  for (const t of leaves(outs)) {
    if (t.source.kind === "input") {
      names.set(t.id, t.source.name);
      lines.push(`input ${t.source.name}: ${ty(t)}`);
    } else if (t.source.kind === "constant") {
      const n = `%${next++}`;
      names.set(t.id, n);
      const vals = [...t.source.values.slice(0, 6)].map(fmtAttr).join(",");
      lines.push(`${n} = const ${ty(t)} [${vals}${t.source.values.length > 6 ? ",…" : ""}]`);
    }
  }
  for (const node of topoNodes(outs)) {
    const res = node.outputs.map((o) => {
      const n = `%${next++}`;
      names.set(o.id, n);
      return n;
    });
    const args = node.inputs.map((i) => names.get(i.id) ?? "?").join(", ");
    const attrs = Object.entries(node.attrs as Record<string, unknown>).map(([k, v]) => `${k}=${fmtAttr(v)}`);
    const at = attrs.length > 0 ? ` {${attrs.join(", ")}}` : "";
    const lbl = node.label !== undefined ? `  # ${node.label}` : "";
    lines.push(`${res.join(", ")} = ${node.op}(${args})${at} : ${node.outputs.map(ty).join(", ")}${lbl}`);
  }
  for (const [k, t] of Object.entries(outputs)) lines.push(`output ${k} = ${names.get(t.id) ?? "?"}`);
  return lines.join("\n") + "\n";
}
