/** A loaded Stable Diffusion model: its components, the public sub-APIs and the pipelines. */
import { InputError } from "../errors.js";
import type { ClipTokenizer } from "../models/clip/tokenizer.js";
import { type Txt2ImgDefaults, type Txt2ImgParams, type Txt2ImgResult, txt2img } from "./txt2img.js";
import { type Img2ImgParams, img2img } from "./img2img.js";
import { type HiresParams, txt2imgHires } from "./hires.js";
import { type InpaintModeParams, inpaintModes } from "./inpaint-modes.js";
import type { Components, Tensor } from "./types.js";
import type { EmbeddingList, LoraInfo, LoraLibrary, LoraRequest } from "./adapters.js";
import type { WithLoras } from "./components.js";

/** What sdts found out about a model. */
export interface ModelInfo {
  readonly name: string;
  readonly source: string;
  readonly family: "sd1" | "sd2" | "tiny" | "default";
  readonly prediction: "epsilon" | "v";
  readonly inpainting: boolean;
  readonly configs: Readonly<Record<string, unknown>>;
}

/** LoRAs and embeddings of a loaded model (see loadModel's loraDir / embeddingsDir). */
export interface ModelAddOns {
  readonly loras: LoraLibrary;
  readonly embeddings: EmbeddingList;
  readonly withLoras: WithLoras;
}

/** LoRAs to apply to one generation, besides those named by `<lora:name:weight>` tags in the prompt. */
export interface LoraParams {
  loras?: readonly LoraRequest[];
}

/** A model ready to generate; call `dispose()` to release its sessions. */
export class Model {
  private disposed = false;
  constructor(
    readonly info: ModelInfo,
    private readonly c: Components,
    private readonly defaults: Txt2ImgDefaults,
    private readonly release: () => Promise<void>,
    private readonly addOns?: ModelAddOns,
  ) {}

  /** The CLIP tokenizer: `encode(text)` gives the padded ids. */
  get tokenizer(): ClipTokenizer {
    return this.c.tokenizer;
  }

  /** The text encoder: padded ids [B][77] → U-Net context [B, 77, D] (and with it each row's pooled state [B, D]). */
  get textEncoder(): { encode(ids: number[][]): Promise<Tensor>; encodeWithPooled(ids: number[][]): Promise<{ context: Tensor; pooled: Tensor }> } {
    return { encode: (ids) => this.live().textEncoder.encode(ids), encodeWithPooled: (ids) => this.live().textEncoder.encodeWithPooled(ids) };
  }

  /**
   * The U-Net: predicts noise (or v) for latents at a timestep under a context; `pooled` (the
   * prompts' pooled text states, from `textEncoder.encodeWithPooled`) where `needsPooled`.
   */
  get unet(): { predict(latent: Tensor, timestep: number, context: Tensor, pooled?: Tensor): Promise<Tensor>; readonly inChannels: number; readonly needsPooled: boolean } {
    return { predict: (l, t, ctx, pooled) => this.live().unet.predict(l, t, ctx, pooled), inChannels: this.c.unet.inChannels, needsPooled: this.c.unet.needsPooled };
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
  async txt2img(params: Txt2ImgParams & { hires?: HiresParams } & LoraParams): Promise<Txt2ImgResult> {
    const { hires, loras, ...rest } = params;
    const c = await this.adapted(rest.prompt, loras);
    return hires ? txt2imgHires(c, rest, hires, this.defaults) : txt2img(c, rest, this.defaults);
  }

  /** Image to image: redraw `image` with `strength` (0 keeps it, 1 ignores it). */
  async img2img(params: Img2ImgParams & LoraParams): Promise<Txt2ImgResult> {
    const { loras, ...rest } = params;
    return img2img(await this.adapted(rest.prompt, loras), rest, this.defaults);
  }

  /** Inpainting: redraw the white part of `mask` (9-channel inpainting checkpoints or any 4-channel model); also only-masked mode and outpainting. */
  async inpaint(params: InpaintModeParams & LoraParams): Promise<Txt2ImgResult> {
    const { loras, ...rest } = params;
    return inpaintModes(await this.adapted(rest.prompt, loras), rest, this.defaults);
  }

  /** The components with these LoRAs applied (for custom pipelines and tests); the plain components for an empty list. */
  componentsWithLoras(loras: readonly LoraRequest[]): Promise<Components> {
    return this.adapted("", loras);
  }

  /** LoRA files in the LoRA folder (empty without one). */
  listLoras(): Promise<LoraInfo[]> {
    return this.addOns?.loras.list() ?? Promise.resolve([]);
  }

  /** Textual-inversion embeddings loaded from the embeddings folder, and the files skipped with why. */
  listEmbeddings(): EmbeddingList {
    return this.addOns?.embeddings ?? { loaded: [], skipped: [] };
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

  /** The components with the LoRAs of `loras` and of the prompt's `<lora:…>` tags (the plain ones when there are none). */
  private async adapted(prompt: unknown, loras: readonly LoraRequest[] | undefined): Promise<Components> {
    const c = this.live();
    if (loras !== undefined && !Array.isArray(loras)) throw new InputError("loras must be an array of { name or path, weight? }");
    if (this.addOns === undefined) {
      if (loras !== undefined && loras.length > 0) throw new InputError("this model was built without LoRA support; load it with loadModel");
      return c;
    }
    if (typeof prompt !== "string") return c; // the pipeline reports the bad prompt
    const a = await this.addOns.loras.activate(prompt, loras ?? []);
    return a === undefined ? c : this.addOns.withLoras(a, a.infotext);
  }
}
