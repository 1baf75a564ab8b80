/** Images in and out: tensors in [−1, 1] (NCHW) ↔ PNG bytes through sharp. */
import sharp from "sharp";
import { InputError } from "../errors.js";
import { addPngText } from "./png-text.js";

/** RGB bytes (HWC, 0–255) of image `index` of a [N, 3, H, W] tensor in [−1, 1], as a viewer shows it: clamp((x + 1)/2, 0, 1). */
export function tensorToRgb(data: Float32Array, shape: readonly number[], index = 0): Uint8Array {
  const [, c, h, w] = shape as [number, number, number, number];
  if (c !== 3) throw new InputError(`expected a 3-channel image tensor, got shape [${shape.join(", ")}]`);
  const plane = h * w;
  const base = index * 3 * plane;
  const out = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let k = 0; k < 3; k++) {
      const v = ((data[base + k * plane + i] ?? 0) + 1) / 2;
      out[i * 3 + k] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  }
  return out;
}

/** PNG bytes of RGB pixels, with an optional A1111 `parameters` text chunk. */
export async function encodePng(rgb: Uint8Array, width: number, height: number, parameters?: string): Promise<Uint8Array> {
  const png = await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toBuffer();
  const bytes = new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
  return parameters === undefined ? bytes : addPngText(bytes, "parameters", parameters);
}

/** Decodes PNG/JPEG/WebP bytes to RGB pixels (alpha composited on white). */
export async function decodeImage(bytes: Uint8Array): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  try {
    const { data, info } = await sharp(bytes).flatten({ background: "#ffffff" }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    return { rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (e) {
    throw new InputError(`cannot decode the image (${e instanceof Error ? e.message : String(e)}); send PNG, JPEG or WebP`);
  }
}

/** RGB pixels (HWC, 0–255) → [1, 3, H, W] in [−1, 1]. */
export function rgbToTensor(rgb: Uint8Array, width: number, height: number): { data: Float32Array; shape: number[] } {
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let k = 0; k < 3; k++) data[k * plane + i] = ((rgb[i * 3 + k] ?? 0) / 255) * 2 - 1;
  return { data, shape: [1, 3, height, width] };
}
