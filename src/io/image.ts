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

/** A1111's resize modes: stretch, cover then centre-crop, or contain then fill the borders with the image's edges. */
export type ResizeMode = "just-resize" | "crop-and-resize" | "resize-and-fill";

/** Resizes RGB pixels (HWC) to exactly `width`×`height` (Lanczos), by an A1111 resize mode. */
export async function resizeRgb(
  img: { rgb: Uint8Array; width: number; height: number },
  width: number,
  height: number,
  mode: ResizeMode = "just-resize",
): Promise<Uint8Array> {
  if (img.width === width && img.height === height) return img.rgb;
  const src = sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } });
  let out: Buffer;
  if (mode === "just-resize") out = await src.resize(width, height, { fit: "fill", kernel: "lanczos3" }).raw().toBuffer();
  else if (mode === "crop-and-resize") out = await src.resize(width, height, { fit: "cover", position: "centre", kernel: "lanczos3" }).raw().toBuffer();
  else {
    const scale = Math.min(width / img.width, height / img.height);
    const w = Math.max(1, Math.round(img.width * scale));
    const h = Math.max(1, Math.round(img.height * scale));
    const left = Math.floor((width - w) / 2);
    const top = Math.floor((height - h) / 2);
    const inner = await src.resize(w, h, { fit: "fill", kernel: "lanczos3" }).raw().toBuffer();
    out = await sharp(inner, { raw: { width: w, height: h, channels: 3 } })
      .extend({ left, top, right: width - w - left, bottom: height - h - top, extendWith: "copy" })
      .raw()
      .toBuffer();
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Decodes a grayscale mask (any image format; alpha ignored, channels averaged) to 0–255 values. */
export async function decodeMask(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array> {
  try {
    const buf = await sharp(bytes).flatten({ background: "#000000" }).grayscale().resize(width, height, { fit: "fill", kernel: "nearest" }).raw().toBuffer();
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    throw new InputError(`cannot decode the mask (${e instanceof Error ? e.message : String(e)}); send a PNG or JPEG`);
  }
}
