/** Session-caching runners: one compiled graph per input shape, weights bound once per graph. */
import { InputError } from "../errors.js";
import type { CompiledGraph } from "../graph/compile.js";
import type { Tensor as GraphTensor } from "../graph/tensor.js";
import { toHost } from "../graph/host.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Provider } from "../runtime/providers.js";
import { loadComponent } from "../models/component.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import { type WeightMap, checkWeights } from "../models/weights.js";
import type { LoraPlan } from "../models/lora/lora.js";
import type { Tensor } from "./types.js";

/** Builds a component's graph for one input shape key. */
export type GraphBuilder = (root: Scope, shapeKey: readonly number[]) => Record<string, GraphTensor>;

/** Compiles a component lazily per shape and keeps the sessions until disposed. */
export class ShapeCache {
  private readonly graphs = new Map<string, Promise<CompiledGraph>>();
  private compiles = 0;
  constructor(
    private readonly name: string,
    private readonly build: GraphBuilder,
    private readonly weights: WeightMap,
    private readonly provider: Provider,
    private readonly maxShapes = 4,
  ) {}

  /** Checks the weights against the parameters the graph declares for `shapeKey`, without compiling (strict loading up front). */
  check(shapeKey: readonly number[]): void {
    const registry = new ParamRegistry();
    this.build(Scope.root(registry), shapeKey);
    checkWeights(this.name, registry.params, this.weights);
  }

  /**
   * The compiled graph for a shape key (compiled on first use). With a LoRA plan the graph has its
   * branches: one graph per plan signature (ranks per module), whatever the LoRAs' weights.
   */
  get(shapeKey: readonly number[], lora?: LoraPlan): Promise<CompiledGraph> {
    const k = shapeKey.join("x") + (lora ? `|lora:${lora.signature}` : "");
    let g = this.graphs.get(k);
    if (g === undefined) {
      if (this.graphs.size >= this.maxShapes) this.evictOldest();
      const name = `${this.name}[${shapeKey.join("x")}${lora ? `+${lora.ranks.size} LoRA` : ""}]`;
      const opts = { provider: this.provider, ...(lora ? { loraRanks: lora.ranks } : {}) };
      g = loadComponent(name, (root) => this.build(root, shapeKey), this.weights, opts);
      this.compiles++;
      g.catch(() => this.graphs.delete(k));
      this.graphs.set(k, g);
    } else {
      // refresh LRU order
      this.graphs.delete(k);
      this.graphs.set(k, g);
    }
    return g;
  }

  /** How many graphs this cache has compiled so far. */
  get compileCount(): number {
    return this.compiles;
  }

  private evictOldest(): void {
    const first = this.graphs.keys().next();
    if (first.done === true) return;
    const g = this.graphs.get(first.value);
    this.graphs.delete(first.value);
    void g?.then((c) => c.dispose()).catch(() => undefined);
  }

  /** Releases every session. */
  async dispose(): Promise<void> {
    const all = [...this.graphs.values()];
    this.graphs.clear();
    for (const g of all) await g.then((c) => c.dispose()).catch(() => undefined);
  }
}

/** A float32 host tensor from a pipeline tensor. */
export function hostF32(t: Tensor): HostTensor {
  return { dtype: "float32", shape: t.shape, data: t.data };
}

/** A pipeline tensor from a float32 host output. */
export function fromHost(h: HostTensor | undefined, what: string): Tensor {
  if (h === undefined || h.dtype !== "float32") throw new InputError(`${what}: graph returned no float32 output`);
  return { data: h.data, shape: [...h.shape] };
}

/** An int64 [B, L] host tensor of token ids. */
export function idsTensor(ids: number[][]): HostTensor {
  const l = ids[0]?.length ?? 0;
  if (ids.some((r) => r.length !== l)) throw new InputError("token id rows must all have the same length");
  return toHost("int64", [ids.length, l], ids.flat());
}

/** Host tensors of named float32 inputs (LoRA factors, embedding vectors), to add to a graph's feeds. */
export type ExtraFeeds = Readonly<Record<string, HostTensor>>;

/** The feeds of a LoRA plan as host tensors. */
export function loraFeeds(plan: LoraPlan | undefined): ExtraFeeds {
  const out: Record<string, HostTensor> = {};
  for (const [name, t] of plan?.feeds ?? []) out[name] = { dtype: "float32", shape: t.shape, data: t.data };
  return out;
}

/** `extra` restricted to the graph's inputs (a branch on a module the outputs do not use is pruned from the graph). */
export function graphFeeds(g: CompiledGraph, extra: ExtraFeeds): ExtraFeeds {
  const out: Record<string, HostTensor> = {};
  for (const { name } of g.model.inputs) {
    const t = extra[name];
    if (t !== undefined) out[name] = t;
  }
  return out;
}
