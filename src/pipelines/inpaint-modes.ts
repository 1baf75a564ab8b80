/** Inpainting entry point: plain, only-masked (crop, work at full resolution, paste back) and outpainting. */
import { InputError } from "../errors.js";
import { decodeImage } from "../io/image.js";
import { readPngText } from "../io/png-text.js";
import { type InpaintParams, inpaint } from "./inpaint.js";
import { loadMask } from "./mask.js";
import { type Outpaint, cropToMask, growCanvas, pasteCrop } from "./outpaint.js";
import type { Txt2ImgDefaults, Txt2ImgResult } from "./txt2img.js";
import type { Components } from "./types.js";

/** Inpainting parameters with A1111's only-masked mode and outpainting. */
export interface InpaintModeParams extends Omit<InpaintParams, "mask"> {
  /** Required unless `outpaint` is given (then the new border is the mask). */
  mask?: InpaintParams["mask"];
  /** Work on the mask's padded bounding box at the output size, then paste back. */
  onlyMasked?: boolean;
  /** Padding around the mask's box in only-masked mode (A1111 default 32). */
  onlyMaskedPadding?: number;
  /** Grow the canvas by these pixels and inpaint the new border. */
  outpaint?: Outpaint;
}

/** Runs inpainting in the requested mode. */
export async function inpaintModes(c: Components, p: InpaintModeParams, defaults: Txt2ImgDefaults): Promise<Txt2ImgResult> {
  let params: InpaintModeParams = p;
  if (p.outpaint) {
    if (!(p.image instanceof Uint8Array) && !("data" in p.image)) throw new InputError("image must be image bytes or a tensor");
    const grown = await growCanvas(p.image, p.outpaint);
    params = { ...p, image: grown.image, mask: grown.mask, width: p.width ?? grown.width, height: p.height ?? grown.height, fill: p.fill ?? "original", maskBlur: p.maskBlur ?? 4 };
  }
  const mask = params.mask;
  if (mask === undefined) throw new InputError("inpaint needs a mask (white = repaint) or an outpaint size");
  if (params.onlyMasked !== true) return inpaint(c, { ...params, mask }, defaults);
  if (!(params.image instanceof Uint8Array)) throw new InputError("only-masked inpainting needs the image as PNG/JPEG bytes");
  // Only masked: crop, inpaint the crop at the output size, paste back with the soft mask.
  const full = await decodeImage(params.image);
  const width = params.width ?? defaults.width;
  const height = params.height ?? defaults.height;
  const soft = await loadMask(mask, full.width, full.height, params.maskBlur ?? 4, params.invertMask === true);
  const crop = await cropToMask(full, soft, params.onlyMaskedPadding ?? 32, width, height);
  if (crop === undefined) throw new InputError("the mask is empty (all black): nothing to repaint");
  const res = await inpaint(c, { ...params, image: crop.image, mask: crop.mask, width, height, maskBlur: 0, resizeMode: "just-resize", invertMask: false }, defaults);
  const images = await Promise.all(res.images.map((png) => pasteCrop(full, crop, png, soft, readPngText(png)["parameters"] ?? "")));
  return { ...res, images, info: { ...res.info, width: full.width, height: full.height } };
}
