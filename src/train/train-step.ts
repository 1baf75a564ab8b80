/**
 * One training step as one onnxruntime run: forward, backward (grad) and the AdamW update in a
 * single graph; (params, moments, batch) → (loss, new params, new moments).
 *
 * Parameters and moments cross the runtime boundary as a few flat vectors (per dtype, frozen and
 * trainable apart, at most 16 MiB each) rather than one tensor per key: the graph splits them into the model's
 * tensors. A U-Net has hundreds of tensors; on a GPU each one fed or fetched is a transfer of
 * its own, which cost ~80% of a step before (bench:train on WebGPU), and on a CPU it saves the
 * Concat and Split the update did on every step.
 */
import { InputError } from "../errors.js";
import { input, substitute } from "../graph/apply.js";
import type { DType } from "../graph/dtype.js";
import { type CompiledGraph, compile } from "../graph/compile.js";
import { grad } from "../graph/grad.js";
import * as g from "../graph/ops.js";
import { numel } from "../graph/shape.js";
import type { Tensor } from "../graph/tensor.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import { zerosTensor } from "../runtime/host-tensor.js";
import type { Provider } from "../runtime/providers.js";
import { ADAMW_DEFAULTS, type AdamWConfig, adamNames, adamwFlat } from "./adamw.js";

/** Options of a training step. */
export interface TrainStepOptions {
  readonly name?: string;
  readonly provider?: Provider;
  readonly optimizer?: AdamWConfig;
  /** Keys that are updated; every other parameter is frozen (fed, not updated). Default: all. */
  readonly trainable?: ReadonlySet<string>;
  /** More tensors to return from each step (e.g. metrics), by name. */
  readonly extraOutputs?: Readonly<Record<string, Tensor>>;
}

/** Parameters of one dtype, frozen or trainable, laid end to end in key order (up to MAX_FLAT_ELEMENTS). */
export interface FlatGroup {
  /** `train.<dtype>.<i>` or `frozen.<dtype>.<i>`. */
  readonly name: string;
  readonly dtype: DType;
  readonly trainable: boolean;
  readonly keys: readonly string[];
  readonly shapes: readonly (readonly number[])[];
  /** Start of each key in the flat vector. */
  readonly offsets: readonly number[];
  readonly size: number;
}

/** Graph input and output names of a flat group. */
export const flatNames = {
  param: (group: string) => `flat.${group}`,
  m: (group: string) => `adam.m.${group}`,
  v: (group: string) => `adam.v.${group}`,
  newParam: (group: string) => `new.flat.${group}`,
  newM: (group: string) => `new.adam.m.${group}`,
  newV: (group: string) => `new.adam.v.${group}`,
};

/** The outputs of a step graph, the keys it trains and the flat groups it is fed. */
export interface TrainStepGraph {
  readonly outputs: Record<string, Tensor>;
  readonly trainable: readonly string[];
  readonly groups: readonly FlatGroup[];
}

/**
 * Most elements in one flat vector (4 Mi, 16 MiB of float32). A larger vector is a fresh mmap
 * for every output onnxruntime-node hands back (glibc recycles freed blocks only up to 32 MiB),
 * whose page faults made a 10M-parameter MLP's step ~15% slower than with per-key tensors
 * (bench:engine); a key larger than this gets a vector of its own.
 */
const MAX_FLAT_ELEMENTS = 4 * 2 ** 20;

function flatGroups(params: ReadonlyMap<string, Tensor>, isTrainable: (k: string) => boolean): FlatGroup[] {
  const by = new Map<string, { dtype: DType; trainable: boolean; keys: string[] }>();
  for (const [k, t] of params) {
    const trainable = isTrainable(k);
    const kind = `${trainable ? "train" : "frozen"}.${t.dtype}`;
    const gr = by.get(kind) ?? { dtype: t.dtype, trainable, keys: [] };
    gr.keys.push(k);
    by.set(kind, gr);
  }
  const groups: FlatGroup[] = [];
  for (const [kind, gr] of by) {
    let chunk: { keys: string[]; shapes: number[][]; offsets: number[]; size: number } | undefined;
    let index = 0;
    const close = () => {
      if (chunk === undefined) return;
      groups.push({ name: `${kind}.${index++}`, dtype: gr.dtype, trainable: gr.trainable, ...chunk });
      chunk = undefined;
    };
    for (const k of gr.keys) {
      const shape = (params.get(k) as Tensor).shape as number[];
      const n = numel(shape);
      if (chunk !== undefined && chunk.size + n > MAX_FLAT_ELEMENTS) close();
      chunk ??= { keys: [], shapes: [], offsets: [], size: 0 };
      chunk.keys.push(k);
      chunk.shapes.push(shape);
      chunk.offsets.push(chunk.size);
      chunk.size += n;
    }
    close();
  }
  return groups;
}

/** Builds the step graph: loss, grad norm, new params and moments of every trainable group. */
export function buildTrainStep(loss: Tensor, params: ReadonlyMap<string, Tensor>, opts: TrainStepOptions = {}): TrainStepGraph {
  for (const k of opts.trainable ?? []) {
    if (!params.has(k)) throw new InputError(`trainable key '${k}' is not a parameter of this model`);
  }
  const groups = flatGroups(params, (k) => opts.trainable === undefined || opts.trainable.has(k));
  // Each parameter becomes a piece of its group's flat input.
  const flat = new Map<string, Tensor>();
  const replace = new Map<Tensor, Tensor>();
  for (const gr of groups) {
    const f = input(flatNames.param(gr.name), gr.dtype, [gr.size]);
    flat.set(gr.name, f);
    const sizes = gr.shapes.map((s) => numel(s as number[]));
    const parts = sizes.length === 1 ? [f] : g.split(f, sizes, 0);
    gr.keys.forEach((k, i) => replace.set(params.get(k) as Tensor, g.reshape(parts[i] as Tensor, gr.shapes[i] as number[])));
  }
  const extraNames = Object.keys(opts.extraOutputs ?? {});
  const [lossF, ...extras] = substitute([loss, ...extraNames.map((n) => opts.extraOutputs?.[n] as Tensor)], replace) as [Tensor, ...Tensor[]];
  const trainGroups = groups.filter((gr) => gr.trainable);
  const grads = grad(lossF, new Map(trainGroups.map((gr) => [gr.name, flat.get(gr.name) as Tensor])));
  const upd = adamwFlat(
    trainGroups.map((gr) => {
      const p = flat.get(gr.name) as Tensor;
      return {
        param: p,
        // a group the loss does not reach still gets its decay
        grad: grads.get(gr.name) ?? g.mul(p, 0),
        m: input(flatNames.m(gr.name), gr.dtype, [gr.size]),
        v: input(flatNames.v(gr.name), gr.dtype, [gr.size]),
      };
    }),
    opts.optimizer ?? ADAMW_DEFAULTS,
  );
  const outputs: Record<string, Tensor> = { loss: lossF, gradNorm: upd.gradNorm };
  extraNames.forEach((n, i) => (outputs[n] = extras[i] as Tensor));
  trainGroups.forEach((gr, i) => {
    const u = upd.groups[i] as { param: Tensor; m: Tensor; v: Tensor };
    outputs[flatNames.newParam(gr.name)] = u.param;
    outputs[flatNames.newM(gr.name)] = u.m;
    outputs[flatNames.newV(gr.name)] = u.v;
  });
  return { outputs, trainable: trainGroups.flatMap((gr) => gr.keys), groups };
}

/** Optimizer state: the step count and both moments per trainable key. */
export interface OptimizerState {
  readonly step: number;
  readonly m: ReadonlyMap<string, HostTensor>;
  readonly v: ReadonlyMap<string, HostTensor>;
}

/** Result of one step. */
export interface StepResult {
  readonly loss: number;
  readonly gradNorm: number;
  readonly extra: Record<string, HostTensor>;
}

function scalarF32(x: number): HostTensor {
  return { dtype: "float32", shape: [], data: Float32Array.of(x) };
}

/** One flat vector from per-key tensors (zeros for keys missing from `values` when `zeroMissing`). */
export function packGroup(gr: FlatGroup, values: ReadonlyMap<string, HostTensor>, what: string, zeroMissing = false): HostTensor {
  const out = zerosTensor(gr.dtype as HostTensor["dtype"], [gr.size]);
  gr.keys.forEach((k, i) => {
    const v = values.get(k);
    if (v === undefined) {
      if (zeroMissing) return;
      throw new InputError(`no ${what} for parameter '${k}'`);
    }
    if (v.dtype !== out.dtype) throw new InputError(`${what} of '${k}' is ${v.dtype}, the parameter is ${out.dtype}`);
    (out.data as Float32Array).set(v.data as Float32Array, gr.offsets[i]);
  });
  return out;
}

/** Per-key views into a group's flat vector (no copies). */
function unpackGroup(gr: FlatGroup, flat: HostTensor, into: Map<string, HostTensor>): void {
  gr.keys.forEach((k, i) => {
    const shape = gr.shapes[i] as number[];
    const start = gr.offsets[i] as number;
    into.set(k, { dtype: flat.dtype, shape, data: (flat.data as Float32Array).subarray(start, start + numel(shape)) } as HostTensor);
  });
}

/** Holds parameters and optimizer state on the host and runs compiled steps. */
export class Trainer {
  private readonly inputs: ReadonlySet<string>;
  private views: { params: Map<string, HostTensor>; m: Map<string, HostTensor>; v: Map<string, HostTensor> } | undefined;
  private constructor(
    private readonly graph: CompiledGraph,
    readonly trainable: readonly string[],
    private readonly groups: readonly FlatGroup[],
    /** Flat parameters, and moments of trainable groups, by group name. */
    private readonly flat: Map<string, { param: HostTensor; m?: HostTensor; v?: HostTensor }>,
    private stepCount: number,
    private readonly extraNames: readonly string[],
  ) {
    this.inputs = new Set(graph.model.inputs.map((i) => i.name));
  }

  /** Compiles the step and takes initial parameter values (and optionally a saved optimizer state). */
  static async create(
    loss: Tensor,
    params: ReadonlyMap<string, Tensor>,
    values: ReadonlyMap<string, HostTensor>,
    opts: TrainStepOptions & { readonly state?: OptimizerState } = {},
  ): Promise<Trainer> {
    for (const [k, t] of params) {
      const v = values.get(k);
      if (v === undefined) throw new InputError(`no initial value for parameter '${k}'`);
      if (v.shape.length !== t.rank || v.shape.some((d, i) => d !== t.shape[i])) {
        throw new InputError(`parameter '${k}' expects shape [${t.shape.join(",")}], got [${v.shape.join(",")}]`);
      }
    }
    const step = buildTrainStep(loss, params, opts);
    const graph = await compile(step.outputs, { name: opts.name ?? "train-step", ...(opts.provider ? { provider: opts.provider } : {}) });
    const flat = new Map<string, { param: HostTensor; m?: HostTensor; v?: HostTensor }>();
    for (const gr of step.groups) {
      const param = packGroup(gr, values, "initial value");
      flat.set(gr.name, gr.trainable ? { param, m: packGroup(gr, opts.state?.m ?? new Map(), "first moment", true), v: packGroup(gr, opts.state?.v ?? new Map(), "second moment", true) } : { param });
    }
    return new Trainer(graph, step.trainable, step.groups, flat, opts.state?.step ?? 0, Object.keys(opts.extraOutputs ?? {}));
  }

  private unpacked(): NonNullable<Trainer["views"]> {
    if (this.views === undefined) {
      const views = { params: new Map<string, HostTensor>(), m: new Map<string, HostTensor>(), v: new Map<string, HostTensor>() };
      for (const gr of this.groups) {
        const f = this.flat.get(gr.name);
        if (f === undefined) continue;
        unpackGroup(gr, f.param, views.params);
        if (f.m) unpackGroup(gr, f.m, views.m);
        if (f.v) unpackGroup(gr, f.v, views.v);
      }
      this.views = views;
    }
    return this.views;
  }

  /** Current parameter values (trainable and frozen), by key: views into the flat vectors, valid until the next step replaces them. */
  get params(): ReadonlyMap<string, HostTensor> {
    return this.unpacked().params;
  }

  /** The step count and both moments per trainable key (views, as `params`). */
  get state(): OptimizerState {
    const u = this.unpacked();
    return { step: this.stepCount, m: u.m, v: u.v };
  }

  /** Runs one step on a batch (feeds by input name) with learning rate `lr`. */
  async step(batch: Readonly<Record<string, HostTensor>>, lr: number): Promise<StepResult> {
    const feeds: Record<string, HostTensor> = { ...batch, [adamNames.step]: scalarF32(this.stepCount + 1), [adamNames.lr]: scalarF32(lr) };
    for (const [name, f] of this.flat) {
      // (a frozen group the loss does not read is not an input of the graph)
      if (this.inputs.has(flatNames.param(name))) feeds[flatNames.param(name)] = f.param;
      if (f.m) feeds[flatNames.m(name)] = f.m;
      if (f.v) feeds[flatNames.v(name)] = f.v;
    }
    for (const i of this.inputs) if (feeds[i] === undefined) throw new InputError(`training step: no value for input '${i}'`);
    const out = await this.graph.run(feeds);
    for (const gr of this.groups) {
      if (!gr.trainable) continue;
      this.flat.set(gr.name, { param: out[flatNames.newParam(gr.name)] as HostTensor, m: out[flatNames.newM(gr.name)] as HostTensor, v: out[flatNames.newV(gr.name)] as HostTensor });
    }
    this.views = undefined;
    this.stepCount += 1;
    const num = (t: HostTensor | undefined): number => Number((t?.data as Float32Array | undefined)?.[0] ?? NaN);
    const extra = Object.fromEntries(this.extraNames.map((n) => [n, out[n] as HostTensor]));
    return { loss: num(out.loss), gradNorm: num(out.gradNorm), extra };
  }

  /** Releases the compiled step. */
  async dispose(): Promise<void> {
    await this.graph.dispose();
  }
}
