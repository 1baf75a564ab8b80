/**
 * The explain view's data: the filmstrip (the sampler's estimate of the final image at each
 * step) and, per prompt token, where the U-Net's cross-attention looked (averaged over layers,
 * heads and steps).
 */
import { encodePng, tensorToRgb } from "../io/image.js";
import type { ClipTokenizer } from "../models/clip/tokenizer.js";
import { extractLoraTags } from "./lora-tags.js";
import { previewPng } from "./preview.js";
import type { Components, Tensor } from "./types.js";

/** One token's heatmap at latent resolution, values in [0, 1]. */
export interface TokenHeatmap {
  readonly token: string;
  /** Position in the 77-token context (1 = first prompt token). */
  readonly index: number;
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;
}

/** What `explain: true` adds to a txt2img result (for the first image of the batch). */
export interface Explanation {
  readonly tokens: string[];
  /** One per token; none where the U-Net reads the pooled state in every context row (`context` "pooled"), which gives no word a map of its own. */
  readonly heatmaps: TokenHeatmap[];
  /** What the U-Net's context rows held (UNetRunner.textContext). */
  readonly context: "tokens" | "pooled";
  /** PNG per step: the predicted final image. */
  readonly filmstrip: Uint8Array[];
}

/** Collects attention maps and step images while denoising. */
export class ExplainCollector {
  private sum: Float64Array | undefined;
  private calls = 0;
  private readonly frames: Promise<Uint8Array>[] = [];

  /** `condRow`: the batch row of image 0's conditional pass (batch when guided, else 0). */
  constructor(
    private readonly c: Components,
    private readonly condRow: number,
    private readonly latentShape: readonly number[],
  ) {}

  /** Adds one U-Net call's maps [rows, h·w, L]. */
  addAttention(maps: Tensor): void {
    const [, hw, l] = maps.shape as [number, number, number];
    const per = hw * l;
    this.sum ??= new Float64Array(per);
    for (let i = 0; i < per; i++) this.sum[i] = (this.sum[i] ?? 0) + (maps.data[this.condRow * per + i] ?? 0);
    this.calls++;
  }

  /** Adds one step's predicted final latents (image 0 is used). */
  addFrame(latents: Tensor): void {
    const [, c, h, w] = latents.shape as [number, number, number, number];
    const one: Tensor = { data: latents.data.slice(0, c * h * w), shape: [1, c, h, w] };
    // Small latents decode for real; SD-size ones use the linear preview (a VAE decode per step is seconds on CPU).
    if (h * w <= 32 * 32) this.frames.push(this.decodeFrame(one));
    else this.frames.push(previewPng(one, 0, 2));
  }

  private async decodeFrame(scaled: Tensor): Promise<Uint8Array> {
    const vae = this.c.vae;
    const img = await vae.decode({ data: scaled.data.map((v) => v / vae.scalingFactor), shape: scaled.shape });
    const [, , h, w] = img.shape as [number, number, number, number];
    return encodePng(tensorToRgb(img.data, img.shape, 0), w, h);
  }

  /** The explanation for `prompt`. */
  async finish(tokenizer: ClipTokenizer, prompt: string): Promise<Explanation> {
    const [, , h, w] = this.latentShape as [number, number, number, number];
    const ids = tokenizer.tokenize(extractLoraTags(prompt).prompt).slice(0, tokenizer.maxLength - 2);
    const tokens = ids.map((id) => (tokenizer.idToToken(id) ?? "?").replace(/<\/w>$/, ""));
    const hw = h * w;
    const l = this.sum ? this.sum.length / hw : 0;
    const context = this.c.unet.textContext;
    // Every context row the same vector: each row gets the same share of the attention, so a map per word would say nothing.
    const heatmaps = context === "pooled" ? [] : tokens.map((token, j) => {
      const data = new Float32Array(hw);
      let max = 0;
      for (let p = 0; p < hw; p++) {
        const v = (this.sum?.[p * l + j + 1] ?? 0) / Math.max(this.calls, 1);
        data[p] = v;
        max = Math.max(max, data[p] ?? 0); // the stored float32, so that the peak divides to exactly 1
      }
      if (max > 0) for (let p = 0; p < hw; p++) data[p] = (data[p] ?? 0) / max;
      return { token, index: j + 1, width: w, height: h, data };
    });
    return { tokens, heatmaps, context, filmstrip: await Promise.all(this.frames) };
  }
}
