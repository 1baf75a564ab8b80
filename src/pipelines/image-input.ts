/** Turning an input image (PNG/JPEG/WebP bytes, or a tensor in [−1, 1]) into a [1, 3, H, W] tensor at the target size. */
import { InputError } from "../errors.js";
import { type ResizeMode, decodeImage, resizeRgb, rgbToTensor } from "../io/image.js";
import type { Tensor } from "./types.js";

/** An input image: encoded bytes or a [1, 3, H, W] tensor in [−1, 1]. */
export type ImageInput = Uint8Array | Tensor;

const MODES: readonly ResizeMode[] = ["just-resize", "crop-and-resize", "resize-and-fill"];

/** Checks a resize mode (also A1111's numbers 0, 1, 2). */
export function checkResizeMode(v: unknown): ResizeMode {
  if (v === undefined) return "just-resize";
  if (typeof v === "number" && MODES[v] !== undefined) return MODES[v] as ResizeMode;
  if (typeof v === "string" && (MODES as readonly string[]).includes(v)) return v as ResizeMode;
  throw new InputError(`resizeMode must be one of ${MODES.join(", ")} (or 0, 1, 2), got ${JSON.stringify(v)}`);
}

/** The natural size of an input image. */
export async function imageSize(img: ImageInput): Promise<{ width: number; height: number }> {
  if (img instanceof Uint8Array) {
    const d = await decodeImage(img);
    return { width: d.width, height: d.height };
  }
  return { width: img.shape[3] ?? 0, height: img.shape[2] ?? 0 };
}

/** The image as [1, 3, height, width] in [−1, 1]. Tensors must already have that size. */
export async function loadImage(img: ImageInput, width: number, height: number, mode: ResizeMode): Promise<Tensor> {
  if (img instanceof Uint8Array) {
    const d = await decodeImage(img);
    return rgbToTensor(await resizeRgb(d, width, height, mode), width, height);
  }
  const [n, c, h, w] = img.shape;
  if (img.shape.length !== 4 || n !== 1 || c !== 3) throw new InputError(`image tensor must have shape [1, 3, H, W] (got [${img.shape.join(", ")}])`);
  if (h !== height || w !== width) throw new InputError(`image tensor is ${w}×${h} but the output is ${width}×${height}; resize it or pass PNG bytes`);
  if (img.data.length !== 3 * height * width) throw new InputError("image tensor data does not match its shape");
  return img;
}
