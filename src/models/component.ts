/** A model component (text encoder, U-Net, VAE half) built from its module code, bound to checkpoint weights and compiled. */
import { ShapeError } from "../errors.js";
import { type CompiledGraph, compile } from "../graph/compile.js";
import type { DType } from "../graph/dtype.js";
import type { Tensor } from "../graph/tensor.js";
import type { Provider } from "../runtime/providers.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import { openModelDir } from "../runtime/model-cache.js";
import { type WeightMap, checkWeights, externalInitializers, inlineInitializers, storageDtype, weightBytes } from "./weights.js";

/** Options of `loadComponent`. */
export interface ComponentOptions {
  readonly provider?: Provider;
  /** dtype the graph computes in (default float32). */
  readonly compute?: DType;
  /** LoRA branches to build: module path → total rank (see nn/lora.ts); their factors become graph inputs. */
  readonly loraRanks?: ReadonlyMap<string, number>;
  /**
   * How weights reach onnxruntime: "inline" copies them into the model bytes; "external" leaves
   * them in the checkpoint (hard-linked into a cache folder, see runtime/model-cache.ts) for
   * onnxruntime to map; "auto" (default) is external from INLINE_LIMIT bytes, since protobuf
   * caps a model at 2 GB and inline weights are copied several times while loading.
   */
  readonly weights?: "auto" | "inline" | "external";
  /** Cache root for external weights (default `$SDTS_CACHE` or `~/.cache/sdts`). */
  readonly cacheDir?: string;
  /**
   * External F16 weights of a float32 graph: "widen" (default) converts them once into a float32
   * data file of the cache folder; "keep" binds them as stored, behind a Cast. onnxruntime folds
   * each such Cast into a float32 copy while loading and holds both meanwhile: for the SD 1.5
   * U-Net that made the load peak 6.4 GiB instead of 3.7 GiB, for 3.4 GB of disk.
   */
  readonly halfWeights?: "widen" | "keep";
}

/**
 * Largest weight total "auto" still binds inline. Measured with SD 1.5's VAE decoder (99 MB of
 * F16): inline 3.6–4.5 s per load; external 4.6 s on the first load, 0.44 s from the saved
 * optimized copy after. Below this, the cache files are not worth their disk.
 */
export const INLINE_LIMIT = 64 * 2 ** 20;

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
  const mode = opts.weights ?? "auto";
  const external = mode === "external" || (mode === "auto" && weightBytes(weights) >= INLINE_LIMIT);
  const compute = opts.compute ?? "float32";
  const widen = external && compute === "float32" && opts.halfWeights !== "keep";
  const registry = new ParamRegistry({
    storage: (key) => {
      const ref = weights.get(key);
      return ref === undefined || widen ? "float32" : storageDtype(ref);
    },
    compute,
    ...(opts.loraRanks ? { loraRanks: opts.loraRanks } : {}),
  });
  const outputs = build(Scope.root(registry));
  const stray = [...(opts.loraRanks?.keys() ?? [])].filter((p) => !registry.modules.has(p));
  if (stray.length > 0) throw new ShapeError(`${name}: LoRA targets no Linear/Conv2d of the model: ${stray.slice(0, 5).join(", ")}${stray.length > 5 ? ", …" : ""}`);
  checkWeights(name, registry.params, weights);
  const provider = opts.provider ? { provider: opts.provider } : {};
  if (!external) {
    return compile(outputs, { name, initializers: await inlineInitializers(registry.params, weights), ...provider });
  }
  const used = new Set([...registry.params.keys()].flatMap((k) => weights.get(k)?.file.path ?? []));
  const dir = await openModelDir([...used], opts.cacheDir === undefined ? {} : { root: opts.cacheDir });
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/-+$/, "");
  const stem = safe(name); // "unet[2x4x64x64x77]" → "unet-2x4x64x64x77"
  const initializers = await externalInitializers(registry.params, weights, dir, safe(name.split("[")[0] ?? name));
  // Files are named by a hash of the model bytes, so processes with other graph code never share one.
  // A graph with LoRA branches is one of many combinations: its optimized copy is not kept.
  const keep = (opts.loraRanks?.size ?? 0) === 0;
  return compile(outputs, { name, initializers, openSession: (bytes, o) => dir.openSession(stem, bytes, o, keep), ...provider });
}
