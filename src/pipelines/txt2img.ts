/** Text to image: encode the prompt, denoise seeded noise with classifier-free guidance, decode. */
import { InputError } from "../errors.js";
import { renderImages } from "./output.js";
import { type Denoised, denoise } from "./denoise.js";
import { batchNoise } from "./noise.js";
import { buildConditioning, checkSyntax } from "./conditioning.js";
import type { Components, ProgressInfo, Tensor } from "./types.js";
import { ExplainCollector, type Explanation } from "./explain.js";
import { checkOutput, checkSampling, runInfo } from "./validate.js";

/** Parameters of txt2img (defaults as A1111: 20 steps, CFG 7, Euler a at 512×512 for SD). */
export interface Txt2ImgParams {
  prompt: string;
  negativePrompt?: string;
  steps?: number;
  cfgScale?: number;
  sampler?: string;
  /** −1 or absent: random; image i of a batch uses seed + i. */
  seed?: number;
  width?: number;
  height?: number;
  batchSize?: number;
  /** Initial noise [batch, C, h, w] (unscaled by the sampler's init sigma), overriding the seed. */
  latents?: Tensor;
  /** "per-image" (A1111: image i from seed + i) or "batch" (diffusers: one generator for the batch). */
  noise?: "per-image" | "batch";
  onProgress?: (p: ProgressInfo) => void;
  signal?: AbortSignal;
  /** "plain" (default: the text as diffusers encodes it) or "a1111": (x:1.2) weights, [a:b:N], [a|b], AND, BREAK, long prompts. */
  promptSyntax?: "plain" | "a1111";
  /** Also return the filmstrip and per-token attention heatmaps of the first image (slower). */
  explain?: boolean;
}

/** What txt2img returns. */
export interface Txt2ImgResult {
  /** PNG bytes with A1111 infotext, one per image. */
  images: Uint8Array[];
  seeds: number[];
  /** Final latents as the sampler leaves them (diffusers' output_type="latent"); the VAE decodes latents / scalingFactor. */
  latents: Tensor;
  info: Txt2ImgInfo;
  /** With `explain: true`. */
  explain?: Explanation;
}

/** The parameters actually used, as reported back. */
export interface Txt2ImgInfo {
  prompt: string;
  negativePrompt: string;
  steps: number;
  cfgScale: number;
  sampler: string;
  seed: number;
  seeds: number[];
  width: number;
  height: number;
  batchSize: number;
  model: string;
  infotexts: string[];
  /** img2img and inpainting: how much of the image was redrawn. */
  denoisingStrength?: number;
}

/** Defaults for a model: SD's 512², Euler a and CFG 7 unless the model says otherwise. */
export interface Txt2ImgDefaults {
  readonly width: number;
  readonly height: number;
  readonly sampler: string;
  readonly cfgScale: number;
}

/** Runs txt2img on loaded components. */
export async function txt2img(c: Components, p: Txt2ImgParams, defaults: Txt2ImgDefaults): Promise<Txt2ImgResult> {
  // 1. validate everything before any work
  const sp = checkSampling(p, defaults);
  const { prompt, negativePrompt, steps, cfgScale, sampler } = sp;
  const out = checkOutput(p, defaults, c.vae.downscale);
  const { width, height, batch, seed } = out;
  const shape = [batch, c.vae.latentChannels, height / c.vae.downscale, width / c.vae.downscale];
  if (p.latents && p.latents.shape.join() !== shape.join()) {
    throw new InputError(`latents must have shape [${shape.join(", ")}] for this size and batch (got [${p.latents.shape.join(", ")}])`);
  }
  if (c.unet.inChannels !== c.vae.latentChannels) {
    throw new InputError(`this is an inpainting checkpoint (U-Net takes ${c.unet.inChannels} channels); use inpaint, not txt2img`);
  }
  // 2. encode the prompt (unconditional rows first when guiding)
  const guided = cfgScale > 1;
  const conditioning = await buildConditioning(c, prompt, negativePrompt, { batch, guided, steps, syntax: checkSyntax(p.promptSyntax) });
  // 3. seeded noise
  const { noise, rng, seeds } = batchNoise(shape, seed, p.noise ?? "per-image");
  // 4. denoise (collecting the explanation if asked)
  const ex = p.explain === true ? new ExplainCollector(c, guided ? batch : 0, shape) : undefined;
  const onProgress = (q: ProgressInfo) => {
    ex?.addFrame(q.denoised ?? q.latents);
    p.onProgress?.(q);
  };
  const final: Denoised = await denoise(c, {
    sampler,
    steps,
    cfgScale,
    conditioning,
    noise: p.latents ?? noise,
    rng,
    onProgress,
    ...(ex ? { onAttention: (_i: number, maps: Tensor) => ex.addAttention(maps) } : {}),
    ...(p.signal ? { signal: p.signal } : {}),
  });
  // 5. decode, and encode PNGs with their infotext
  const latents = final.latents;
  const { images, infotexts } = await renderImages(c, latents, { prompt, negativePrompt }, seeds, (s) => ({
    Steps: steps,
    Sampler: sampler,
    "CFG scale": cfgScale,
    Seed: s,
    Size: `${width}x${height}`,
    Model: c.name,
  }));
  const info = runInfo(sp, out, { seeds, model: c.name, infotexts });
  const explain = ex ? await ex.finish(c.tokenizer, prompt) : undefined;
  return { images, seeds, latents, info, ...(explain ? { explain } : {}) };
}

