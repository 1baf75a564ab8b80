/** Parameter scopes: modules declare each parameter once, under its canonical (diffusers-layout) key. */
import { ShapeError } from "../errors.js";
import { input } from "../graph/apply.js";
import type { DType } from "../graph/dtype.js";
import * as g from "../graph/ops.js";
import { fmtShape } from "../graph/shape.js";
import type { Tensor } from "../graph/tensor.js";

/** How parameters enter the graph. */
export interface ScopeOptions {
  /** dtype of the stored weights by key (e.g. float16 checkpoints); default float32. */
  readonly storage?: (key: string) => DType;
  /** dtype the module computes in; stored weights of another dtype are cast. Default float32. */
  readonly compute?: DType;
  /**
   * LoRA side branches to add: module path ("…attn1.to_q") → total rank of the LoRAs on it.
   * Only the named Linear / Conv2d modules change; every other module builds exactly as without.
   */
  readonly loraRanks?: ReadonlyMap<string, number>;
}

/** A module a LoRA can target: its kind and shape, as `Linear` / `Conv2d` declare it. */
export interface AdaptableModule {
  readonly path: string;
  /** "linear" acts on the last dim (also 1×1-conv projections applied to tokens); "conv" on NCHW maps. */
  readonly kind: "linear" | "conv";
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Kernel size (1 for linear). */
  readonly kernel: number;
}

/** The parameters a model declared, by key: the graph inputs the weights are bound to. */
export class ParamRegistry {
  /** Graph input of each parameter (in its storage dtype). */
  readonly params = new Map<string, Tensor>();
  /** Graph inputs that are fed on every run rather than bound as weights (LoRA factors, extra token vectors). */
  readonly feeds = new Map<string, Tensor>();
  /** Every module that could carry a LoRA branch, by path. */
  readonly modules = new Map<string, AdaptableModule>();
  constructor(readonly options: ScopeOptions = {}) {}
}

/** A path in the parameter tree ("down_blocks.0.resnets.1"). */
export class Scope {
  private constructor(
    readonly path: string,
    private readonly registry: ParamRegistry,
  ) {}

  /** The root scope of a registry; `prefix` is prepended to every key. */
  static root(registry: ParamRegistry, prefix = ""): Scope {
    return new Scope(prefix, registry);
  }

  /** A child scope: `s.child("resnets").child(0)` → "…resnets.0". */
  child(name: string | number): Scope {
    return new Scope(this.path === "" ? String(name) : `${this.path}.${name}`, this.registry);
  }

  /** The key a parameter named `name` gets here. */
  key(name: string): string {
    return this.path === "" ? name : `${this.path}.${name}`;
  }

  /** Declares a parameter and returns it in the compute dtype. Declaring a key twice is an error. */
  param(name: string, shape: readonly number[]): Tensor {
    const key = this.key(name);
    const reg = this.registry;
    if (reg.params.has(key)) {
      throw new ShapeError(`parameter '${key}' declared twice (${fmtShape(shape)}); modules must declare each key once`);
    }
    const storage = reg.options.storage?.(key) ?? "float32";
    const t = input(key, storage, shape);
    reg.params.set(key, t);
    return g.cast(t, reg.options.compute ?? "float32");
  }

  /** Declares a float32 graph input fed on every run (not a weight) and returns it in the compute dtype. */
  feed(name: string, shape: readonly number[]): Tensor {
    const reg = this.registry;
    if (reg.feeds.has(name) || reg.params.has(name)) throw new ShapeError(`graph input '${name}' declared twice (${fmtShape(shape)})`);
    const t = input(name, "float32", shape);
    reg.feeds.set(name, t);
    return g.cast(t, reg.options.compute ?? "float32");
  }

  /** Records this scope as a LoRA-adaptable module and returns the rank planned for it (undefined: no branch). */
  adaptable(m: Omit<AdaptableModule, "path">): number | undefined {
    this.registry.modules.set(this.path, { path: this.path, ...m });
    return this.registry.options.loraRanks?.get(this.path);
  }
}
