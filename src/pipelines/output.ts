/** Decoding final latents and writing PNGs with their infotext, shared by every pipeline. */
import { encodePng, tensorToRgb } from "../io/image.js";
import { formatInfotext } from "./infotext.js";
import type { Components, Tensor } from "./types.js";

/** x · k, as a new tensor. */
export function scaleTensor(x: Tensor, k: number): Tensor {
  return { data: x.data.map((v) => v * k), shape: [...x.shape] };
}

/** Images (PNG with infotext) from the sampler's final latents, one per seed. */
export async function renderImages(
  c: Components,
  latents: Tensor,
  text: { prompt: string; negativePrompt: string },
  seeds: readonly number[],
  params: (seed: number) => Record<string, string | number>,
): Promise<{ images: Uint8Array[]; infotexts: string[] }> {
  const image = await c.vae.decode(scaleTensor(latents, 1 / c.vae.scalingFactor));
  const [, , h, w] = image.shape as [number, number, number, number];
  const infotexts = seeds.map((s) => formatInfotext(text.prompt, text.negativePrompt, { ...params(s), ...c.infotext }));
  const images: Uint8Array[] = [];
  for (let i = 0; i < seeds.length; i++) images.push(await encodePng(tensorToRgb(image.data, image.shape, i), w, h, infotexts[i]));
  return { images, infotexts };
}
