/** Outpainting: grow the canvas and inpaint the new border; and only-masked inpainting at full resolution. */
import sharp from "sharp";
import { InputError } from "../errors.js";
import { decodeImage, encodePng, resizeRgb } from "../io/image.js";
import type { ImageInput } from "./image-input.js";
import { cropBox } from "./mask.js";
import type { Tensor } from "./types.js";
import { tensorToRgb } from "../io/image.js";

/** Pixels to add on each side. */
export interface Outpaint {
  readonly left?: number;
  readonly right?: number;
  readonly top?: number;
  readonly bottom?: number;
}

async function toRgb(img: ImageInput): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  if (img instanceof Uint8Array) return decodeImage(img);
  const [, , h, w] = img.shape as [number, number, number, number];
  return { rgb: tensorToRgb(img.data, img.shape, 0), width: w, height: h };
}

/**
 * The grown canvas (the border filled by stretching the image's edge pixels, a good start for
 * the sampler) and its mask (white = the new border), both as PNG bytes.
 */
export async function growCanvas(img: ImageInput, o: Outpaint): Promise<{ image: Uint8Array; mask: Uint8Array; width: number; height: number }> {
  const [l, r, t, b] = [o.left ?? 0, o.right ?? 0, o.top ?? 0, o.bottom ?? 0];
  for (const v of [l, r, t, b]) if (!Number.isInteger(v) || v < 0 || v > 2048) throw new InputError(`outpaint sizes must be whole numbers of pixels 0–2048 (got ${v})`);
  if (l + r + t + b === 0) throw new InputError("outpaint needs at least one side to grow (left, right, top, bottom)");
  const src = await toRgb(img);
  const width = src.width + l + r;
  const height = src.height + t + b;
  const grown = await sharp(src.rgb, { raw: { width: src.width, height: src.height, channels: 3 } })
    .extend({ left: l, right: r, top: t, bottom: b, extendWith: "copy" })
    .raw()
    .toBuffer();
  const mask = new Uint8Array(width * height).fill(255);
  for (let y = t; y < t + src.height; y++) mask.fill(0, y * width + l, y * width + l + src.width);
  const image = await encodePng(new Uint8Array(grown.buffer, grown.byteOffset, grown.byteLength), width, height);
  const maskPng = await sharp(mask, { raw: { width, height, channels: 1 } }).png().toBuffer();
  return { image, mask: new Uint8Array(maskPng.buffer, maskPng.byteOffset, maskPng.byteLength), width, height };
}

/** The crop of an image around the mask, for only-masked inpainting, and how to paste a result back. */
export interface MaskedCrop {
  readonly box: { x: number; y: number; w: number; h: number };
  readonly image: Uint8Array;
  readonly mask: Uint8Array;
}

/** Crops image and mask to the mask's padded box (A1111's "only masked"); undefined for an empty mask. */
export async function cropToMask(
  img: { rgb: Uint8Array; width: number; height: number },
  soft: Float32Array,
  padding: number,
  width: number,
  height: number,
): Promise<MaskedCrop | undefined> {
  const box = cropBox(soft, img.width, img.height, padding, width, height);
  if (box === undefined) return undefined;
  const crop = await sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } }).extract({ left: box.x, top: box.y, width: box.w, height: box.h }).raw().toBuffer();
  const m = Uint8Array.from(soft, (v) => Math.round(v * 255));
  const mcrop = await sharp(m, { raw: { width: img.width, height: img.height, channels: 1 } }).extract({ left: box.x, top: box.y, width: box.w, height: box.h }).png().toBuffer();
  const scaled = await resizeRgb({ rgb: new Uint8Array(crop), width: box.w, height: box.h }, width, height);
  return { box, image: await encodePng(scaled, width, height), mask: new Uint8Array(mcrop) };
}

/** Pastes a generated crop back into the full image, blended by the soft mask. */
export async function pasteCrop(full: { rgb: Uint8Array; width: number; height: number }, crop: MaskedCrop, generated: Uint8Array, soft: Float32Array, infotext: string): Promise<Uint8Array> {
  const gen = await decodeImage(generated);
  const back = await resizeRgb(gen, crop.box.w, crop.box.h);
  const out = full.rgb.slice();
  for (let y = 0; y < crop.box.h; y++) {
    for (let x = 0; x < crop.box.w; x++) {
      const gi = (y + crop.box.y) * full.width + (x + crop.box.x);
      const m = soft[gi] ?? 0;
      for (let k = 0; k < 3; k++) out[gi * 3 + k] = Math.round((full.rgb[gi * 3 + k] ?? 0) * (1 - m) + (back[(y * crop.box.w + x) * 3 + k] ?? 0) * m);
    }
  }
  return encodePng(out, full.width, full.height, infotext);
}

export type { Tensor };
