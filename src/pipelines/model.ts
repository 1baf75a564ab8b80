/** A loaded Stable Diffusion model: its components, the public sub-APIs and the pipelines. */
import { InputError } from "../errors.js";
import type { ClipTokenizer } from "../models/clip/tokenizer.js";
import { type Txt2ImgDefaults, type Txt2ImgParams, type Txt2ImgResult, txt2img } from "./txt2img.js";
import { type Img2ImgParams, img2img } from "./img2img.js";
import { type HiresParams, txt2imgHires } from "./hires.js";
import { type InpaintModeParams, inpaintModes } from "./inpaint-modes.js";
import type { Components, Tensor } from "./types.js";

/** What sdts found out about a model. */
export interface ModelInfo {
  readonly name: string;
  readonly source: string;
  readonly family: "sd1" | "sd2" | "tiny" | "default";
  readonly prediction: "epsilon" | "v";
  readonly inpainting: boolean;
  readonly configs: Readonly<Record<string, unknown>>;
}

/** A model ready to generate; call `dispose()` to release its sessions. */
export class Model {
  private disposed = false;
  constructor(
    readonly info: ModelInfo,
    private readonly c: Components,
    private readonly defaults: Txt2ImgDefaults,
    private readonly release: () => Promise<void>,
  ) {}

  /** The CLIP tokenizer: `encode(text)` gives the padded ids. */
  get tokenizer(): ClipTokenizer {
    return this.c.tokenizer;
  }

  /** The text encoder: padded ids [B][77] → U-Net context [B, 77, D]. */
  get textEncoder(): { encode(ids: number[][]): Promise<Tensor> } {
    return { encode: (ids) => this.live().textEncoder.encode(ids) };
  }

  /** The U-Net: predicts noise (or v) for latents at a timestep under a context. */
  get unet(): { predict(latent: Tensor, timestep: number, context: Tensor): Promise<Tensor>; readonly inChannels: number } {
    return { predict: (l, t, ctx) => this.live().unet.predict(l, t, ctx), inChannels: this.c.unet.inChannels };
  }

  /** The VAE: `encode` gives the posterior mean (unscaled latent), `decode` an image in [−1, 1]. */
  get vae(): { encode(image: Tensor): Promise<Tensor>; decode(latent: Tensor): Promise<Tensor>; readonly scalingFactor: number } {
    return {
      encode: (img) => this.live().vae.encode(img),
      decode: (lat) => this.live().vae.decode(lat),
      scalingFactor: this.c.vae.scalingFactor,
    };
  }

  /** The components, for the other pipelines (img2img, inpainting). */
  get components(): Components {
    return this.live();
  }

  /** Default size and sampler for this model. */
  get defaultParams(): Txt2ImgDefaults {
    return this.defaults;
  }

  /** Text to image; with `hires`, A1111's hires fix (upscale, then a second img2img pass). */
  txt2img(params: Txt2ImgParams & { hires?: HiresParams }): Promise<Txt2ImgResult> {
    const { hires, ...rest } = params;
    return hires ? txt2imgHires(this.live(), rest, hires, this.defaults) : txt2img(this.live(), rest, this.defaults);
  }

  /** Image to image: redraw `image` with `strength` (0 keeps it, 1 ignores it). */
  img2img(params: Img2ImgParams): Promise<Txt2ImgResult> {
    return img2img(this.live(), params, this.defaults);
  }

  /** Inpainting: redraw the white part of `mask` (9-channel inpainting checkpoints or any 4-channel model); also only-masked mode and outpainting. */
  inpaint(params: InpaintModeParams): Promise<Txt2ImgResult> {
    return inpaintModes(this.live(), params, this.defaults);
  }

  /** Releases every onnxruntime session; the model cannot be used afterwards. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.release();
  }

  private live(): Components {
    if (this.disposed) throw new InputError(`model '${this.info.name}' was disposed; load it again`);
    return this.c;
  }
}
