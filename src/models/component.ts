/** A model component (text encoder, U-Net, VAE half) built from its module code, bound to checkpoint weights and compiled. */
import { createHash } from "node:crypto";
import { ShapeError } from "../errors.js";
import { type CompiledGraph, compile } from "../graph/compile.js";
import type { DType } from "../graph/dtype.js";
import type { Tensor } from "../graph/tensor.js";
import type { Provider } from "../runtime/providers.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import { openModelDir } from "../runtime/model-cache.js";
import { type WeightMap, checkWeights, externalInitializers, inlineInitializers, paramBytes, storageDtype } from "./weights.js";

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
}

/** Largest weight total "auto" still binds inline. */
export const INLINE_LIMIT = 200 * 2 ** 20;

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
  const mode = opts.weights ?? "auto";
  const provider = opts.provider ? { provider: opts.provider } : {};
  if (mode === "inline" || (mode === "auto" && paramBytes(registry.params) < INLINE_LIMIT)) {
    return compile(outputs, { name, initializers: await inlineInitializers(registry.params, weights), ...provider });
  }
  const used = new Set([...registry.params.keys()].flatMap((k) => weights.get(k)?.file.path ?? []));
  const dir = await openModelDir([...used], opts.cacheDir === undefined ? {} : { root: opts.cacheDir });
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/-+$/, "");
  const stem = safe(name); // "unet[2x4x64x64x77]" → "unet-2x4x64x64x77"
  const initializers = await externalInitializers(registry.params, weights, dir, safe(name.split("[")[0] ?? name));
  // The file name carries a hash of the bytes, so processes with other graph code never share one.
  const saveModel = (bytes: Uint8Array) => dir.writeModel(`${stem}-${createHash("sha256").update(bytes).digest("hex").slice(0, 12)}.onnx`, bytes);
  return compile(outputs, { name, initializers, saveModel, ...provider });
}
