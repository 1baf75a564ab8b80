/** Cheap previews of latents while denoising: a fixed linear map from SD's 4 latent channels to RGB. */
import sharp from "sharp";
import type { Tensor } from "./types.js";
import { encodePng } from "../io/image.js";

/**
 * Latent → RGB coefficients for SD 1.x/2.x latents (the community "approx cheap" fit A1111
 * ships): rgb = Σ_c latent_c · K[c]. Good enough to watch an image form; not a decode.
 */
const SD_LATENT_RGB: readonly (readonly [number, number, number])[] = [
  [0.298, 0.207, 0.208],
  [0.187, 0.286, 0.173],
  [-0.158, 0.189, 0.264],
  [-0.184, -0.271, -0.473],
];

/** RGB bytes (HWC) of image `index` of (scaled) latents [B, C, h, w], by the linear approximation. */
export function latentToRgb(latents: Tensor, index = 0): { rgb: Uint8Array; width: number; height: number } {
  const [, c, h, w] = latents.shape as [number, number, number, number];
  const plane = h * w;
  const base = index * c * plane;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) {
      let v = 0;
      for (let ch = 0; ch < Math.min(c, 4); ch++) v += (latents.data[base + ch * plane + i] ?? 0) * (SD_LATENT_RGB[ch]?.[k] ?? 0);
      rgb[i * 3 + k] = Math.round(Math.min(1, Math.max(0, (v + 1) / 2)) * 255);
    }
  }
  return { rgb, width: w, height: h };
}

/** A small PNG preview of latents, upscaled `scale`× (nearest) so it is visible. */
export async function previewPng(latents: Tensor, index = 0, scale = 4): Promise<Uint8Array> {
  const { rgb, width, height } = latentToRgb(latents, index);
  const up = await sharp(rgb, { raw: { width, height, channels: 3 } })
    .resize(width * scale, height * scale, { kernel: "nearest" })
    .raw()
    .toBuffer();
  return encodePng(new Uint8Array(up.buffer, up.byteOffset, up.byteLength), width * scale, height * scale);
}
