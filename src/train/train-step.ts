/**
 * One training step as one onnxruntime run: forward, backward (grad) and the AdamW update in a
 * single graph; (params, moments, batch) → (loss, new params, new moments).
 */
import { InputError } from "../errors.js";
import { type CompiledGraph, compile } from "../graph/compile.js";
import { grad } from "../graph/grad.js";
import type { Tensor } from "../graph/tensor.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import { zerosTensor } from "../runtime/host-tensor.js";
import type { Provider } from "../runtime/providers.js";
import { ADAMW_DEFAULTS, type AdamWConfig, adamNames, adamwUpdate } from "./adamw.js";

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

/** The outputs of a step graph and the keys it trains. */
export interface TrainStepGraph {
  readonly outputs: Record<string, Tensor>;
  readonly trainable: readonly string[];
}

/** Builds the step graph: loss, grad norm, new params and moments of every trainable key. */
export function buildTrainStep(loss: Tensor, params: ReadonlyMap<string, Tensor>, opts: TrainStepOptions = {}): TrainStepGraph {
  const trainable = [...params.keys()].filter((k) => opts.trainable === undefined || opts.trainable.has(k));
  for (const k of opts.trainable ?? []) {
    if (!params.has(k)) throw new InputError(`trainable key '${k}' is not a parameter of this model`);
  }
  const wrt = new Map(trainable.map((k) => [k, params.get(k) as Tensor]));
  const grads = grad(loss, wrt);
  const upd = adamwUpdate(wrt, grads, opts.optimizer ?? ADAMW_DEFAULTS);
  const outputs: Record<string, Tensor> = { loss, gradNorm: upd.gradNorm, ...opts.extraOutputs };
  for (const k of trainable) {
    outputs[adamNames.newParam(k)] = upd.params.get(k) as Tensor;
    outputs[adamNames.newM(k)] = upd.m.get(k) as Tensor;
    outputs[adamNames.newV(k)] = upd.v.get(k) as Tensor;
  }
  return { outputs, trainable };
}

/** Optimizer state: the step count and both moments per trainable key. */
export interface OptimizerState {
  step: number;
  readonly m: Map<string, HostTensor>;
  readonly v: Map<string, HostTensor>;
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

/** Holds parameters and optimizer state on the host and runs compiled steps. */
export class Trainer {
  private constructor(
    private readonly graph: CompiledGraph,
    readonly trainable: readonly string[],
    /** Current parameter values (trainable and frozen), by key. */
    readonly params: Map<string, HostTensor>,
    readonly state: OptimizerState,
    private readonly extraNames: readonly string[],
  ) {}

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
    const state = opts.state ?? { step: 0, m: new Map(), v: new Map() };
    for (const k of step.trainable) {
      const p = values.get(k) as HostTensor;
      if (!state.m.has(k)) state.m.set(k, zerosTensor(p.dtype, p.shape));
      if (!state.v.has(k)) state.v.set(k, zerosTensor(p.dtype, p.shape));
    }
    return new Trainer(graph, step.trainable, new Map(values), state, Object.keys(opts.extraOutputs ?? {}));
  }

  /** Runs one step on a batch (feeds by input name) with learning rate `lr`. */
  async step(batch: Readonly<Record<string, HostTensor>>, lr: number): Promise<StepResult> {
    const s = this.state;
    const feeds: Record<string, HostTensor> = { ...batch, [adamNames.step]: scalarF32(s.step + 1), [adamNames.lr]: scalarF32(lr) };
    const inputs = new Set(this.graph.model.inputs.map((i) => i.name));
    for (const [k, v] of this.params) if (inputs.has(k)) feeds[k] = v;
    for (const k of this.trainable) {
      feeds[adamNames.m(k)] = s.m.get(k) as HostTensor;
      feeds[adamNames.v(k)] = s.v.get(k) as HostTensor;
    }
    for (const i of inputs) if (feeds[i] === undefined) throw new InputError(`training step: no value for input '${i}'`);
    const out = await this.graph.run(feeds);
    for (const k of this.trainable) {
      this.params.set(k, out[adamNames.newParam(k)] as HostTensor);
      s.m.set(k, out[adamNames.newM(k)] as HostTensor);
      s.v.set(k, out[adamNames.newV(k)] as HostTensor);
    }
    s.step += 1;
    const num = (t: HostTensor | undefined): number => Number((t?.data as Float32Array | undefined)?.[0] ?? NaN);
    const extra = Object.fromEntries(this.extraNames.map((n) => [n, out[n] as HostTensor]));
    return { loss: num(out.loss), gradNorm: num(out.gradNorm), extra };
  }

  /** Releases the compiled step. */
  async dispose(): Promise<void> {
    await this.graph.dispose();
  }
}
