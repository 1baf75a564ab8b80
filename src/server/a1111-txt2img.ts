/**
 * A1111's txt2img request: field names and defaults as its StableDiffusionProcessingTxt2Img
 * and API model have them
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0027ce1f6e58c5f4279173e468a60aef420babfe/modules/processing.py,
 * https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/008a8e7576387bc172f9ecd0384274dd19f9036b/modules/api/models.py),
 * with the hires fix (enable_hr) mapped onto the library's `hires`. Width and height default to
 * the loaded model's size (512 for SD 1.x, as in A1111).
 */
import { invalid } from "./http.js";
import { hiresTarget, checkHiresTarget, upscalerField } from "./hires.js";
import { type A1111Request, COMMON_ECHO, type Common, echoOf, parseCommon } from "./a1111-request.js";
import { type Limits, findSampler } from "./params.js";
import type { HiresRun, RunParams } from "./protocol.js";

/** txt2img's own echoed fields, with A1111's defaults. */
const TXT2IMG_ECHO: Readonly<Record<string, unknown>> = {
  ...COMMON_ECHO,
  denoising_strength: null,
  firstpass_image: null,
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
};

/** Without an explicit denoising_strength the hires pass uses A1111's UI default. */
const HIRES_STRENGTH = 0.7;

/** A parsed A1111 txt2img request. */
export type A1111Txt2Img = A1111Request;

/** True when a hires-pass override field is absent or says "the same as the first pass". */
function same(c: Common, name: string, first: string, sameLabel: string): boolean {
  const v = c.f.str(name, "").trim();
  return v === "" || v === sameLabel || v === first;
}

/** The hires pass of an enable_hr request (A1111's hr_* fields), or undefined. */
function parseHires(c: Common, limits: Limits): HiresRun | undefined {
  const f = c.f;
  if (!f.bool("enable_hr", false)) return undefined;
  if (f.int("firstphase_width", 0, 0, 65536) !== 0 || f.int("firstphase_height", 0, 0, 65536) !== 0) {
    throw invalid("firstphase_width", "the old hires fix's first-pass size is not supported by sdts; send 0 and use hr_scale or hr_resize_x/hr_resize_y");
  }
  const scale = f.num("hr_scale", 2, 1, 8);
  const resizeX = f.int("hr_resize_x", 0, 0, 65536);
  const resizeY = f.int("hr_resize_y", 0, 0, 65536);
  const upscalerName = f.str("hr_upscaler", "").trim();
  const upscaler = upscalerField(upscalerName === "" ? "Latent" : upscalerName, "hr_upscaler");
  const steps = f.int("hr_second_pass_steps", 0, 0, limits.maxSteps);
  const denoisingStrength = f.num("denoising_strength", HIRES_STRENGTH, 0, 1);
  const hrSampler = f.str("hr_sampler_name", "").trim();
  if (!(same(c, "hr_sampler_name", c.base.sampler, "Use same sampler") || findSampler(hrSampler) === c.base.sampler)) {
    throw invalid("hr_sampler_name", `a different sampler for the hires pass is not supported by sdts yet; send null or "Use same sampler"`);
  }
  if (!same(c, "hr_scheduler", f.str("scheduler", ""), "Use same scheduler")) throw invalid("hr_scheduler", `a different scheduler for the hires pass is not supported by sdts yet; send null or "Use same scheduler"`);
  if (!same(c, "hr_checkpoint_name", "", "Use same checkpoint")) throw invalid("hr_checkpoint_name", `a different checkpoint for the hires pass is not supported by sdts yet; send null or "Use same checkpoint"`);
  if (!same(c, "hr_prompt", c.base.prompt, "")) throw invalid("hr_prompt", "a different prompt for the hires pass is not supported by sdts yet; send \"\"");
  if (!same(c, "hr_negative_prompt", c.base.negativePrompt, "")) throw invalid("hr_negative_prompt", "a different negative prompt for the hires pass is not supported by sdts yet; send \"\"");
  const target = hiresTarget(c.base, scale, resizeX, resizeY);
  checkHiresTarget(target, limits, resizeX > 0 ? "hr_resize_x" : "hr_scale", resizeY > 0 ? "hr_resize_y" : "hr_scale");
  return { scale, ...target, upscaler, steps, denoisingStrength };
}

/** A1111's extra_generation_params for a hires request. */
function hiresExtra(h: HiresRun, c: Common): Record<string, unknown> {
  const resized = c.f.int("hr_resize_x", 0, 0, 65536) > 0 || c.f.int("hr_resize_y", 0, 0, 65536) > 0;
  return {
    ...(resized ? { "Hires resize": `${h.width}x${h.height}` } : { "Hires upscale": h.scale }),
    ...(h.steps > 0 ? { "Hires steps": h.steps } : {}),
    "Hires upscaler": h.upscaler,
  };
}

/** Parses and checks a /sdapi/v1/txt2img body; `size` is the loaded model's default size (and CFG). */
export function parseA1111Txt2Img(body: Readonly<Record<string, unknown>>, size: { width: number; height: number; cfgScale?: number }, limits: Limits): A1111Txt2Img {
  const c = parseCommon(body, size, limits);
  const hires = parseHires(c, limits);
  const runs: RunParams[] = [];
  for (let i = 0; i < c.nIter; i++) {
    runs.push({ kind: "txt2img", ...c.base, seed: c.seed + i * c.base.batchSize, explain: false, ...(hires ? { hires } : {}) });
  }
  const parsed = hires ? { enable_hr: true, denoising_strength: hires.denoisingStrength, hr_upscaler: hires.upscaler } : {};
  return {
    runs,
    echo: echoOf(body, TXT2IMG_ECHO, c, parsed),
    batchSize: c.base.batchSize,
    send: c.send,
    save: c.save,
    subseed: c.subseed,
    checkpoint: c.checkpoint,
    denoisingStrength: hires ? hires.denoisingStrength : null,
    extra: hires ? hiresExtra(hires, c) : {},
  };
}
