/** Types shared by the pipelines and the public API. */
import type { ClipTokenizer } from "../models/clip/tokenizer.js";

/** A dense float32 tensor, row-major, NCHW for images and latents. */
export interface Tensor {
  data: Float32Array;
  shape: number[];
}

/** Progress of a running generation. */
export interface ProgressInfo {
  /** Steps done (1-based after each model call). */
  readonly step: number;
  readonly total: number;
  /** Current (scaled) latents. */
  readonly latents: Tensor;
  /** The sampler's current estimate of the final (scaled) latents, where it computes one. */
  readonly denoised: Tensor | null;
}

/** The text encoder as the pipelines use it. */
export interface TextEncoderRunner {
  /** Padded token ids [B][77·k] → U-Net context [B, 77·k, D]. */
  encode(ids: number[][]): Promise<Tensor>;
  /** The same context and each row's pooled (EOS) state [B, D] (for U-Nets with a class embedding). */
  encodeWithPooled(ids: number[][]): Promise<{ context: Tensor; pooled: Tensor }>;
}

/** The U-Net as the pipelines use it. */
export interface UNetRunner {
  /**
   * Noise (or v) prediction for a batch of latents at a timestep (one, or one per row); `pooled`
   * [B, P] is the prompts' pooled text state, which U-Nets with a class embedding need.
   */
  predict(latent: Tensor, timestep: number | readonly number[], context: Tensor, pooled?: Tensor): Promise<Tensor>;
  /** The same, plus the cross-attention maps [B, h·w, L] averaged over heads and layers. */
  predictWithAttention(latent: Tensor, timestep: number | readonly number[], context: Tensor, pooled?: Tensor): Promise<{ out: Tensor; attention: Tensor }>;
  /** Channels of the U-Net input (4, or 9 for inpainting checkpoints). */
  readonly inChannels: number;
  /** Whether `predict` needs `pooled` (a class embedding reads it). */
  readonly needsPooled: boolean;
  /** What the context rows hold: the prompt's token states (SD), or its pooled state in every row (UNetConfig.textContext). */
  readonly textContext: "tokens" | "pooled";
}

/** The VAE as the pipelines use it. */
export interface VaeRunner {
  /** Image in [−1, 1] [B, 3, H, W] → posterior mean (unscaled latent). */
  encode(image: Tensor): Promise<Tensor>;
  /** Image → posterior mean and std (unscaled), for sampling the posterior as diffusers does. */
  encodeDistribution(image: Tensor): Promise<{ mean: Tensor; std: Tensor }>;
  /** Unscaled latent → image in [−1, 1]. */
  decode(latent: Tensor): Promise<Tensor>;
  readonly scalingFactor: number;
  /** Pixels per latent pixel (8 for SD). */
  readonly downscale: number;
  readonly latentChannels: number;
}

/** What a loaded model is made of. */
export interface Components {
  readonly name: string;
  readonly tokenizer: ClipTokenizer;
  readonly textEncoder: TextEncoderRunner;
  readonly unet: UNetRunner;
  readonly vae: VaeRunner;
  /** The model's diffusers scheduler_config.json (or SD defaults), before a sampler is chosen. */
  readonly schedulerConfig: Readonly<Record<string, unknown>>;
  readonly prediction: "epsilon" | "v";
  /** Extra infotext entries every image made with these components records (e.g. `Lora hashes`). */
  readonly infotext?: Readonly<Record<string, string>>;
}
