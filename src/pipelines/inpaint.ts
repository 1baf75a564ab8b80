/**
 * Inpainting (white = repaint). With a 9-channel inpainting U-Net the mask and the masked
 * image's latents are extra U-Net inputs; with an ordinary 4-channel U-Net the known region is
 * re-noised and pasted back after every step (diffusers' StableDiffusionInpaintPipeline).
 * Random draws in diffusers' order (see the golden README's edit/ section).
 */
import { InputError } from "../errors.js";
import { addNoise, startIndexForStrength } from "../schedulers/index.js";
import { denoise, scheduleFor } from "./denoise.js";
import { checkResizeMode, imageSize, loadImage } from "./image-input.js";
import { type Img2ImgParams, checkStrength, encodeSampled } from "./img2img.js";
import { type MaskInput, binarize, latentMask, loadMask, maskedImage } from "./mask.js";
import { draw, noiseSource } from "./noise.js";
import { renderImages } from "./output.js";
import { repeatRows } from "./prompt.js";
import { buildConditioning, checkSyntax } from "./conditioning.js";
import type { Txt2ImgDefaults, Txt2ImgResult } from "./txt2img.js";
import type { Components, Tensor } from "./types.js";
import { checkOutput, checkSampling, runInfo } from "./validate.js";
import { compositeOver, fillMasked } from "./composite.js";

/** A1111's masked-content modes: keep the original, fill from the surroundings, latent noise, latent zeros. */
export type InpaintFill = "original" | "fill" | "latent-noise" | "latent-nothing";

/** Parameters of inpainting: img2img's plus the mask. */
export interface InpaintParams extends Img2ImgParams {
  mask: MaskInput;
  /** Gaussian blur of the mask in pixels (A1111 default 4); 0 = diffusers' hard mask. */
  maskBlur?: number;
  /** What the masked area starts from (4-channel models, strength < 1). Default "original". */
  fill?: InpaintFill | 0 | 1 | 2 | 3;
  invertMask?: boolean;
}

const FILLS: readonly InpaintFill[] = ["fill", "original", "latent-noise", "latent-nothing"];

function checkFill(v: unknown): InpaintFill {
  if (v === undefined) return "original";
  if (typeof v === "number" && FILLS[v] !== undefined) return FILLS[v] as InpaintFill;
  if (typeof v === "string" && (FILLS as readonly string[]).includes(v)) return v as InpaintFill;
  throw new InputError(`fill must be one of ${FILLS.join(", ")} (or A1111's 0–3), got ${JSON.stringify(v)}`);
}

/** Per-row blend (1 − m)·a + m·b with a [1, 1, h, w] mask over [B, C, h, w] latents. */
function blend(a: Float32Array, b: Float32Array, m: Tensor): Float32Array {
  const plane = m.data.length;
  return a.map((v, i) => {
    const k = m.data[i % plane] ?? 0;
    return (1 - k) * v + k * (b[i] ?? 0);
  });
}

/** Runs inpainting on loaded components. */
export async function inpaint(c: Components, p: InpaintParams, defaults: Txt2ImgDefaults): Promise<Txt2ImgResult> {
  // 1. validate
  const sp = checkSampling(p, defaults);
  const { prompt, negativePrompt, steps, cfgScale, sampler } = sp;
  const strength = checkStrength(p.strength ?? 1);
  const fill = checkFill(p.fill);
  const maskBlur = p.maskBlur ?? 0;
  if (typeof maskBlur !== "number" || !(maskBlur >= 0 && maskBlur <= 64)) throw new InputError(`maskBlur must be 0–64 pixels (got ${String(maskBlur)})`);
  const natural = await imageSize(p.image);
  const size = checkOutput(p, natural, c.vae.downscale);
  const { width, height, batch, seed } = size;
  const nine = c.unet.inChannels === c.vae.latentChannels * 2 + 1;
  if (!nine && c.unet.inChannels !== c.vae.latentChannels) throw new InputError(`a U-Net with ${c.unet.inChannels} input channels cannot inpaint`);
  let image = await loadImage(p.image, width, height, checkResizeMode(p.resizeMode));
  const soft = await loadMask(p.mask, width, height, maskBlur, p.invertMask === true);
  const hard = binarize(soft);
  if (fill === "fill") image = await fillMasked(image, hard);
  // 2. encode the prompt
  const guided = cfgScale > 1;
  const conditioning = await buildConditioning(c, prompt, negativePrompt, { batch, guided, steps, syntax: checkSyntax(p.promptSyntax) });
  // 3. latents of the image and of the masked image; the start point
  const schedule = scheduleFor(c, sampler, steps);
  const start = startIndexForStrength(schedule, strength);
  const shape = [batch, c.vae.latentChannels, height / c.vae.downscale, width / c.vae.downscale];
  const { rng, seeds } = noiseSource(batch, seed, p.noise ?? "per-image");
  const needImage = !nine || strength < 1;
  let imageLatents = needImage ? await encodeSampled(c, image, draw(rng, shape)) : undefined;
  const noise = draw(rng, shape);
  const maskedLatents = await encodeSampled(c, maskedImage(image, hard), draw(rng, shape));
  const mLat = latentMask(hard, width, height, c.vae.downscale);
  if (imageLatents && (fill === "latent-noise" || fill === "latent-nothing")) {
    imageLatents = { data: blend(imageLatents.data, fill === "latent-noise" ? noise.data : new Float32Array(noise.data.length), mLat), shape };
  }
  const startLatents = strength >= 1 || !imageLatents ? undefined : { index: start, latents: { data: addNoise(schedule, imageLatents.data, noise.data, start), shape } };
  // 4. denoise: extra U-Net channels (9-ch) or blending back the known region (4-ch)
  const extra = nine ? concatMaskInputs(repeatRows(mLat, batch), maskedLatents) : undefined;
  const known = imageLatents;
  const afterStep =
    nine || !known
      ? undefined
      : (i: number, x: Float32Array) => {
          const last = i + 1 >= schedule.calls;
          const proper = last ? known.data : addNoise(schedule, known.data, noise.data, i + 1);
          return blend(proper, x, mLat);
        };
  const out = await denoise(c, {
    sampler, steps, cfgScale, conditioning, noise, rng,
    ...(startLatents ? { start: startLatents } : {}),
    ...(extra ? { extraInput: extra } : {}),
    ...(afterStep ? { afterStep } : {}),
    ...(p.onProgress ? { onProgress: p.onProgress } : {}),
    ...(p.signal ? { signal: p.signal } : {}),
  });
  // 5. decode; with a soft mask, paste the result over the original as A1111 does
  let { images, infotexts } = await renderImages(c, out.latents, { prompt, negativePrompt }, seeds, (s) => ({
    Steps: steps, Sampler: sampler, "CFG scale": cfgScale, Seed: s, Size: `${width}x${height}`, Model: c.name, "Denoising strength": strength, "Mask blur": maskBlur,
  }));
  if (maskBlur > 0) images = await Promise.all(images.map((png, i) => compositeOver(image, png, soft, infotexts[i] ?? "")));
  const info = runInfo(sp, size, { seeds, model: c.name, infotexts, denoisingStrength: strength });
  return { images, seeds, latents: out.latents, info };
}

/** [B, 1, h, w] mask and [B, 4, h, w] latents → [B, 5, h, w], the 9-channel U-Net's extra input. */
function concatMaskInputs(mask: Tensor, latents: Tensor): Tensor {
  const [b, c, h, w] = latents.shape as [number, number, number, number];
  const plane = h * w;
  const out = new Float32Array(b * (c + 1) * plane);
  for (let r = 0; r < b; r++) {
    out.set(mask.data.subarray(r * plane, (r + 1) * plane), r * (c + 1) * plane);
    out.set(latents.data.subarray(r * c * plane, (r + 1) * c * plane), (r * (c + 1) + 1) * plane);
  }
  return { data: out, shape: [b, c + 1, h, w] };
}
