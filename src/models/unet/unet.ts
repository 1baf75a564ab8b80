/**
 * The SD 1.x / 2.x denoising U-Net (diffusers `UNet2DConditionModel`, Rombach et al. 2022, §3.3):
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/unets/unet_2d_condition.py
 */
import { ShapeError } from "../../errors.js";
import { input } from "../../graph/apply.js";
import * as g from "../../graph/ops.js";
import { type Dim, dimDivide, dimProduct } from "../../graph/shape.js";
import type { Tensor } from "../../graph/tensor.js";
import { Conv2d, GroupNorm, silu } from "../../nn/layers.js";
import type { Scope } from "../../nn/scope.js";
import { type BlockInputs, DownBlock, MidBlock, TextTimeEmbedding, TimestepMLP, UpBlock, timestepEmbedding } from "./blocks.js";
import type { UNetConfig } from "./config.js";

/** What one forward pass yields. */
export interface UNetOutput {
  /** [B, Cout, H, W]: predicted noise (or v, for v-prediction models). */
  readonly out: Tensor;
  /** Head-averaged cross-attention probabilities of every transformer, in run order, [B, h·w, L]. */
  readonly crossProbs: readonly Tensor[];
  /** Intermediate values named as diffusers' submodules (time_proj, add_embedding, conv_in, down_blocks.0, …). */
  readonly trace: ReadonlyMap<string, Tensor>;
}

/** The U-Net: conv_in → down blocks → mid block → up blocks (with skips) → norm, SiLU, conv_out. */
export class UNet2DConditionModel {
  readonly convIn: Conv2d;
  readonly timeEmbedding: TimestepMLP;
  /** Only where the config has `class_embed_type: "projection"`. */
  readonly classEmbedding: TimestepMLP | undefined;
  /** Only where the config has `addition_embed_type: "text"`. */
  readonly addEmbedding: TextTimeEmbedding | undefined;
  readonly downBlocks: DownBlock[];
  readonly midBlock: MidBlock;
  readonly upBlocks: UpBlock[];
  readonly convNormOut: GroupNorm;
  readonly convOut: Conv2d;

  constructor(s: Scope, readonly c: UNetConfig) {
    const c0 = c.blockOutChannels[0] ?? 0;
    const levels = c.blockOutChannels.length;
    this.convIn = new Conv2d(s.child("conv_in"), c.inChannels, c0, 3, { padding: 1 });
    this.timeEmbedding = new TimestepMLP(s.child("time_embedding"), c0, 4 * c0);
    this.classEmbedding = c.classEmbed === undefined ? undefined : new TimestepMLP(s.child("class_embedding"), c.classEmbed.inputDim, 4 * c0);
    const add = c.additionEmbed;
    this.addEmbedding = add === undefined ? undefined : new TextTimeEmbedding(s.child("add_embedding"), c.crossAttentionDim, 4 * c0, add.numHeads);
    this.downBlocks = Array.from({ length: levels }, (_, i) => new DownBlock(s.child("down_blocks").child(i), c, i));
    this.midBlock = new MidBlock(s.child("mid_block"), c);
    this.upBlocks = Array.from({ length: levels }, (_, i) => new UpBlock(s.child("up_blocks").child(i), c, i));
    this.convNormOut = new GroupNorm(s.child("conv_norm_out"), c.normGroups, c0, c.normEps);
    this.convOut = new Conv2d(s.child("conv_out"), c0, c.outChannels, 3, { padding: 1 });
  }

  /**
   * sample: [B, Cin, H, W], timestep: [B] float32 (fractional allowed), context: [B, L, D]
   * (L = 77·k for long prompts), classLabels: [B, P] where the config has a class embedding.
   * Computes in the parameters' dtype; the time embedding in float32.
   */
  forward(sample: Tensor, timestep: Tensor, context: Tensor, classLabels?: Tensor): UNetOutput {
    const c = this.c;
    const dtype = this.convIn.weight.dtype;
    const trace = new Map<string, Tensor>();
    const tap = (name: string, t: Tensor): Tensor => (trace.set(name, t), t);

    // 1. time: sinusoid of t, then the MLP
    const tproj = tap("time_proj", timestepEmbedding(g.cast(timestep, "float32"), c.blockOutChannels[0] ?? 0, c.flipSinToCos, c.freqShift)); // [B, C0]
    let temb = tap("time_embedding", this.timeEmbedding.forward(g.cast(tproj, dtype))); // [B, 4·C0]
    const ctx = g.cast(context, dtype);
    // class_embed_type "projection": added right after the time MLP, before the addition embedding, as in diffusers
    if (this.classEmbedding !== undefined) {
      if (classLabels === undefined) throw new ShapeError(`this U-Net has a class embedding (class_embed_type "projection") and needs class_labels [B, ${c.classEmbed?.inputDim}]`);
      temb = g.add(temb, tap("class_embedding", this.classEmbedding.forward(g.cast(classLabels, dtype))));
    }
    // addition_embed_type "text": the pooled context joins the time embedding before any block, as in
    // diffusers (time_embedding_act_fn, which would come next, must be null: config.ts rejects it)
    if (this.addEmbedding !== undefined) temb = g.add(temb, tap("add_embedding", this.addEmbedding.forward(ctx))); // [B, 4·C0]
    const io: BlockInputs = { temb, context: ctx, crossProbs: [] };

    // 2. encoder, keeping every layer's output for the skips
    let x = tap("conv_in", this.convIn.forward(g.cast(sample, dtype))); // [B, C0, H, W]
    const skips: Tensor[] = [x];
    this.downBlocks.forEach((block, i) => {
      x = tap(`down_blocks.${i}`, block.forward(x, io, skips)); // [B, C_i, H/2^(i+1), W/2^(i+1)] (no halving at the last level)
    });

    // 3. bottleneck
    x = tap("mid_block", this.midBlock.forward(x, io)); // [B, C_last, h, w]

    // 4. decoder: each up block eats layersPerBlock + 1 skips, then upsamples to the next skip's size
    this.upBlocks.forEach((block, i) => {
      const next = skips[skips.length - 1 - (c.layersPerBlock + 1)];
      const size = next === undefined ? undefined : ([next.shape[2], next.shape[3]] as [Dim, Dim]);
      x = tap(`up_blocks.${i}`, block.forward(x, io, skips, size)); // [B, C_(n−1−i), …]
    });

    // 5. output head
    x = tap("conv_norm_out", this.convNormOut.forward(x)); // [B, C0, H, W]
    const out = tap("conv_out", this.convOut.forward(silu(x))); // [B, Cout, H, W]
    return { out, crossProbs: io.crossProbs, trace };
  }
}

/** The factor f with ⌈H/f⌉·⌈W/f⌉ = n: how far a flattened map of n positions was downsampled. */
function downFactor(n: Dim, height: Dim, width: Dim): number {
  if (typeof n === "number" && typeof height === "number" && typeof width === "number") {
    for (let f = 1; f <= Math.max(height, width); f *= 2) if (Math.ceil(height / f) * Math.ceil(width / f) === n) return f;
  } else {
    const r = dimDivide(dimProduct([height, width]), n);
    if (typeof r === "number" && Number.isInteger(Math.sqrt(r))) return Math.sqrt(r);
  }
  throw new ShapeError(`attention map of ${String(n)} positions does not fit a ${String(height)}×${String(width)} latent`);
}

/**
 * The explain view's per-token heatmaps: the mean over all cross-attention layers of their
 * head-averaged probabilities, each brought to the latent resolution H×W by nearest-neighbour
 * upsampling (block replication, cropped where sizes are odd). [B, h·w, L] each → [B, H·W, L].
 * Latent resolution keeps the finest layers' detail; the coarse 8×8 mid-block map is one of 16.
 */
export function crossAttentionMap(crossProbs: readonly Tensor[], height: Dim, width: Dim): Tensor {
  if (crossProbs.length === 0) throw new ShapeError("crossAttentionMap: the model has no cross-attention layers");
  let sum: Tensor | undefined;
  for (const p of crossProbs) {
    const [b, n, l] = p.shape as [Dim, Dim, Dim];
    const f = downFactor(n, height, width);
    const hi = typeof height === "number" ? Math.ceil(height / f) : (dimDivide(height, f) as Dim);
    const wi = typeof width === "number" ? Math.ceil(width / f) : (dimDivide(width, f) as Dim);
    let m = g.transpose(g.reshape(p, [b, hi, wi, l]), [0, 3, 1, 2]); // [B, L, h, w]
    if (f > 1) m = g.resizeNearest(m, f); // [B, L, f·h, f·w]
    if (m.shape[2] !== height || m.shape[3] !== width) m = g.slice(m, [2, 3], [0, 0], [height as number, width as number]);
    sum = sum === undefined ? m : g.add(sum, m);
  }
  const mean = g.mul(sum as Tensor, 1 / crossProbs.length); // [B, L, H, W]
  const [b, l] = mean.shape as [Dim, Dim];
  return g.reshape(g.transpose(mean, [0, 2, 3, 1]), [b, dimProduct([height, width]), l]); // [B, H·W, L]
}

/** Shapes of a compiled U-Net graph (one graph per batch and latent size). */
export interface UNetGraphOptions {
  readonly batch: Dim;
  /** Latent height and width (image size / 8 for SD). */
  readonly height: Dim;
  readonly width: Dim;
  /** Context length: 77, or 77·k for long prompts (default 77); may be symbolic ("L"). */
  readonly contextLength?: Dim;
  /** Adds the output `attn_maps` [B, H·W, L] (see crossAttentionMap). */
  readonly attnMaps?: boolean;
  /** Adds outputs `trace.<name>` for these intermediate values (see UNetOutput.trace). */
  readonly trace?: readonly string[];
}

/**
 * Declares the U-Net on `root` and returns its outputs for `loadComponent`: inputs `sample`
 * [B, Cin, H, W], `timestep` [B], `encoder_hidden_states` [B, L, D], and `class_labels` [B, P]
 * where the config has a class embedding (all float32); output `out`
 * [B, Cout, H, W] float32, plus `attn_maps` and `trace.*` when asked for.
 */
export function buildUNetGraph(root: Scope, c: UNetConfig, o: UNetGraphOptions): Record<string, Tensor> {
  const unet = new UNet2DConditionModel(root, c);
  const sample = input("sample", "float32", [o.batch, c.inChannels, o.height, o.width]);
  const timestep = input("timestep", "float32", [o.batch]);
  const context = input("encoder_hidden_states", "float32", [o.batch, o.contextLength ?? 77, c.crossAttentionDim]);
  const classLabels = c.classEmbed === undefined ? undefined : input("class_labels", "float32", [o.batch, c.classEmbed.inputDim]);
  const r = unet.forward(sample, timestep, context, classLabels);
  const outputs: Record<string, Tensor> = { out: g.cast(r.out, "float32") };
  if (o.attnMaps === true) outputs["attn_maps"] = g.cast(crossAttentionMap(r.crossProbs, o.height, o.width), "float32");
  for (const name of o.trace ?? []) {
    const t = r.trace.get(name);
    if (t === undefined) throw new ShapeError(`U-Net has no traced value '${name}'; known: ${[...r.trace.keys()].join(", ")}`);
    outputs[`trace.${name}`] = g.cast(t, "float32");
  }
  return outputs;
}
