/**
 * Assembling the three finished runs into a diffusers-layout model folder (what `loadModel`
 * reads): fp16 weights, configs, the learnt tokenizer and the SD noise schedule. The U-Net's EMA
 * weights are shipped; the CLIP image tower, text projection and temperature are left behind.
 */
import { join } from "node:path";
import { InputError } from "../errors.js";
import { readCaptionFolder } from "../io/image-folder.js";
import { CAPTION_PRIOR_DEFAULTS, CAPTION_PRIOR_DIR } from "../models/clip/caption-prior.js";
import { TEXT_CONTEXT_KEY } from "../models/unet/config.js";
import { copyFile, ensureDir, pathExists, folderBytes, removeFolder, swapFolder, tempFolderBeside, writeJsonFile } from "../io/run-files.js";
import { type TensorInput, writeSafetensors } from "../io/safetensors.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import { SD15_SCHEDULER_SETTINGS } from "../schedulers/config.js";
import { getScheduler } from "../schedulers/samplers.js";
import { loadCheckpoint } from "./checkpoint.js";
import { type ClipRun, pooledStates, readClipRun, readVaeRun } from "./frozen.js";
import { RUN_FILES, readRunConfig } from "./run.js";
import { runPrediction } from "./unet.js";

/** The largest model folder the issue allows (40 MB). */
export const MAX_MODEL_BYTES = 40e6;

/** Where the three finished runs are. */
export interface ExportRuns {
  readonly vae: string;
  readonly clip: string;
  readonly unet: string;
  /** The model's default CFG scale (model_index.json `_sdts_defaults`); DEFAULT_EXPORT_CFG if not given. */
  readonly cfgScale?: number;
  /** The model's default sampler; DEFAULT_EXPORT_SAMPLER if not given. */
  readonly sampler?: string;
}

/**
 * The CFG scale an exported model defaults to. The small models trained here match their prompts
 * best at 4–6 rather than SD's 7 (bench:default over three seeds, README; the shipped one: 5 and 6
 * over 4 on the held-out phrasings); a client that sends its own scale is unaffected.
 */
export const DEFAULT_EXPORT_CFG = 5;

/**
 * The sampler an exported model defaults to. At 20 steps the deterministic samplers draw the small
 * models' emoji closer to the dataset than Euler a, which adds fresh noise at every step (why the
 * gap is this large was not measured): on the shipped model DDIM 68% / 56% against Euler a's
 * 63% / 53% (bench:default, bench / held-out prompts, three seeds; Euler, DPM++ 2M, UniPC and
 * PLMS 55–56% on the held-out ones at one seed, LMS 53%).
 */
export const DEFAULT_EXPORT_SAMPLER = "DDIM";

/** What was written. */
export interface ExportResult {
  readonly dir: string;
  readonly bytes: number;
}

async function writeF16(path: string, params: ReadonlyMap<string, HostTensor>, keep: (k: string) => boolean): Promise<void> {
  const tensors = new Map<string, TensorInput>();
  for (const [k, t] of [...params].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (keep(k)) tensors.set(k, { dtype: "F16", shape: t.shape, data: t.data as Float32Array });
  }
  await writeSafetensors(path, tensors, { format: "pt" });
}

/**
 * The caption prior of a pooled-context U-Net (caption-prior.ts): the pooled states of every
 * distinct caption line of the folder it trained on, by the text encoder it trained with.
 */
async function writeCaptionPrior(dir: string, clip: ClipRun, dataDir: string): Promise<number> {
  if (!(await pathExists(dataDir))) throw new InputError(`the U-Net reads the pooled text state, and its caption prior is built from the captions it trained on; its dataset folder ${dataDir} is missing (build it again, or run export from the folder the U-Net was trained in)`);
  const captions = [...new Set((await readCaptionFolder(dataDir)).captions.flat())].sort();
  const D = clip.config.hiddenSize;
  const states = await pooledStates(clip, captions);
  await ensureDir(dir);
  await writeJsonFile(join(dir, "config.json"), { _sdts: "pooled text states of the training captions; see caption-prior.ts", ...CAPTION_PRIOR_DEFAULTS, captions: captions.length });
  await writeSafetensors(join(dir, "states.safetensors"), new Map<string, TensorInput>([["states", { dtype: "F16", shape: [captions.length, D], data: states }]]), { format: "pt" });
  return captions.length;
}

/** Writes the diffusers folder `outDir` (replacing it only once complete) from the three runs. */
export async function exportModel(runs: ExportRuns, outDir: string): Promise<ExportResult> {
  const unetRun = await readRunConfig(runs.unet);
  if (unetRun.kind !== "unet") throw new InputError(`${runs.unet} is a '${String(unetRun.kind)}' run; --unet needs the U-Net run folder`);
  const [vae, clip] = [await readVaeRun(runs.vae), await readClipRun(runs.clip)];
  const unetCk = await loadCheckpoint(join(runs.unet, RUN_FILES.checkpoint), "unet");
  const unetWeights = unetCk.extra.size > 0 ? unetCk.extra : new Map([...unetCk.params].filter(([k]) => !k.startsWith("text_model.")));
  const cfg = runs.cfgScale ?? DEFAULT_EXPORT_CFG;
  if (!(cfg >= 0 && cfg <= 100)) throw new InputError(`--cfg must be a number from 0 to 100 (got ${cfg})`);
  const defaults = { cfg_scale: cfg, sampler: getScheduler(runs.sampler ?? DEFAULT_EXPORT_SAMPLER).name };
  const tmp = await tempFolderBeside(outDir);
  try {
    for (const sub of ["unet", "vae", "text_encoder", "tokenizer", "scheduler"]) await ensureDir(join(tmp, sub));
    await writeJsonFile(join(tmp, "model_index.json"), {
      _class_name: "StableDiffusionPipeline",
      _diffusers_version: "0.27.2",
      _sdts: "trained from scratch by `sdts train` (see README, Training)",
      _sdts_defaults: defaults,
      feature_extractor: [null, null],
      requires_safety_checker: false,
      safety_checker: [null, null],
      scheduler: ["diffusers", "DDIMScheduler"],
      text_encoder: ["transformers", "CLIPTextModel"],
      tokenizer: ["transformers", "CLIPTokenizer"],
      unet: ["diffusers", "UNet2DConditionModel"],
      vae: ["diffusers", "AutoencoderKL"],
    });
    await writeJsonFile(join(tmp, "unet", "config.json"), unetRun.model);
    await writeF16(join(tmp, "unet", "diffusion_pytorch_model.safetensors"), unetWeights, () => true);
    await writeJsonFile(join(tmp, "vae", "config.json"), { ...vae.json, scaling_factor: Number(unetRun.scalingFactor) });
    await writeF16(join(tmp, "vae", "diffusion_pytorch_model.safetensors"), vae.params, () => true);
    await writeJsonFile(join(tmp, "text_encoder", "config.json"), clip.json);
    await writeF16(join(tmp, "text_encoder", "model.safetensors"), clip.params, (k) => k.startsWith("text_model."));
    for (const f of ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"]) await copyFile(join(clip.tokenizerDir, f), join(tmp, "tokenizer", f));
    await writeJsonFile(join(tmp, "scheduler", "scheduler_config.json"), { _class_name: "DDIMScheduler", ...SD15_SCHEDULER_SETTINGS, prediction_type: runPrediction(unetRun) });
    const pooled = (unetRun.model as Record<string, unknown> | undefined)?.[TEXT_CONTEXT_KEY] === "pooled";
    if (pooled) await writeCaptionPrior(join(tmp, CAPTION_PRIOR_DIR), clip, String(unetRun.data));
    const bytes = await folderBytes(tmp);
    if (bytes > MAX_MODEL_BYTES) throw new InputError(`the exported model is ${(bytes / 1e6).toFixed(1)} MB, over the ${MAX_MODEL_BYTES / 1e6} MB budget; train smaller presets`);
    await swapFolder(tmp, outDir);
    return { dir: outDir, bytes };
  } catch (e) {
    await removeFolder(tmp);
    throw e;
  }
}
