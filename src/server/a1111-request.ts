/**
 * What A1111's txt2img and img2img requests share: the StableDiffusionProcessing fields and
 * their defaults
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0027ce1f6e58c5f4279173e468a60aef420babfe/modules/processing.py,
 * https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/008a8e7576387bc172f9ecd0384274dd19f9036b/modules/api/models.py),
 * n_iter as one worker run per batch with seeds continuing across them, and the echoed
 * `parameters`. Features sdts lacks are refused with a 422 rather than silently dropped.
 */
import { invalid } from "./http.js";
import { Fields, type Limits, findSampler, randomSeed } from "./params.js";
import type { BaseRun, RunParams } from "./protocol.js";

/** The request fields both endpoints echo back in `parameters`, with A1111's defaults. */
export const COMMON_ECHO: Readonly<Record<string, unknown>> = {
  prompt: "",
  negative_prompt: "",
  styles: [],
  seed: -1,
  subseed: -1,
  subseed_strength: 0,
  seed_resize_from_h: -1,
  seed_resize_from_w: -1,
  sampler_name: null,
  scheduler: null,
  batch_size: 1,
  n_iter: 1,
  steps: 50,
  cfg_scale: 7.0,
  width: 512,
  height: 512,
  restore_faces: null,
  tiling: null,
  do_not_save_samples: false,
  do_not_save_grid: false,
  eta: null,
  s_min_uncond: null,
  s_churn: null,
  s_tmax: null,
  s_tmin: null,
  s_noise: null,
  override_settings: {},
  override_settings_restore_afterwards: true,
  refiner_checkpoint: null,
  refiner_switch_at: null,
  disable_extra_networks: false,
  comments: {},
  force_task_id: null,
  sampler_index: "Euler",
  script_name: null,
  script_args: [],
  send_images: true,
  save_images: false,
  alwayson_scripts: {},
  infotext: null,
};

/** A parsed A1111 generation request (txt2img or img2img). */
export interface A1111Request {
  /** One worker run per n_iter batch (img2img with one init image per batch row: one per image). */
  readonly runs: RunParams[];
  readonly echo: Record<string, unknown>;
  /** The requested batch_size (img2img may split a batch into one run per init image). */
  readonly batchSize: number;
  readonly send: boolean;
  readonly save: boolean;
  readonly subseed: number;
  /** override_settings.sd_model_checkpoint, if the request names one. */
  readonly checkpoint: string | undefined;
  /** info.denoising_strength: img2img's strength, or the hires pass's; null for plain txt2img. */
  readonly denoisingStrength: number | null;
  /** info.extra_generation_params. */
  readonly extra: Record<string, unknown>;
}

/** The fields every run of a request shares, and the request-level settings. */
export interface Common {
  readonly f: Fields;
  readonly base: Omit<BaseRun, "seed">;
  readonly nIter: number;
  /** The seed as sent (−1 = random) and as used. */
  readonly seedGiven: number;
  readonly seed: number;
  readonly subseed: number;
  readonly checkpoint: string | undefined;
  readonly send: boolean;
  readonly save: boolean;
}

/** Sampler from sampler_name (or the legacy sampler_index), with A1111 ≥ 1.9's separate scheduler ("Karras"). */
function samplerOf(f: Fields): string {
  const name = f.missing("sampler_name") ? f.str("sampler_index", "Euler") : f.str("sampler_name", "Euler");
  const field = f.missing("sampler_name") ? "sampler_index" : "sampler_name";
  const base = findSampler(name);
  if (base === undefined) return f.sampler(field, "Euler");
  const scheduler = f.str("scheduler", "automatic").trim().toLowerCase();
  if (scheduler === "automatic" || scheduler === "") return base;
  if (scheduler === "karras") {
    if (base.endsWith(" Karras")) return base;
    const k = findSampler(`${base} Karras`);
    if (k !== undefined) return k;
    throw invalid("scheduler", `sampler ${JSON.stringify(base)} has no Karras variant in sdts; use scheduler "automatic" or a sampler from /sdapi/v1/samplers`);
  }
  throw invalid("scheduler", `unknown scheduler ${JSON.stringify(scheduler)}; use one of automatic, karras`);
}

/** Refuses features sdts does not have, naming the field. */
function refuseUnsupported(f: Fields): void {
  if (f.num("subseed_strength", 0, 0, 1) !== 0) throw invalid("subseed_strength", "variation seeds are not supported by sdts yet; send 0");
  if (f.bool("restore_faces", false)) throw invalid("restore_faces", "face restoration is not supported by sdts; send false");
  if (f.bool("tiling", false)) throw invalid("tiling", "tiling is not supported by sdts yet; send false");
  const script = f.str("script_name", "");
  if (script !== "") throw invalid("script_name", `script ${JSON.stringify(script)} not found (sdts has no scripts; see /sdapi/v1/scripts)`);
  const always = Object.keys(f.obj("alwayson_scripts"));
  if (always.length > 0) throw invalid("alwayson_scripts", `always on script ${JSON.stringify(always[0])} not found (sdts has no scripts)`);
}

/** Parses the shared fields; `size` is the loaded model's default size (and CFG, 7 if it names none). */
export function parseCommon(body: Readonly<Record<string, unknown>>, size: { width: number; height: number; cfgScale?: number }, limits: Limits): Common {
  const f = new Fields(body, true);
  refuseUnsupported(f);
  const batchSize = f.int("batch_size", 1, 1, limits.maxBatch);
  const base = {
    prompt: f.str("prompt", ""),
    negativePrompt: f.str("negative_prompt", ""),
    steps: f.int("steps", 50, 1, limits.maxSteps),
    cfgScale: f.num("cfg_scale", size.cfgScale ?? 7, 0, 100),
    sampler: samplerOf(f),
    width: f.size("width", size.width, limits.maxWidth),
    height: f.size("height", size.height, limits.maxHeight),
    batchSize,
  };
  const nIter = f.int("n_iter", 1, 1, 100);
  const seedGiven = f.seed("seed");
  const subseedGiven = f.seed("subseed");
  const ckpt = f.obj("override_settings")["sd_model_checkpoint"];
  if (ckpt !== undefined && ckpt !== null && typeof ckpt !== "string") throw invalid("override_settings.sd_model_checkpoint", "must be a string");
  return {
    f,
    base,
    nIter,
    seedGiven,
    seed: seedGiven === -1 ? randomSeed() : seedGiven,
    subseed: subseedGiven === -1 ? randomSeed() : subseedGiven,
    checkpoint: typeof ckpt === "string" && ckpt.trim() !== "" ? ckpt : undefined,
    send: f.bool("send_images", true),
    save: f.bool("save_images", false),
  };
}

/** The echoed `parameters`: every known field (sent value or default), then the values as parsed. */
export function echoOf(body: Readonly<Record<string, unknown>>, defaults: Readonly<Record<string, unknown>>, c: Common, parsed: Record<string, unknown>): Record<string, unknown> {
  const echo: Record<string, unknown> = {};
  for (const [k, def] of Object.entries(defaults)) echo[k] = body[k] ?? def;
  const b = c.base;
  Object.assign(echo, { prompt: b.prompt, negative_prompt: b.negativePrompt, steps: b.steps, cfg_scale: b.cfgScale, width: b.width, height: b.height, batch_size: b.batchSize, n_iter: c.nIter, sampler_name: b.sampler, seed: c.seedGiven }, parsed);
  return echo;
}
