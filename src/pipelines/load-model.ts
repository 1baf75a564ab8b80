/** loadModel: a diffusers folder, a single-file .safetensors checkpoint, or the embedded default. */
import { join } from "node:path";
import { CheckpointError, ConfigError, InputError } from "../errors.js";
import { type SafetensorsFile, openSafetensors } from "../io/safetensors.js";
import { type CaptionPrior, readCaptionPrior } from "../models/clip/caption-prior.js";
import { type ClipTextConfig, detectClipTextConfig, parseClipTextConfig } from "../models/clip/config.js";
import { clipTextWeights, detectClipLayout, clipLayoutPrefix } from "../models/clip/keys.js";
import { type UNetConfig, parseUNetConfig } from "../models/unet/config.js";
import { SD_UNET_PREFIX, detectOriginalUNetConfig, unetWeights } from "../models/unet/keys.js";
import { type VaeConfig, detectVaeConfig, parseVaeConfig } from "../models/vae/config.js";
import { SD_VAE_PREFIX, vaeWeightsFromCompVis } from "../models/vae/keys.js";
import { type WeightMap, identityWeights } from "../models/weights.js";
import { SD15_SCHEDULER_SETTINGS } from "../schedulers/config.js";
import { getScheduler } from "../schedulers/samplers.js";
import type { Provider } from "../runtime/providers.js";
import { parseProvider } from "../runtime/providers.js";
import { loadTokenizer } from "./load-tokenizer.js";
import { Model, type ModelAddOns, type ModelInfo } from "./model.js";
import { loadEmbeddings, openLoraLibrary } from "./adapters.js";
import { loraTargets } from "../models/lora/keys.js";
import { makeComponents } from "./components.js";
import { componentWeights, readJsonIfExists, sourceKind } from "./sources.js";
import { defaultModelPath } from "./default-model.js";

/** Options of loadModel. */
export interface LoadModelOptions {
  readonly provider?: Provider;
  /** A tokenizer folder or file; wins over the model's own and the shipped CLIP vocabulary. */
  readonly tokenizer?: string;
  /** A folder of diffusers configs (unet/config.json or unet_config.json, vae…, text_encoder…, scheduler…) overriding what is inferred. */
  readonly config?: string;
  /** What the U-Net predicts; tensors cannot tell SD 2.x epsilon from v (default v there). */
  readonly prediction?: "epsilon" | "v";
  /** Folder of LoRA .safetensors files, searched (recursively) for `<lora:name:…>` and `loras: [{ name }]`. */
  readonly loraDir?: string;
  /** Folder of textual-inversion embeddings (.safetensors), all loaded now and used by file name in prompts. */
  readonly embeddingsDir?: string;
}

/** Parsed configs and weights of the three networks. */
export interface ModelParts {
  clip: ClipTextConfig;
  unet: UNetConfig;
  vae: VaeConfig;
  clipWeights: WeightMap;
  unetWeights: WeightMap;
  vaeWeights: WeightMap;
  scheduler: Record<string, unknown>;
  prediction: "epsilon" | "v";
  family: ModelInfo["family"];
  tokenizerPath: string | undefined;
  padToken: "!" | undefined;
  /** Sampling defaults the model folder names (model_index.json `_sdts_defaults`), if any. */
  defaults: ModelSamplingDefaults;
  /** The training captions' pooled states, for a U-Net that reads the pooled state (caption_prior/), if the folder has them. */
  captionPrior?: CaptionPrior;
  files: SafetensorsFile[];
}

/** What a model folder may set in model_index.json as `"_sdts_defaults": { "cfg_scale": 5, "sampler": "Euler a" }`. */
export interface ModelSamplingDefaults {
  readonly cfgScale?: number;
  readonly sampler?: string;
}

/** SD's CFG when the model names none. */
export const DEFAULT_CFG_SCALE = 7;

/** Reads and checks `_sdts_defaults` of a model_index.json; unknown keys are refused so a typo is not silently ignored. */
export function samplingDefaults(index: Record<string, unknown> | undefined, where: string): ModelSamplingDefaults {
  const d = index?._sdts_defaults;
  if (d === undefined) return {};
  if (typeof d !== "object" || d === null || Array.isArray(d)) throw new CheckpointError(`${where}: _sdts_defaults must be an object like { "cfg_scale": 5, "sampler": "Euler a" }`);
  const o = d as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => k !== "cfg_scale" && k !== "sampler");
  if (unknown.length > 0) throw new CheckpointError(`${where}: _sdts_defaults has unknown keys ${unknown.join(", ")} (it may hold cfg_scale and sampler)`);
  const cfg = o.cfg_scale;
  if (cfg !== undefined && !(typeof cfg === "number" && cfg >= 0 && cfg <= 100)) throw new CheckpointError(`${where}: _sdts_defaults.cfg_scale must be a number from 0 to 100 (got ${JSON.stringify(cfg)})`);
  const sampler = o.sampler;
  if (sampler !== undefined) {
    if (typeof sampler !== "string") throw new CheckpointError(`${where}: _sdts_defaults.sampler must be a sampler name such as "Euler a"`);
    try {
      getScheduler(sampler);
    } catch (e) {
      throw new CheckpointError(`${where}: _sdts_defaults.sampler: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { ...(cfg !== undefined ? { cfgScale: cfg as number } : {}), ...(sampler !== undefined ? { sampler: sampler as string } : {}) };
}

/** Loads a model for generation. `source`: a .safetensors file, a diffusers folder, or "default". */
export async function loadModel(source: string, opts: LoadModelOptions = {}): Promise<Model> {
  if (typeof source !== "string" || source === "") throw new InputError("loadModel needs a path to a .safetensors file or a diffusers folder, or 'default'");
  const provider = parseProvider(opts.provider ?? "cpu");
  if (opts.prediction !== undefined && opts.prediction !== "epsilon" && opts.prediction !== "v") {
    throw new InputError(`prediction must be 'epsilon' or 'v' (got ${String(opts.prediction)})`);
  }
  const path = source === "default" ? defaultModelPath() : source;
  const kind = sourceKind(path);
  if (kind === "ckpt") {
    throw new CheckpointError(`${path} is a PyTorch pickle; sdts never runs pickles, since they can execute code. Convert it to .safetensors first (e.g. A1111's or diffusers' conversion scripts, or the safetensors 'convert' tool) and load that`);
  }
  const parts = kind === "diffusers" ? await diffusersParts(path, opts) : await singleFileParts(path, opts);
  try {
    const ownTokenizer = opts.tokenizer ?? parts.tokenizerPath;
    const baseTokenizer = await loadTokenizer(ownTokenizer, ownTokenizer === undefined && parts.padToken === "!" ? { pad: "!" } : {});
    const name = source === "default" ? "default" : (path.split(/[\\/]/).filter(Boolean).pop() ?? path).replace(/\.safetensors$/i, "");
    const ti = opts.embeddingsDir === undefined ? undefined : await loadEmbeddings(opts.embeddingsDir, parts.clip.hiddenSize, parts.clip.vocabSize);
    const tokenizer = ti && ti.count > 0 ? baseTokenizer.withEmbeddings(ti.tokens) : baseTokenizer;
    const loras = await openLoraLibrary(() => loraTargets(parts.unet, parts.clip), opts.loraDir);
    const built = makeComponents(name, parts, tokenizer, provider, ti && ti.count > 0 ? { count: ti.count, table: ti.table } : undefined);
    const addOns: ModelAddOns = {
      loras,
      embeddings: ti?.list ?? { loaded: [], skipped: [] },
      withLoras: built.withLoras,
    };
    const info: ModelInfo = {
      name,
      source: path,
      family: source === "default" ? "default" : parts.family,
      prediction: parts.prediction,
      inpainting: parts.unet.inChannels === 9,
      configs: { unet: parts.unet, vae: parts.vae, textEncoder: parts.clip, scheduler: parts.scheduler },
    };
    const size = (parts.unet.sampleSize ?? (parts.family === "sd2" ? 96 : 64)) * 2 ** (parts.vae.blockOutChannels.length - 1);
    const defaults = { width: size, height: size, sampler: parts.defaults.sampler ?? "Euler a", cfgScale: parts.defaults.cfgScale ?? DEFAULT_CFG_SCALE };
    return new Model(info, built.components, defaults, async () => {
      await built.dispose();
      for (const f of parts.files) await f.close();
    }, addOns);
  } catch (e) {
    for (const f of parts.files) await f.close();
    throw e;
  }
}

function predictionFrom(sched: Record<string, unknown> | undefined): "epsilon" | "v" | undefined {
  const p = sched?.prediction_type;
  return p === "v_prediction" ? "v" : p === "epsilon" ? "epsilon" : undefined;
}

async function diffusersParts(dir: string, opts: LoadModelOptions): Promise<ModelParts> {
  const need = (sub: string) => {
    const cfg = readJsonIfExists(join(dir, sub, "config.json"));
    if (cfg === undefined) throw new CheckpointError(`${join(dir, sub)}: config.json is missing; is this a complete diffusers model folder?`);
    return cfg;
  };
  const clip = parseClipTextConfig(need("text_encoder"));
  const unet = parseUNetConfig(need("unet"));
  const vae = parseVaeConfig(need("vae"));
  const defaults = samplingDefaults(readJsonIfExists(join(dir, "model_index.json")), join(dir, "model_index.json"));
  const te = await openSafetensors(componentWeights(join(dir, "text_encoder"), "model"));
  const un = await identityWeights(componentWeights(join(dir, "unet"), "diffusion_pytorch_model"));
  const va = await identityWeights(componentWeights(join(dir, "vae"), "diffusion_pytorch_model"));
  const scheduler = readJsonIfExists(join(dir, "scheduler", "scheduler_config.json")) ?? { ...SD15_SCHEDULER_SETTINGS };
  const prediction = opts.prediction ?? predictionFrom(scheduler) ?? "epsilon";
  const captionPrior = unet.textContext === "pooled" ? await readCaptionPrior(dir, clip.hiddenSize) : undefined;
  return {
    ...(captionPrior ? { captionPrior } : {}),
    clip,
    unet,
    vae,
    clipWeights: clipTextWeights(te, clip, "diffusers"),
    unetWeights: un.weights,
    vaeWeights: va.weights,
    scheduler,
    prediction,
    family: clip.hiddenSize === 1024 ? "sd2" : "sd1",
    tokenizerPath: join(dir, "tokenizer"),
    padToken: undefined,
    defaults,
    files: [te, un.file, va.file],
  };
}

/** Reads `<name>_config.json` or `<name>/config.json` from a config override folder. */
function overrideConfig(folder: string | undefined, name: string): Record<string, unknown> | undefined {
  if (folder === undefined) return undefined;
  return readJsonIfExists(join(folder, `${name}_config.json`)) ?? readJsonIfExists(join(folder, name, "config.json"));
}

/** Keys a real single-file checkpoint carries besides the three networks; loading skips them. */
const KNOWN_EXTRA = /^(betas|alphas_cumprod|alphas_cumprod_prev|sqrt_alphas_cumprod|sqrt_one_minus_alphas_cumprod|log_one_minus_alphas_cumprod|sqrt_recip_alphas_cumprod|sqrt_recipm1_alphas_cumprod|posterior_variance|posterior_log_variance_clipped|posterior_mean_coef1|posterior_mean_coef2|logvar|model_ema\..*|lvlb_weights|cond_stage_model\.model\.transformer\.resblocks\.\d+\.attn\.in_proj_.*_unused)$/;

async function singleFileParts(path: string, opts: LoadModelOptions): Promise<ModelParts> {
  const file = await openSafetensors(path);
  try {
    const shapes = new Map([...file.tensors].map(([k, t]) => [k, t.shape] as const));
    const layout = detectClipLayout(shapes.keys());
    if (layout === undefined || layout === "diffusers" || ![...file.tensors.keys()].some((k) => k.startsWith(SD_UNET_PREFIX))) {
      throw new CheckpointError(`${path}: not a Stable Diffusion single-file checkpoint (expected model.diffusion_model.*, first_stage_model.* and cond_stage_model.* tensors); for a diffusers model pass its folder`);
    }
    const prefixes = [SD_UNET_PREFIX, SD_VAE_PREFIX, "cond_stage_model."];
    const stray = [...file.tensors.keys()].filter((k) => !prefixes.some((p) => k.startsWith(p)) && !KNOWN_EXTRA.test(k));
    if (stray.length > 0) {
      throw new CheckpointError(`${path}: ${stray.length} tensors belong to no part sdts knows (${stray.slice(0, 10).join(", ")}${stray.length > 10 ? ", …" : ""}); is this a Stable Diffusion 1.x/2.x checkpoint?`);
    }
    const sd2 = layout === "openclip";
    const ov = opts.config;
    const clipJson = overrideConfig(ov, "text_encoder");
    const clip = clipJson ? parseClipTextConfig(clipJson) : detectClipTextConfig(shapes);
    const unetJson = overrideConfig(ov, "unet");
    const unet = unetJson ? parseUNetConfig(unetJson) : detectOriginalUNetConfig(shapes, SD_UNET_PREFIX);
    const vaeJson = overrideConfig(ov, "vae");
    const vae = vaeJson ? parseVaeConfig(vaeJson) : detectVaeConfig(shapes, SD_VAE_PREFIX);
    const scheduler = overrideConfig(ov, "scheduler") ?? { ...SD15_SCHEDULER_SETTINGS };
    const prediction = opts.prediction ?? predictionFrom(overrideConfig(ov, "scheduler")) ?? (sd2 ? "v" : "epsilon");
    return {
      clip,
      unet,
      vae,
      clipWeights: clipTextWeights(file, clip, layout, clipLayoutPrefix(layout)),
      unetWeights: unetWeights(file, unet, SD_UNET_PREFIX),
      vaeWeights: vaeWeightsFromCompVis(file, vae, SD_VAE_PREFIX),
      scheduler,
      prediction,
      family: sd2 ? "sd2" : "sd1",
      tokenizerPath: undefined,
      padToken: sd2 ? "!" : undefined,
      defaults: {},
      files: [file],
    };
  } catch (e) {
    await file.close();
    if (e instanceof ConfigError) throw new CheckpointError(`${path}: ${e.message}`);
    throw e;
  }
}


/** What loadModel would load, without creating sessions: family, prediction, configs. */
export async function inspectModel(source: string, opts: LoadModelOptions = {}): Promise<Omit<ModelInfo, "name">> {
  const path = source === "default" ? defaultModelPath() : source;
  const kind = sourceKind(path);
  if (kind === "ckpt") throw new CheckpointError(`${path} is a PyTorch pickle; sdts does not open pickles. Convert it to .safetensors first`);
  const parts = kind === "diffusers" ? await diffusersParts(path, opts) : await singleFileParts(path, opts);
  for (const f of parts.files) await f.close();
  return {
    source: path,
    family: parts.family,
    prediction: parts.prediction,
    inpainting: parts.unet.inChannels === 9,
    configs: { unet: parts.unet, vae: parts.vae, textEncoder: parts.clip, scheduler: parts.scheduler },
  };
}
