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
}

/** The parameters a model declared, by key: the graph inputs the weights are bound to. */
export class ParamRegistry {
  /** Graph input of each parameter (in its storage dtype). */
  readonly params = new Map<string, Tensor>();
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
}
