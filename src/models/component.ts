/** A model component (text encoder, U-Net, VAE half) built from its module code, bound to checkpoint weights and compiled. */
import { ShapeError } from "../errors.js";
import { type CompiledGraph, compile } from "../graph/compile.js";
import type { DType } from "../graph/dtype.js";
import type { Tensor } from "../graph/tensor.js";
import type { Provider } from "../runtime/providers.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import { type WeightMap, checkWeights, inlineInitializers, storageDtype } from "./weights.js";

/** Options of `loadComponent`. */
export interface ComponentOptions {
  readonly provider?: Provider;
  /** dtype the graph computes in (default float32). */
  readonly compute?: DType;
  /** LoRA branches to build: module path → total rank (see nn/lora.ts); their factors become graph inputs. */
  readonly loraRanks?: ReadonlyMap<string, number>;
}

/**
 * Builds the graph (`build` declares parameters on the root scope and returns named outputs),
 * checks the weights strictly against the declared parameters and compiles it with them bound.
 */
export async function loadComponent(
  name: string,
  build: (root: Scope) => Record<string, Tensor>,
  weights: WeightMap,
  opts: ComponentOptions = {},
): Promise<CompiledGraph> {
  const registry = new ParamRegistry({
    storage: (key) => {
      const ref = weights.get(key);
      return ref === undefined ? "float32" : storageDtype(ref);
    },
    compute: opts.compute ?? "float32",
    ...(opts.loraRanks ? { loraRanks: opts.loraRanks } : {}),
  });
  const outputs = build(Scope.root(registry));
  const stray = [...(opts.loraRanks?.keys() ?? [])].filter((p) => !registry.modules.has(p));
  if (stray.length > 0) throw new ShapeError(`${name}: LoRA targets no Linear/Conv2d of the model: ${stray.slice(0, 5).join(", ")}${stray.length > 5 ? ", …" : ""}`);
  checkWeights(name, registry.params, weights);
  const initializers = await inlineInitializers(registry.params, weights);
  return compile(outputs, { name, initializers, ...(opts.provider ? { provider: opts.provider } : {}) });
}
