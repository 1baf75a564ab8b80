/** Inpainting masks: decoding, blur, binarizing, latent-size masks, and the only-masked crop box. */
import sharp from "sharp";
import { InputError } from "../errors.js";
import { decodeMask } from "../io/image.js";
import type { Tensor } from "./types.js";

/** A mask: encoded image bytes (white = repaint) or a [1, 1, H, W] tensor in [0, 1]. */
export type MaskInput = Uint8Array | Tensor;

/** The mask as H·W values in [0, 1] at the output size, blurred by `blur` pixels (Gaussian σ = blur, as A1111's mask blur). */
export async function loadMask(mask: MaskInput, width: number, height: number, blur: number, invert: boolean): Promise<Float32Array> {
  let u8: Uint8Array;
  if (mask instanceof Uint8Array) u8 = await decodeMask(mask, width, height);
  else {
    if (mask.shape.length !== 4 || mask.shape[1] !== 1 || mask.shape[2] !== height || mask.shape[3] !== width) {
      throw new InputError(`mask tensor must have shape [1, 1, ${height}, ${width}] (got [${mask.shape.join(", ")}])`);
    }
    u8 = Uint8Array.from(mask.data, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255));
  }
  if (invert) u8 = u8.map((v) => 255 - v);
  if (blur > 0) {
    // sharp's blur hands back sRGB (3 channels) unless told to stay grey (#7: the blurred mask came out garbled).
    const b = await sharp(u8, { raw: { width, height, channels: 1 } }).blur(Math.max(0.3, blur)).toColourspace("b-w").raw().toBuffer();
    u8 = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  return Float32Array.from(u8, (v) => v / 255);
}

/** 1 where the (soft) mask is ≥ 0.5, else 0 — diffusers' binarization. */
export function binarize(m: Float32Array): Float32Array {
  return m.map((v) => (v >= 0.5 ? 1 : 0));
}

/** Nearest downsampling by an integer factor: latent pixel (i, j) takes mask pixel (f·i, f·j), as torch's interpolate(mode="nearest"). */
export function latentMask(m: Float32Array, width: number, height: number, f: number): Tensor {
  const w = width / f;
  const h = height / f;
  const out = new Float32Array(w * h);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) out[i * w + j] = m[i * f * width + j * f] ?? 0;
  return { data: out, shape: [1, 1, h, w] };
}

/** image · (mask < 0.5): the repaint area set to 0 (mid-gray in [−1, 1]). */
export function maskedImage(image: Tensor, binary: Float32Array): Tensor {
  const plane = binary.length;
  const data = image.data.map((v, i) => ((binary[i % plane] ?? 0) < 0.5 ? v : 0));
  return { data, shape: [...image.shape] };
}

/** The bounding box of mask > 0, padded, grown to the aspect ratio of `width`×`height` and clamped (A1111's only-masked crop). */
export function cropBox(m: Float32Array, imgW: number, imgH: number, padding: number, width: number, height: number): { x: number; y: number; w: number; h: number } | undefined {
  let x0 = imgW;
  let y0 = imgH;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < imgH; y++) {
    for (let x = 0; x < imgW; x++) {
      if ((m[y * imgW + x] ?? 0) > 0) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
  }
  if (x1 < 0) return undefined;
  let l = Math.max(0, x0 - padding);
  let t = Math.max(0, y0 - padding);
  let r = Math.min(imgW, x1 + 1 + padding);
  let b = Math.min(imgH, y1 + 1 + padding);
  // grow the short side to the target aspect ratio, within the image
  const want = width / height;
  if ((r - l) / (b - t) < want) {
    const need = Math.min(imgW, Math.round((b - t) * want));
    const grow = need - (r - l);
    l = Math.max(0, l - Math.floor(grow / 2));
    r = Math.min(imgW, l + need);
    l = Math.max(0, r - need);
  } else {
    const need = Math.min(imgH, Math.round((r - l) / want));
    const grow = need - (b - t);
    t = Math.max(0, t - Math.floor(grow / 2));
    b = Math.min(imgH, t + need);
    t = Math.max(0, b - need);
  }
  return { x: l, y: t, w: r - l, h: b - t };
}
