/**
 * A1111's img2img request: StableDiffusionProcessingImg2Img's fields and the API's additions
 * (init_images, mask, denoising_strength 0.75, include_init_images) with their defaults
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0027ce1f6e58c5f4279173e468a60aef420babfe/modules/processing.py,
 * https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/008a8e7576387bc172f9ecd0384274dd19f9036b/modules/api/models.py,
 * https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0050a35429b824cbb0a794694358fb32ce487ac4/modules/api/api.py).
 * A mask makes it an inpainting run. As in A1111's API, inpaint_full_res ("only masked") is on
 * by default, with 0 padding, and masked content defaults to 0 (fill).
 */
import { type A1111Request, COMMON_ECHO, type Common, echoOf, parseCommon } from "./a1111-request.js";
import { invalid } from "./http.js";
import { decodeImageField } from "./image-field.js";
import type { Limits } from "./params.js";
import type { Img2ImgRun, InpaintRun, RunParams } from "./protocol.js";

/** img2img's own echoed fields, with A1111's defaults. */
const IMG2IMG_ECHO: Readonly<Record<string, unknown>> = {
  ...COMMON_ECHO,
  init_images: null,
  resize_mode: 0,
  denoising_strength: 0.75,
  image_cfg_scale: null,
  mask: null,
  mask_blur_x: 4,
  mask_blur_y: 4,
  mask_blur: null,
  inpainting_fill: 0,
  inpaint_full_res: true,
  inpaint_full_res_padding: 0,
  inpainting_mask_invert: 0,
  initial_noise_multiplier: null,
  latent_mask: null,
  include_init_images: false,
};

type MaskFields = Omit<InpaintRun, keyof Img2ImgRun | "outpaint">;

/** The init images: a non-empty list of base64 images. */
function initImages(v: unknown): Uint8Array[] {
  if (v === undefined || v === null) throw invalid("init_images", "is required: a list with one base64 image (or one per batch row)");
  if (!Array.isArray(v) || v.length === 0) throw invalid("init_images", `must be a non-empty list of base64 images (got ${Array.isArray(v) ? "an empty list" : typeof v})`);
  return v.map((x, i) => decodeImageField(x, "init_images", v.length > 1 ? `image ${i + 1} of ${v.length} must be` : "must hold"));
}

/** Mask blur: mask_blur if sent, else mask_blur_x/y (which sdts needs equal). */
function maskBlur(c: Common): number {
  if (!c.f.missing("mask_blur")) return c.f.int("mask_blur", 4, 0, 64);
  const x = c.f.int("mask_blur_x", 4, 0, 64);
  const y = c.f.int("mask_blur_y", 4, 0, 64);
  if (x !== y) throw invalid("mask_blur_y", `a different blur across and down is not supported by sdts; send mask_blur, or mask_blur_y equal to mask_blur_x (${x})`);
  return x;
}

/** The inpainting fields of a request with a mask. */
function maskFields(c: Common, mask: Uint8Array): MaskFields {
  return {
    mask,
    maskBlur: maskBlur(c),
    fill: c.f.int("inpainting_fill", 0, 0, 3) as MaskFields["fill"],
    invertMask: c.f.bool("inpainting_mask_invert", false),
    onlyMasked: c.f.bool("inpaint_full_res", true),
    onlyMaskedPadding: c.f.int("inpaint_full_res_padding", 0, 0, 1024),
  };
}

/** A1111's extra_generation_params for an inpainting request. */
function maskExtra(m: MaskFields): Record<string, unknown> {
  return {
    ...(m.maskBlur > 0 ? { "Mask blur": m.maskBlur } : {}),
    ...(m.invertMask ? { "Mask mode": "Inpaint not masked" } : {}),
    ...(m.onlyMasked ? { "Inpaint area": "Only masked", "Masked area padding": m.onlyMaskedPadding } : {}),
  };
}

/** Refuses img2img options sdts does not have. */
function refuseUnsupported(c: Common): void {
  if (c.f.int("resize_mode", 0, 0, 3) === 3) throw invalid("resize_mode", "3 (just resize, latent upscale) is not supported by sdts; use 0 (just resize), 1 (crop and resize) or 2 (resize and fill)");
  if (!c.f.missing("latent_mask")) throw invalid("latent_mask", "a separate latent mask is not supported by sdts; send null");
  if (c.f.num("initial_noise_multiplier", 1, 0, 10) !== 1) throw invalid("initial_noise_multiplier", "only 1 is supported by sdts; send null or 1");
}

/** Parses and checks a /sdapi/v1/img2img body; `size` is the loaded model's default size. */
export function parseA1111Img2Img(body: Readonly<Record<string, unknown>>, size: { width: number; height: number; cfgScale?: number }, limits: Limits): A1111Request {
  const c = parseCommon(body, size, limits);
  refuseUnsupported(c);
  const images = initImages(body["init_images"]);
  const batch = c.base.batchSize;
  if (images.length !== 1 && images.length !== batch) throw invalid("init_images", `send one image, or one per batch row (batch_size ${batch}); got ${images.length}`);
  const strength = c.f.num("denoising_strength", 0.75, 0, 1);
  const resizeMode = c.f.int("resize_mode", 0, 0, 2) as Img2ImgRun["resizeMode"];
  const mask = c.f.image("mask", true);
  const m = mask ? maskFields(c, mask) : undefined;
  const include = c.f.bool("include_init_images", false);
  const run = (image: Uint8Array, seed: number, batchSize: number): RunParams =>
    m ? { kind: "inpaint", ...c.base, batchSize, seed, image, strength, resizeMode, ...m } : { kind: "img2img", ...c.base, batchSize, seed, image, strength, resizeMode };
  const runs: RunParams[] = [];
  for (let i = 0; i < c.nIter; i++) {
    const seed = c.seed + i * batch;
    // One image per batch row: each row is its own run (batch 1), keeping A1111's seeds.
    if (images.length === 1) runs.push(run(images[0] as Uint8Array, seed, batch));
    else images.forEach((img, k) => runs.push(run(img, seed + k, 1)));
  }
  // A1111 drops the (large) images from the echo unless include_init_images is set.
  const parsed = { denoising_strength: strength, resize_mode: resizeMode, include_init_images: include, ...(include ? {} : { init_images: null, mask: null }) };
  return {
    runs,
    echo: echoOf(body, IMG2IMG_ECHO, c, parsed),
    batchSize: batch,
    send: c.send,
    save: c.save,
    subseed: c.subseed,
    checkpoint: c.checkpoint,
    denoisingStrength: strength,
    extra: m ? maskExtra(m) : {},
  };
}
