/**
 * Image to image (SDEdit, Meng et al. 2022): encode the image, noise it to the step that
 * `strength` picks, denoise the rest. Random draws in diffusers' order: the VAE posterior
 * sample, then the noise, then the sampler's own draws.
 */
import { InputError } from "../errors.js";
import { addNoise, startIndexForStrength } from "../schedulers/index.js";
import { denoise, scheduleFor } from "./denoise.js";
import { type ImageInput, checkResizeMode, imageSize, loadImage } from "./image-input.js";
import { draw, noiseSource } from "./noise.js";
import { renderImages } from "./output.js";
import { repeatRows } from "./prompt.js";
import { buildConditioning, checkSyntax } from "./conditioning.js";
import type { Txt2ImgDefaults, Txt2ImgParams, Txt2ImgResult } from "./txt2img.js";
import type { Components, Tensor } from "./types.js";
import { checkOutput, checkSampling, runInfo } from "./validate.js";

/** Parameters of img2img: txt2img's plus the image, the strength and the resize mode. */
export interface Img2ImgParams extends Omit<Txt2ImgParams, "latents" | "explain"> {
  image: ImageInput;
  /** Start from these (scaled) latents [batch, C, h, w] instead of encoding `image` (the hires fix's latent upscalers). */
  initLatents?: Tensor;
  /** 0 = keep the image (VAE round trip), 1 = ignore it. Default 0.75 (A1111's denoising strength). */
  strength?: number;
  resizeMode?: "just-resize" | "crop-and-resize" | "resize-and-fill" | 0 | 1 | 2;
}

/** Checks a strength in [0, 1]. */
export function checkStrength(v: unknown): number {
  if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new InputError(`strength must be a number from 0 to 1 (got ${String(v)})`);
  return v;
}

/** Latents sampled from the VAE posterior of `image`, scaled: sf · (mean + std · eps), one per batch row. */
export async function encodeSampled(c: Components, image: Tensor, eps: Tensor): Promise<Tensor> {
  const batch = eps.shape[0] ?? 1;
  const { mean, std } = await c.vae.encodeDistribution(image);
  const m = repeatRows(mean, batch);
  const s = repeatRows(std, batch);
  const data = new Float32Array(eps.data.length);
  for (let i = 0; i < data.length; i++) data[i] = Math.fround((m.data[i] ?? 0) + (s.data[i] ?? 0) * (eps.data[i] ?? 0)) * c.vae.scalingFactor;
  return { data, shape: [...eps.shape] };
}

/** Runs img2img on loaded components. */
export async function img2img(c: Components, p: Img2ImgParams, defaults: Txt2ImgDefaults): Promise<Txt2ImgResult> {
  // 1. validate
  const sp = checkSampling(p, defaults);
  const { prompt, negativePrompt, steps, cfgScale, sampler } = sp;
  const strength = checkStrength(p.strength ?? 0.75);
  const resizeMode = checkResizeMode(p.resizeMode);
  if (!(p.image instanceof Uint8Array) && !(typeof p.image === "object" && p.image !== null && "data" in p.image)) {
    throw new InputError("image must be PNG/JPEG/WebP bytes or a [1, 3, H, W] tensor in [-1, 1]");
  }
  const natural = p.initLatents
    ? { width: (p.initLatents.shape[3] ?? 0) * c.vae.downscale, height: (p.initLatents.shape[2] ?? 0) * c.vae.downscale }
    : await imageSize(p.image);
  const out = checkOutput(p, natural, c.vae.downscale);
  const { width, height, batch, seed } = out;
  if (c.unet.inChannels !== c.vae.latentChannels) throw new InputError("this is an inpainting checkpoint; use inpaint (with a mask) for img2img on it");
  const image = p.initLatents ? undefined : await loadImage(p.image, width, height, resizeMode);
  // 2. encode the prompt
  const guided = cfgScale > 1;
  const conditioning = await buildConditioning(c, prompt, negativePrompt, { batch, guided, steps, syntax: checkSyntax(p.promptSyntax) });
  // 3. the start step, and the image's noised latents (draws: posterior, then noise)
  const schedule = scheduleFor(c, sampler, steps);
  const start = startIndexForStrength(schedule, strength);
  const shape = [batch, c.vae.latentChannels, height / c.vae.downscale, width / c.vae.downscale];
  const { rng, seeds } = noiseSource(batch, seed, p.noise ?? "per-image");
  if (p.initLatents && p.initLatents.shape.join() !== shape.join()) {
    throw new InputError(`initLatents must have shape [${shape.join(", ")}] (got [${p.initLatents.shape.join(", ")}])`);
  }
  const init = image ? await encodeSampled(c, image, draw(rng, shape)) : (p.initLatents as Tensor);
  let latents: Tensor = init;
  if (start < schedule.calls) {
    const noise = draw(rng, shape);
    const noised = { data: addNoise(schedule, init.data, noise.data, start), shape };
    // 4. denoise from there
    latents = (
      await denoise(c, {
        sampler, steps, cfgScale, conditioning, noise, rng,
        start: { index: start, latents: noised },
        ...(p.onProgress ? { onProgress: p.onProgress } : {}),
        ...(p.signal ? { signal: p.signal } : {}),
      })
    ).latents;
  }
  // 5. decode
  const { images, infotexts } = await renderImages(c, latents, { prompt, negativePrompt }, seeds, (s) => ({
    Steps: steps, Sampler: sampler, "CFG scale": cfgScale, Seed: s, Size: `${width}x${height}`, Model: c.name, "Denoising strength": strength,
  }));
  const info = runInfo(sp, out, { seeds, model: c.name, infotexts, denoisingStrength: strength });
  return { images, seeds, latents, info };
}
