/** Lowers a graph to an ONNX ModelProto: one ONNX node (or a few) per IR node, via each op's lowering rule. */
import { ShapeError } from "../../errors.js";
import type { DType } from "../dtype.js";
import { ONNX_DTYPE, encodeValues } from "../dtype.js";
import type { Op } from "../op.js";
import type { LowerCtx, OnnxAttrValue, Rule } from "../rule.js";
import { RULES } from "../rules/index.js";
import type { Dim } from "../shape.js";
import { type Tensor, leaves, topoNodes } from "../tensor.js";
import type { OnnxAttr, OnnxElemType, OnnxNode, OnnxTensor, OnnxValueInfo } from "./proto.js";
import { encodeModel } from "./proto.js";

/** Where an input's value lives when it is baked into the model instead of fed. */
export type InitializerData =
  | { readonly kind: "inline"; readonly bytes: Uint8Array }
  /** A byte range of a file in the model's folder (e.g. inside a .safetensors checkpoint). */
  | { readonly kind: "external"; readonly location: string; readonly offset: number; readonly length: number };

/** Export options. */
export interface ExportOptions {
  readonly name?: string;
  readonly opset?: number;
  /** Inputs (by name) stored in the model as initializers instead of graph inputs. */
  readonly initializers?: ReadonlyMap<string, InitializerData>;
}

/** An exported model and the signature of its graph inputs and outputs. */
export interface ExportedModel {
  readonly bytes: Uint8Array;
  readonly inputs: readonly { name: string; dtype: DType; shape: readonly Dim[] }[];
  readonly outputs: readonly { name: string; dtype: DType; shape: readonly Dim[] }[];
}

/** The ONNX opset the lowering rules target. */
export const OPSET = 21;

const elem = (d: DType): OnnxElemType => ONNX_DTYPE[d] as OnnxElemType;

function toAttr(name: string, v: OnnxAttrValue): OnnxAttr {
  if (typeof v === "string") return { name, type: "string", value: v };
  if (typeof v === "number") return Number.isInteger(v) ? { name, type: "int", value: v } : { name, type: "float", value: v };
  if ("float" in v) return { name, type: "float", value: v.float };
  if ("floats" in v) return { name, type: "floats", value: v.floats };
  return { name, type: "ints", value: v };
}

class Lowering implements LowerCtx {
  readonly nodes: OnnxNode[] = [];
  readonly inits: OnnxTensor[] = [];
  /** Non-standard operator sets the nodes use. */
  readonly domains = new Set<string>();
  private readonly consts = new Map<string, string>();
  private tempCount = 0;
  constructor(private readonly dimSource: ReadonlyMap<string, { input: string; axis: number }>) {}

  emit(opType: string, inputs: readonly string[], outputs: readonly string[], attrs?: Record<string, OnnxAttrValue>, domain?: string): void {
    const list = Object.entries(attrs ?? {}).map(([k, v]) => toAttr(k, v));
    const node = { opType, inputs, outputs, attrs: list, name: `${opType}_${this.nodes.length}` };
    if (domain !== undefined) this.domains.add(domain);
    this.nodes.push(domain === undefined ? node : { ...node, domain });
  }
  private constTensor(d: DType, values: readonly number[], dims: readonly number[]): string {
    const key = `${d}:${dims.join(",")}:${values.join(",")}`;
    const hit = this.consts.get(key);
    if (hit !== undefined) return hit;
    const name = `k${this.consts.size}_${d}`;
    this.inits.push({ name, elemType: elem(d), dims, raw: encodeValues(d, values) });
    this.consts.set(key, name);
    return name;
  }
  int64(values: readonly number[]): string {
    return this.constTensor("int64", values, [values.length]);
  }
  float32(values: readonly number[]): string {
    return this.constTensor("float32", values, [values.length]);
  }
  temp(hint: string): string {
    return `${hint}_tmp${this.tempCount++}`;
  }
  shape(dims: readonly Dim[]): string {
    if (dims.every((d) => typeof d === "number")) return this.int64(dims as number[]);
    const parts = dims.map((d) => (typeof d === "number" ? this.int64([d]) : this.symbolic(d)));
    const out = this.temp("shape");
    this.emit("Concat", parts, [out], { axis: 0 });
    return out;
  }
  /** A 1-element INT64 tensor holding a symbolic monomial, read from the inputs' shapes at run time. */
  private symbolic(d: string): string {
    let acc: string | undefined;
    let coef = 1;
    for (const part of d.split("*")) {
      if (/^\d+$/.test(part)) {
        coef *= Number(part);
        continue;
      }
      const src = this.dimSource.get(part);
      if (src === undefined) throw new ShapeError(`export: symbolic dim '${part}' appears in no graph input`);
      const v = this.temp(`dim_${part}`);
      this.emit("Shape", [src.input], [v], { start: src.axis, end: src.axis + 1 });
      if (acc === undefined) acc = v;
      else {
        const m = this.temp("dim_mul");
        this.emit("Mul", [acc, v], [m]);
        acc = m;
      }
    }
    if (acc === undefined) return this.int64([coef]);
    if (coef === 1) return acc;
    const m = this.temp("dim_coef");
    this.emit("Mul", [acc, this.int64([coef])], [m]);
    return m;
  }
  addInit(t: OnnxTensor): void {
    this.inits.push(t);
  }
}

function valueName(t: Tensor): string {
  return t.source.kind === "input" ? t.source.name : `v${t.id}`;
}

/** Lowers the graph computing `outputs` (by name) to ONNX bytes. */
export function exportOnnx(outputs: Readonly<Record<string, Tensor>>, opts: ExportOptions = {}): ExportedModel {
  const outs = Object.values(outputs);
  const ins = leaves(outs);
  const dimSource = new Map<string, { input: string; axis: number }>();
  const graphInputs: ExportedModel["inputs"][number][] = [];
  const inits = opts.initializers ?? new Map<string, InitializerData>();
  const low = new Lowering(dimSource);
  const seenNames = new Set<string>();
  for (const t of ins) {
    if (t.source.kind === "constant") {
      low.addInit({ name: valueName(t), elemType: elem(t.dtype), dims: t.shape as number[], raw: encodeValues(t.dtype, t.source.values) });
      continue;
    }
    const name = t.source.kind === "input" ? t.source.name : "";
    if (seenNames.has(name)) throw new ShapeError(`export: two different graph inputs are named '${name}'`);
    seenNames.add(name);
    const init = inits.get(name);
    if (init !== undefined) {
      if (!t.shape.every((d) => typeof d === "number")) throw new ShapeError(`export: initializer '${name}' needs a concrete shape`);
      const dims = t.shape as number[];
      low.addInit(init.kind === "inline" ? { name, elemType: elem(t.dtype), dims, raw: init.bytes } : { name, elemType: elem(t.dtype), dims, external: init });
      continue;
    }
    graphInputs.push({ name, dtype: t.dtype, shape: t.shape });
    t.shape.forEach((d, axis) => {
      if (typeof d === "string" && !d.includes("*") && !dimSource.has(d)) dimSource.set(d, { input: name, axis });
    });
  }
  for (const n of topoNodes(outs)) {
    const rule = RULES[n.op] as unknown as Rule<Op>;
    rule.lower(low, n, n.inputs.map(valueName), n.outputs.map(valueName));
  }
  const graphOutputs = Object.entries(outputs).map(([name, t]) => {
    low.emit("Identity", [valueName(t)], [name]);
    return { name, dtype: t.dtype, shape: t.shape };
  });
  const vi = (v: { name: string; dtype: DType; shape: readonly Dim[] }): OnnxValueInfo => ({ name: v.name, elemType: elem(v.dtype), dims: v.shape });
  const bytes = encodeModel({
    opsetVersion: opts.opset ?? OPSET,
    extraOpsets: [...low.domains].map((domain) => ({ domain, version: 1 })),
    producerName: "sdts",
    graph: { name: opts.name ?? "sdts", nodes: low.nodes, inputs: graphInputs.map(vi), outputs: graphOutputs.map(vi), initializers: low.inits },
  });
  return { bytes, inputs: graphInputs, outputs: graphOutputs };
}
