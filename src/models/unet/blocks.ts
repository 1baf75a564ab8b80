/**
 * U-Net building blocks: time embedding, the optional text addition embedding, and the down /
 * mid / up blocks (diffusers `DownBlock2D`, `CrossAttnDownBlock2D`, `UNetMidBlock2DCrossAttn`,
 * `UpBlock2D`, `CrossAttnUpBlock2D`), skip connections as in https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/unets/unet_2d_blocks.py
 */
import { assert } from "../../errors.js";
import { constant } from "../../graph/apply.js";
import * as g from "../../graph/ops.js";
import type { Dim } from "../../graph/shape.js";
import type { Tensor } from "../../graph/tensor.js";
import { mergeHeads, splitHeads } from "../../nn/attention.js";
import { LayerNorm, Linear, silu } from "../../nn/layers.js";
import { ResnetBlock2D } from "../../nn/resnet.js";
import { Downsample2D, Upsample2D } from "../../nn/sampling.js";
import type { Scope } from "../../nn/scope.js";
import { Transformer2DModel } from "../../nn/transformer.js";
import type { UNetConfig } from "./config.js";

/**
 * Frequencies e^(−ln(10000)·i/(half − shift)) of the sinusoidal time embedding, rounded at each
 * step as PyTorch's float32 arithmetic does in diffusers' `get_timestep_embedding`, so that t·f
 * (with t up to 999, where one float32 ulp is 6e-5) matches bit for bit.
 */
export function timestepFrequencies(dim: number, freqShift: number, maxPeriod = 10000): Float32Array {
  const half = Math.floor(dim / 2);
  const c = Math.fround(-Math.log(maxPeriod));
  return Float32Array.from({ length: half }, (_, i) => Math.exp(Math.fround(Math.fround(c * i) / (half - freqShift))));
}

/** t: [B] float → [B, dim] sinusoidal embedding ([cos, sin] when flipped, as SD). */
export function timestepEmbedding(t: Tensor, dim: number, flipSinToCos: boolean, freqShift: number): Tensor {
  const freqs = timestepFrequencies(dim, freqShift);
  const args = g.mul(g.unsqueeze(t, [1]), constant(freqs, [1, freqs.length])); // [B, half]
  const parts = flipSinToCos ? [g.cos(args), g.sin(args)] : [g.sin(args), g.cos(args)];
  return g.concat(parts, 1); // [B, dim] (an odd dim would need a zero column; SD's is even)
}

/** `time_embedding`: linear_1 → SiLU → linear_2, widening C0 to 4·C0. */
export class TimestepMLP {
  readonly linear1: Linear;
  readonly linear2: Linear;
  constructor(s: Scope, inDim: number, dim: number) {
    this.linear1 = new Linear(s.child("linear_1"), inDim, dim);
    this.linear2 = new Linear(s.child("linear_2"), dim, dim);
  }
  /** x: [B, C0] → [B, 4·C0] */
  forward(x: Tensor): Tensor {
    return this.linear2.forward(silu(this.linear1.forward(x)));
  }
}

/**
 * diffusers `AttentionPooling` (from DeepFloyd IF): one query token, the sequence mean plus a
 * learned position, attends over itself and the sequence; the result is that token.
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/embeddings.py#L573
 */
export class AttentionPooling {
  readonly positionalEmbedding: Tensor;
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  constructor(s: Scope, readonly numHeads: number, readonly dim: number) {
    this.positionalEmbedding = s.param("positional_embedding", [1, dim]);
    this.qProj = new Linear(s.child("q_proj"), dim, dim);
    this.kProj = new Linear(s.child("k_proj"), dim, dim);
    this.vProj = new Linear(s.child("v_proj"), dim, dim);
  }

  /**
   * x: [B, L, D] → [B, D]. The keys are [token, x], but the token's key and value are kept apart
   * and the softmax over the 1 + L scores is written out: a symbolic L ("L") cannot be concatenated
   * with 1 (dims are monomials). Scores and softmax are at least float32, as in the reference.
   */
  forward(x: Tensor): Tensor {
    const h = this.numHeads;
    const dtype = x.dtype;
    const wide = dtype === "float16" ? "float32" : dtype;
    const token = g.add(g.reduceMean(x, [1], true), this.positionalEmbedding); // [B, 1, D]
    // q and k are each scaled by d^(−1/4), as the reference does (its guard against fp16 overflow).
    const scale = 1 / Math.sqrt(Math.sqrt(this.dim / h));
    const keys = (t: Tensor) => g.transpose(splitHeads(g.mul(this.kProj.forward(t), scale), h), [0, 1, 3, 2]); // [B, H, d, ·]
    const q = splitHeads(g.mul(this.qProj.forward(token), scale), h); // [B, H, 1, d]
    const sTok = g.cast(g.matmul(q, keys(token)), wide); // [B, H, 1, 1]
    const sSeq = g.cast(g.matmul(q, keys(x)), wide); // [B, H, 1, L]
    const top = g.maximum(g.reduceMax(sSeq, [3], true), sTok); // [B, H, 1, 1]: the largest score, so exp cannot overflow
    const eTok = g.exp(g.sub(sTok, top));
    const eSeq = g.exp(g.sub(sSeq, top)); // [B, H, 1, L]
    const total = g.add(eTok, g.reduceSum(eSeq, [3], true)); // [B, H, 1, 1]
    const pTok = g.cast(g.div(eTok, total), dtype);
    const pSeq = g.cast(g.div(eSeq, total), dtype);
    const vTok = splitHeads(this.vProj.forward(token), h); // [B, H, 1, d]
    const vSeq = splitHeads(this.vProj.forward(x), h); // [B, H, L, d]
    const out = g.add(g.mul(pTok, vTok), g.matmul(pSeq, vSeq)); // [B, H, 1, d]
    return g.squeeze(mergeHeads(out), [1]); // [B, D]
  }
}

/**
 * `add_embedding` of `addition_embed_type: "text"` (diffusers `TextTimeEmbedding`): LayerNorm →
 * attention pooling → Linear to the time-embedding width → LayerNorm.
 */
export class TextTimeEmbedding {
  readonly norm1: LayerNorm;
  readonly pool: AttentionPooling;
  readonly proj: Linear;
  readonly norm2: LayerNorm;
  constructor(s: Scope, encoderDim: number, timeDim: number, numHeads: number) {
    this.norm1 = new LayerNorm(s.child("norm1"), encoderDim);
    this.pool = new AttentionPooling(s.child("pool"), numHeads, encoderDim);
    this.proj = new Linear(s.child("proj"), encoderDim, timeDim);
    this.norm2 = new LayerNorm(s.child("norm2"), timeDim);
  }
  /** context: [B, L, D] → [B, 4·C0] */
  forward(context: Tensor): Tensor {
    return this.norm2.forward(this.proj.forward(this.pool.forward(this.norm1.forward(context))));
  }
}

/** A resnet of the U-Net: GroupNorm settings and time-embedding width from the config. */
function resnet(s: Scope, c: UNetConfig, cin: number, cout: number): ResnetBlock2D {
  const tembChannels = 4 * (c.blockOutChannels[0] ?? 0);
  return new ResnetBlock2D(s, { inChannels: cin, outChannels: cout, tembChannels, groups: c.normGroups, eps: c.normEps });
}

/** The transformer of a level's block (heads = that level's head count). */
function transformer(s: Scope, c: UNetConfig, channels: number, numHeads: number): Transformer2DModel {
  return new Transformer2DModel(s, {
    channels,
    numHeads,
    contextDim: c.crossAttentionDim,
    depth: c.transformerDepth,
    linearProjection: c.linearProjection,
    groups: c.normGroups,
  });
}

/** Shared inputs of every block's forward. */
export interface BlockInputs {
  /** [B, 4·C0] */
  readonly temb: Tensor;
  /** [B, L, D] */
  readonly context: Tensor;
  /** Collects the head-averaged cross-attention probabilities [B, h·w, L] of each transformer. */
  readonly crossProbs: Tensor[];
}

/** One level of the encoder: resnets (each followed by a transformer at attention levels), then a stride-2 conv. */
export class DownBlock {
  readonly resnets: ResnetBlock2D[];
  readonly attentions: Transformer2DModel[];
  readonly downsampler: Downsample2D | undefined;
  constructor(s: Scope, c: UNetConfig, level: number) {
    const cout = c.blockOutChannels[level] ?? 0;
    const cin = c.blockOutChannels[Math.max(level - 1, 0)] ?? 0;
    const n = c.layersPerBlock;
    this.resnets = Array.from({ length: n }, (_, j) => resnet(s.child("resnets").child(j), c, j === 0 ? cin : cout, cout));
    this.attentions = c.crossAttention[level] === true
      ? Array.from({ length: n }, (_, j) => transformer(s.child("attentions").child(j), c, cout, c.numHeads[level] ?? 1))
      : [];
    const last = level === c.blockOutChannels.length - 1;
    this.downsampler = last ? undefined : new Downsample2D(s.child("downsamplers").child(0), cout, cout, { padding: c.downsamplePadding });
  }

  /** x: [B, Cin, H, W] → [B, Cout, H/2, W/2] (H at the last level); pushes each layer's output onto `skips`. */
  forward(x: Tensor, io: BlockInputs, skips: Tensor[]): Tensor {
    let h = x;
    this.resnets.forEach((r, j) => {
      h = r.forward(h, io.temb); // [B, Cout, H, W]
      const attn = this.attentions[j];
      if (attn !== undefined) h = attn.forward(h, io.context, io.crossProbs);
      skips.push(h);
    });
    if (this.downsampler !== undefined) {
      h = this.downsampler.forward(h); // [B, Cout, H/2, W/2]
      skips.push(h);
    }
    return h;
  }
}

/** The bottleneck: resnet → transformer → resnet at the lowest resolution. */
export class MidBlock {
  readonly resnets: [ResnetBlock2D, ResnetBlock2D];
  readonly attention: Transformer2DModel;
  constructor(s: Scope, c: UNetConfig) {
    const level = c.blockOutChannels.length - 1;
    const ch = c.blockOutChannels[level] ?? 0;
    const rs = s.child("resnets");
    this.resnets = [resnet(rs.child(0), c, ch, ch), resnet(rs.child(1), c, ch, ch)];
    this.attention = transformer(s.child("attentions").child(0), c, ch, c.numHeads[level] ?? 1);
  }
  /** x: [B, C, h, w] → same */
  forward(x: Tensor, io: BlockInputs): Tensor {
    const h = this.attention.forward(this.resnets[0].forward(x, io.temb), io.context, io.crossProbs);
    return this.resnets[1].forward(h, io.temb);
  }
}

/** One level of the decoder (up block i = level n−1−i): layersPerBlock + 1 resnets, each eating one skip. */
export class UpBlock {
  readonly resnets: ResnetBlock2D[];
  readonly attentions: Transformer2DModel[];
  readonly upsampler: Upsample2D | undefined;
  constructor(s: Scope, c: UNetConfig, index: number) {
    const ch = c.blockOutChannels;
    const n = ch.length;
    const level = n - 1 - index;
    const cout = ch[level] ?? 0;
    const prev = ch[Math.min(level + 1, n - 1)] ?? 0; // channels arriving from below
    const skipIn = ch[Math.max(level - 1, 0)] ?? 0; // channels of this level's first skip (its down block's input)
    const layers = c.layersPerBlock + 1;
    this.resnets = Array.from({ length: layers }, (_, j) => {
      const fromBelow = j === 0 ? prev : cout;
      const skip = j === layers - 1 ? skipIn : cout;
      return resnet(s.child("resnets").child(j), c, fromBelow + skip, cout);
    });
    this.attentions = c.crossAttention[level] === true
      ? Array.from({ length: layers }, (_, j) => transformer(s.child("attentions").child(j), c, cout, c.numHeads[level] ?? 1))
      : [];
    this.upsampler = level === 0 ? undefined : new Upsample2D(s.child("upsamplers").child(0), cout);
  }

  /**
   * x: [B, Cprev, h, w] → [B, Cout, 2h, 2w] (or `upsampleTo`; h, w at level 0). Pops one skip per
   * resnet from the end of `skips` and concatenates it on the channel axis.
   */
  forward(x: Tensor, io: BlockInputs, skips: Tensor[], upsampleTo?: readonly [Dim, Dim]): Tensor {
    let h = x;
    this.resnets.forEach((r, j) => {
      const skip = skips.pop();
      assert(skip !== undefined, "UpBlock: ran out of skip connections");
      h = r.forward(g.concat([h, skip], 1), io.temb); // [B, Cout, h, w]
      const attn = this.attentions[j];
      if (attn !== undefined) h = attn.forward(h, io.context, io.crossProbs);
    });
    return this.upsampler === undefined ? h : this.upsampler.forward(h, upsampleTo);
  }
}
