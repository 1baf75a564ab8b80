/** Pixel-space helpers of inpainting: filling the masked area from its surroundings, pasting results over the original. */
import { decodeImage, encodePng, tensorToRgb } from "../io/image.js";
import type { Tensor } from "./types.js";

/**
 * A1111's "fill": the masked area takes the colours of its surroundings, by repeatedly
 * averaging each unknown pixel's known 4-neighbours outward until the area is filled.
 */
export async function fillMasked(image: Tensor, hard: Float32Array): Promise<Tensor> {
  const [, , h, w] = image.shape as [number, number, number, number];
  const plane = h * w;
  const data = image.data.slice();
  const known = Uint8Array.from(hard, (m) => (m < 0.5 ? 1 : 0));
  if (!known.includes(1)) return image;
  let pending = known.includes(0);
  while (pending) {
    pending = false;
    const next = known.slice();
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (known[i]) continue;
        const nb = [x > 0 ? i - 1 : -1, x < w - 1 ? i + 1 : -1, y > 0 ? i - w : -1, y < h - 1 ? i + w : -1].filter((j) => j >= 0 && known[j]);
        if (nb.length === 0) {
          pending = true;
          continue;
        }
        for (let ch = 0; ch < 3; ch++) data[ch * plane + i] = nb.reduce((s, j) => s + (data[ch * plane + j] ?? 0), 0) / nb.length;
        next[i] = 1;
      }
    }
    known.set(next);
  }
  return { data, shape: [...image.shape] };
}

/** The generated PNG pasted over the original image with a soft mask: out = orig·(1 − m) + gen·m. */
export async function compositeOver(original: Tensor, generated: Uint8Array, soft: Float32Array, infotext: string): Promise<Uint8Array> {
  const gen = await decodeImage(generated);
  const orig = tensorToRgb(original.data, original.shape, 0);
  const out = gen.rgb.map((v, i) => {
    const m = soft[Math.floor(i / 3)] ?? 0;
    return Math.round((orig[i] ?? 0) * (1 - m) + v * m);
  });
  return encodePng(out, gen.width, gen.height, infotext);
}
