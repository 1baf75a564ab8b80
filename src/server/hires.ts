/**
 * The hires fix as the server offers it: upscaler names (A1111's /upscalers and
 * /latent-upscale-modes) and the second pass's size, worked out as A1111's
 * StableDiffusionProcessingTxt2Img.calculate_target_resolution does
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0027ce1f6e58c5f4279173e468a60aef420babfe/modules/processing.py).
 */
import { HIRES_UPSCALERS } from "../index.js";
import { invalid } from "./http.js";
import type { Limits } from "./params.js";

const isLatent = (name: string): boolean => name.toLowerCase().startsWith("latent");

/** The canonical name of an upscaler (case-insensitive), or undefined. */
export function findUpscaler(name: string): string | undefined {
  const key = name.trim().toLowerCase();
  return HIRES_UPSCALERS.find((u) => u.toLowerCase() === key);
}

/** A known upscaler name, or a 422 naming `field` that lists them. */
export function upscalerField(name: string, field: string): string {
  const hit = findUpscaler(name);
  if (hit === undefined) throw invalid(field, `unknown upscaler ${JSON.stringify(name)}; use one of ${HIRES_UPSCALERS.join(", ")}`);
  return hit;
}

/** GET /sdapi/v1/upscalers: the image upscalers, in A1111's UpscalerItem shape (its built-in ones report scale 4). */
export function upscalerItems(): Record<string, unknown>[] {
  return HIRES_UPSCALERS.filter((u) => !isLatent(u)).map((name) => ({ name, model_name: null, model_path: null, model_url: null, scale: 4 }));
}

/** GET /sdapi/v1/latent-upscale-modes: `[{ name }]`. */
export function latentModeItems(): { name: string }[] {
  return HIRES_UPSCALERS.filter(isLatent).map((name) => ({ name }));
}

const floor8 = (v: number): number => Math.max(8, Math.floor(v / 8) * 8);

/**
 * The second pass's size: base × scale when no size is given; one side given keeps the base's
 * aspect ratio. Rounded down to a multiple of 8, as A1111's latent (size // 8) is. With both
 * sides given A1111 upscales to cover them and crops the latent; sdts resizes to them.
 */
export function hiresTarget(base: { width: number; height: number }, scale: number, width: number, height: number): { width: number; height: number } {
  if (width === 0 && height === 0) return { width: floor8(base.width * scale), height: floor8(base.height * scale) };
  if (height === 0) return { width: floor8(width), height: floor8((width * base.height) / base.width) };
  if (width === 0) return { width: floor8((height * base.width) / base.height), height: floor8(height) };
  return { width: floor8(width), height: floor8(height) };
}

/** Checks the target against the size limits; a 422 names `widthField` or `heightField`. */
export function checkHiresTarget(t: { width: number; height: number }, limits: Limits, widthField: string, heightField: string): void {
  if (t.width > limits.maxWidth) throw invalid(widthField, `the hires size would be ${t.width}×${t.height}, wider than this server's limit of ${limits.maxWidth}; upscale less`);
  if (t.height > limits.maxHeight) throw invalid(heightField, `the hires size would be ${t.width}×${t.height}, taller than this server's limit of ${limits.maxHeight}; upscale less`);
}
