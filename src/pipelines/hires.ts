/**
 * A1111's hires fix: txt2img at the base size, upscale (in latent space, or the decoded image
 * with Lanczos/nearest), then img2img at the target size with its own steps and strength.
 */
import { InputError } from "../errors.js";
import sharp from "sharp";
import { decodeImage, encodePng } from "../io/image.js";
import { type Img2ImgParams, img2img } from "./img2img.js";
import { type LatentMode, resizeLatents } from "./latent-resize.js";
import { type Txt2ImgDefaults, type Txt2ImgParams, type Txt2ImgResult, txt2img } from "./txt2img.js";
import type { Components } from "./types.js";

/** Hires-fix settings (A1111's enable_hr, hr_scale, hr_resize_x/y, hr_upscaler, hr_second_pass_steps, denoising_strength). */
export interface HiresParams {
  /** Target = base size × scale (default 2), unless width/height are given. */
  readonly scale?: number;
  readonly width?: number;
  readonly height?: number;
  /** A1111 upscaler name (default "Latent"). */
  readonly upscaler?: string;
  /** Second-pass steps; 0 or absent = the first pass's steps. */
  readonly steps?: number;
  /** Default 0.7. */
  readonly denoisingStrength?: number;
}

const LATENT_UPSCALERS: Readonly<Record<string, LatentMode>> = {
  latent: "bilinear",
  "latent (antialiased)": "bilinear",
  "latent (bicubic)": "bicubic",
  "latent (bicubic antialiased)": "bicubic",
  "latent (nearest)": "nearest",
  "latent (nearest-exact)": "nearest",
};
const IMAGE_UPSCALERS = new Set(["lanczos", "nearest", "none"]);

/** The upscaler names sdts has, for /sdapi/v1/upscalers and latent-upscale-modes. */
export const HIRES_UPSCALERS: readonly string[] = [
  "Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)", "None", "Lanczos", "Nearest",
];

/** txt2img followed by the hires pass. */
export async function txt2imgHires(c: Components, p: Txt2ImgParams, h: HiresParams, defaults: Txt2ImgDefaults): Promise<Txt2ImgResult> {
  const up = (h.upscaler ?? "Latent").toLowerCase();
  const latentMode = LATENT_UPSCALERS[up];
  if (latentMode === undefined && !IMAGE_UPSCALERS.has(up)) throw new InputError(`unknown hires upscaler '${h.upscaler}'; use one of ${HIRES_UPSCALERS.join(", ")}`);
  const scale = h.scale ?? 2;
  if (!(typeof scale === "number" && scale >= 1 && scale <= 8)) throw new InputError(`hires scale must be a number from 1 to 8 (got ${String(scale)})`);
  const base = await txt2img(c, p, defaults);
  const width = h.width ?? Math.round((base.info.width * scale) / 8) * 8;
  const height = h.height ?? Math.round((base.info.height * scale) / 8) * 8;
  const strength = h.denoisingStrength ?? 0.7;
  const common = {
    prompt: base.info.prompt,
    negativePrompt: base.info.negativePrompt,
    steps: h.steps !== undefined && h.steps > 0 ? h.steps : base.info.steps,
    cfgScale: base.info.cfgScale,
    sampler: base.info.sampler,
    seed: base.info.seed,
    width,
    height,
    batchSize: base.info.batchSize,
    strength,
    ...(p.promptSyntax ? { promptSyntax: p.promptSyntax } : {}),
    ...(p.noise ? { noise: p.noise } : {}),
    ...(p.onProgress ? { onProgress: p.onProgress } : {}),
    ...(p.signal ? { signal: p.signal } : {}),
  };
  const d = c.vae.downscale;
  const second = latentMode
    ? await img2img(c, { ...common, image: new Uint8Array(), initLatents: resizeLatents(base.latents, height / d, width / d, latentMode) }, defaults)
    : await secondPassFromImages(c, base, common, up, defaults);
  const extra = `, Hires upscale: ${scale}, Hires steps: ${common.steps}, Hires upscaler: ${h.upscaler ?? "Latent"}`;
  const infotexts = second.info.infotexts.map((t) => t + extra);
  // The PNGs carry the infotext too: write them again with the hires settings.
  const images = await Promise.all(
    second.images.map(async (png, i) => {
      const d = await decodeImage(png);
      return encodePng(d.rgb, d.width, d.height, infotexts[i]);
    }),
  );
  return { ...second, images, info: { ...second.info, infotexts } };
}

async function secondPassFromImages(
  c: Components,
  base: Txt2ImgResult,
  common: Omit<Img2ImgParams, "image">,
  upscaler: string,
  defaults: Txt2ImgDefaults,
): Promise<Txt2ImgResult> {
  // Image upscalers work per image, each with its own seed.
  const results: Txt2ImgResult[] = [];
  for (const [i, png] of base.images.entries()) {
    const img = await decodeImage(png);
    const kernel = upscaler === "nearest" ? "nearest" : "lanczos3";
    const big = await sharp(img.rgb, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(common.width, common.height, { fit: "fill", kernel })
      .raw()
      .toBuffer();
    const image = await encodePng(new Uint8Array(big.buffer, big.byteOffset, big.byteLength), common.width ?? img.width, common.height ?? img.height);
    results.push(await img2img(c, { ...common, image, batchSize: 1, seed: base.seeds[i] ?? 0 }, defaults));
  }
  const per = results[0]?.latents.data.length ?? 0;
  const latents = new Float32Array(per * results.length);
  results.forEach((r, i) => latents.set(r.latents.data, i * per));
  const first = results[0] as Txt2ImgResult;
  const seeds = results.flatMap((r) => r.seeds);
  return {
    images: results.flatMap((r) => r.images),
    seeds,
    latents: { data: latents, shape: [results.length, ...first.latents.shape.slice(1)] },
    info: { ...first.info, seeds, batchSize: results.length, infotexts: results.flatMap((r) => r.info.infotexts) },
  };
}
