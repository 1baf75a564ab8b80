/**
 * A1111's txt2img request and response: field names and defaults as its
 * StableDiffusionProcessingTxt2Img and API model have them
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0027ce1f6e58c5f4279173e468a60aef420babfe/modules/processing.py,
 * https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/008a8e7576387bc172f9ecd0384274dd19f9036b/modules/api/models.py). Width and height default to the loaded model's size (512 for SD 1.x,
 * as in A1111). A1111 features sdts lacks (hires fix, scripts, variation seeds) are refused
 * with a 422 rather than silently dropped; fields without effect here are echoed.
 */
import { invalid } from "./http.js";
import type { Job } from "./job.js";
import { Fields, type Limits, findSampler, randomSeed } from "./params.js";
import type { RunParams } from "./protocol.js";

/** The request fields A1111 echoes back in `parameters`, with its defaults. */
const ECHO_DEFAULTS: Readonly<Record<string, unknown>> = {
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
  denoising_strength: null,
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
  firstpass_image: null,
  comments: {},
  enable_hr: false,
  firstphase_width: 0,
  firstphase_height: 0,
  hr_scale: 2.0,
  hr_upscaler: null,
  hr_second_pass_steps: 0,
  hr_resize_x: 0,
  hr_resize_y: 0,
  hr_checkpoint_name: null,
  hr_sampler_name: null,
  hr_scheduler: null,
  hr_prompt: "",
  hr_negative_prompt: "",
  force_task_id: null,
  sampler_index: "Euler",
  script_name: null,
  script_args: [],
  send_images: true,
  save_images: false,
  alwayson_scripts: {},
  infotext: null,
};

/** A parsed A1111 txt2img request. */
export interface A1111Txt2Img {
  /** One worker run per n_iter; seeds continue seed + i across the batches. */
  readonly runs: RunParams[];
  readonly echo: Record<string, unknown>;
  readonly send: boolean;
  readonly save: boolean;
  readonly subseed: number;
  /** override_settings.sd_model_checkpoint, if the request names one. */
  readonly checkpoint: string | undefined;
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
  if (f.bool("enable_hr", false)) throw invalid("enable_hr", "hires fix is not supported by sdts yet; send false");
  if (f.num("subseed_strength", 0, 0, 1) !== 0) throw invalid("subseed_strength", "variation seeds are not supported by sdts yet; send 0");
  if (f.bool("restore_faces", false)) throw invalid("restore_faces", "face restoration is not supported by sdts; send false");
  if (f.bool("tiling", false)) throw invalid("tiling", "tiling is not supported by sdts yet; send false");
  const script = f.str("script_name", "");
  if (script !== "") throw invalid("script_name", `script ${JSON.stringify(script)} not found (sdts has no scripts; see /sdapi/v1/scripts)`);
  const always = Object.keys(f.obj("alwayson_scripts"));
  if (always.length > 0) throw invalid("alwayson_scripts", `always on script ${JSON.stringify(always[0])} not found (sdts has no scripts)`);
}

/** Parses and checks a /sdapi/v1/txt2img body; `size` is the loaded model's default size. */
export function parseA1111Txt2Img(body: Readonly<Record<string, unknown>>, size: { width: number; height: number }, limits: Limits): A1111Txt2Img {
  const f = new Fields(body, true);
  refuseUnsupported(f);
  const prompt = f.str("prompt", "");
  const negativePrompt = f.str("negative_prompt", "");
  const steps = f.int("steps", 50, 1, limits.maxSteps);
  const cfgScale = f.num("cfg_scale", 7, 0, 100);
  const width = f.size("width", size.width, limits.maxWidth);
  const height = f.size("height", size.height, limits.maxHeight);
  const batchSize = f.int("batch_size", 1, 1, limits.maxBatch);
  const nIter = f.int("n_iter", 1, 1, 100);
  const sampler = samplerOf(f);
  const given = f.seed("seed");
  const seed = given === -1 ? randomSeed() : given;
  const subseedGiven = f.seed("subseed");
  const overrides = f.obj("override_settings");
  const ckpt = overrides["sd_model_checkpoint"];
  if (ckpt !== undefined && ckpt !== null && typeof ckpt !== "string") throw invalid("override_settings.sd_model_checkpoint", "must be a string");
  const runs: RunParams[] = [];
  for (let i = 0; i < nIter; i++) runs.push({ prompt, negativePrompt, steps, cfgScale, sampler, seed: seed + i * batchSize, width, height, batchSize, explain: false });
  const echo: Record<string, unknown> = {};
  for (const [k, def] of Object.entries(ECHO_DEFAULTS)) echo[k] = body[k] ?? def;
  Object.assign(echo, { prompt, negative_prompt: negativePrompt, steps, cfg_scale: cfgScale, width, height, batch_size: batchSize, n_iter: nIter, sampler_name: sampler, seed: given });
  return {
    runs,
    echo,
    send: f.bool("send_images", true),
    save: f.bool("save_images", false),
    subseed: subseedGiven === -1 ? randomSeed() : subseedGiven,
    checkpoint: typeof ckpt === "string" && ckpt.trim() !== "" ? ckpt : undefined,
  };
}

/** A1111's job timestamp: local time as YYYYMMDDHHMMSS. */
export function jobTimestamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** The `info` JSON of a finished job, as A1111's Processed.js() writes it. */
export function a1111Info(job: Job, req: A1111Txt2Img, version: string): Record<string, unknown> {
  const first = req.runs[0];
  const allSeeds = req.runs.flatMap((r) => Array.from({ length: r.batchSize }, (_, i) => r.seed + i));
  const n = allSeeds.length;
  const info = job.results[0]?.info;
  return {
    prompt: first?.prompt ?? "",
    all_prompts: Array<string>(n).fill(first?.prompt ?? ""),
    negative_prompt: first?.negativePrompt ?? "",
    all_negative_prompts: Array<string>(n).fill(first?.negativePrompt ?? ""),
    seed: allSeeds[0] ?? -1,
    all_seeds: allSeeds,
    subseed: req.subseed,
    all_subseeds: allSeeds.map((_, i) => req.subseed + i),
    subseed_strength: 0,
    width: first?.width,
    height: first?.height,
    sampler_name: first?.sampler,
    cfg_scale: first?.cfgScale,
    steps: first?.steps,
    batch_size: first?.batchSize,
    restore_faces: false,
    face_restoration_model: null,
    sd_model_name: info?.model ?? null,
    sd_model_hash: null,
    sd_vae_name: null,
    sd_vae_hash: null,
    seed_resize_from_w: -1,
    seed_resize_from_h: -1,
    denoising_strength: null,
    extra_generation_params: {},
    index_of_first_image: 0,
    infotexts: job.results.flatMap((r) => r.info.infotexts),
    styles: [],
    job_timestamp: jobTimestamp(job.startedAt || job.createdAt),
    clip_skip: 1,
    is_using_inpainting_conditioning: false,
    version,
  };
}
