/**
 * The spatial transformer of the SD U-Net (diffusers `Transformer2DModel` on continuous input, with
 * `BasicTransformerBlock`s: self-attention, cross-attention to the text, GEGLU feed-forward):
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/transformers/transformer_2d.py
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/attention.py
 */
import * as g from "../graph/ops.js";
import type { Dim } from "../graph/shape.js";
import type { Tensor } from "../graph/tensor.js";
import { attention } from "./attention.js";
import { GroupNorm, LayerNorm, Linear } from "./layers.js";
import { LinearLora } from "./lora.js";
import type { Scope } from "./scope.js";

/** Settings of one Transformer2DModel. */
export interface TransformerOptions {
  /** Channels of the feature map; also the attention width (SD's inner dim = channels). */
  readonly channels: number;
  readonly numHeads: number;
  /** Width of the text context (encoder_hidden_states). */
  readonly contextDim: number;
  /** Number of BasicTransformerBlocks (1 in SD 1.x / 2.x). */
  readonly depth: number;
  /** proj_in / proj_out as linear [C, C] (SD 2.x) instead of 1×1 convs [C, C, 1, 1] (SD 1.x). */
  readonly linearProjection: boolean;
  /** GroupNorm groups of the input norm (32; its epsilon is fixed at 1e-6 as in diffusers). */
  readonly groups: number;
}

/** Multi-head attention with bias-free q/k/v projections and a biased output projection (`to_out.0`). */
export class Attention {
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: Linear;
  constructor(s: Scope, dim: number, kvDim: number, readonly numHeads: number) {
    this.toQ = new Linear(s.child("to_q"), dim, dim, { bias: false });
    this.toK = new Linear(s.child("to_k"), kvDim, dim, { bias: false });
    this.toV = new Linear(s.child("to_v"), kvDim, dim, { bias: false });
    this.toOut = new Linear(s.child("to_out").child(0), dim, dim);
  }

  /** x: [B, N, C], context: [B, L, Ckv] (x itself when absent) → out [B, N, C], probs [B, heads, N, L] */
  forward(x: Tensor, context: Tensor = x): { out: Tensor; probs: Tensor } {
    const q = this.toQ.forward(x); // [B, N, C]
    const k = this.toK.forward(context); // [B, L, C]
    const v = this.toV.forward(context); // [B, L, C]
    // Self-attention runs fused (measured faster at 1024–4096 tokens, and no [B, H, N, N] scores);
    // cross-attention keeps the primitive ops, whose probabilities feed the attention maps.
    const { out, probs } = attention(q, k, v, this.numHeads, undefined, { fused: context === x });
    return { out: this.toOut.forward(out), probs };
  }
}

/** GEGLU feed-forward (Shazeer 2020, eq. 6): proj to 2·4C, a·gelu(b), back to C. */
export class FeedForward {
  readonly proj: Linear;
  readonly out: Linear;
  constructor(s: Scope, readonly dim: number, readonly mult = 4) {
    this.proj = new Linear(s.child("net").child(0).child("proj"), dim, 2 * mult * dim);
    this.out = new Linear(s.child("net").child(2), mult * dim, dim);
  }
  /** x: [B, N, C] → [B, N, C] */
  forward(x: Tensor): Tensor {
    const inner = this.mult * this.dim;
    const [a, b] = g.split(this.proj.forward(x), [inner, inner], -1) as [Tensor, Tensor]; // 2 × [B, N, 4C]
    return this.out.forward(g.mul(a, g.gelu(b)));
  }
}

/** Pre-norm block: x + attn1(norm1 x), + attn2(norm2 x, context), + ff(norm3 x). */
export class BasicTransformerBlock {
  readonly norm1: LayerNorm;
  readonly attn1: Attention;
  readonly norm2: LayerNorm;
  readonly attn2: Attention;
  readonly norm3: LayerNorm;
  readonly ff: FeedForward;
  constructor(s: Scope, dim: number, contextDim: number, numHeads: number) {
    this.norm1 = new LayerNorm(s.child("norm1"), dim);
    this.attn1 = new Attention(s.child("attn1"), dim, dim, numHeads);
    this.norm2 = new LayerNorm(s.child("norm2"), dim);
    this.attn2 = new Attention(s.child("attn2"), dim, contextDim, numHeads);
    this.norm3 = new LayerNorm(s.child("norm3"), dim);
    this.ff = new FeedForward(s.child("ff"), dim);
  }

  /** x: [B, N, C], context: [B, L, D] → x [B, N, C], crossProbs [B, heads, N, L] */
  forward(x: Tensor, context: Tensor): { x: Tensor; crossProbs: Tensor } {
    let h = g.add(x, this.attn1.forward(this.norm1.forward(x)).out);
    const cross = this.attn2.forward(this.norm2.forward(h), context);
    h = g.add(h, cross.out);
    h = g.add(h, this.ff.forward(this.norm3.forward(h)));
    return { x: h, crossProbs: cross.probs };
  }
}

/**
 * proj_in / proj_out on tokens [B, N, C]: a linear, or a 1×1 conv (weight [C, C, 1, 1]) applied as
 * one. Either way it is a "linear" module to LoRA: a 1×1 conv LoRA's factors are reshaped to [R, C].
 */
export class TokenProjection {
  readonly weight: Tensor; // [C, C] after reshaping a conv kernel
  readonly bias: Tensor;
  readonly lora: LinearLora | undefined;
  constructor(s: Scope, channels: number, linear: boolean) {
    const shape = linear ? [channels, channels] : [channels, channels, 1, 1];
    this.weight = g.reshape(s.param("weight", shape), [channels, channels]);
    this.bias = s.param("bias", [channels]);
    const rank = s.adaptable({ kind: "linear", inFeatures: channels, outFeatures: channels, kernel: 1 });
    this.lora = rank === undefined ? undefined : new LinearLora(s, channels, channels, rank);
  }
  /** x: [B, N, C] → [B, N, C] */
  forward(x: Tensor): Tensor {
    const y = g.add(g.matmul(x, g.transpose(this.weight, [1, 0])), this.bias);
    return this.lora ? g.add(y, this.lora.forward(x)) : y;
  }
}

/** GroupNorm → proj_in → transformer blocks on H·W tokens → proj_out, plus the input. */
export class Transformer2DModel {
  readonly norm: GroupNorm;
  readonly projIn: TokenProjection;
  readonly blocks: BasicTransformerBlock[];
  readonly projOut: TokenProjection;
  constructor(s: Scope, readonly o: TransformerOptions) {
    const c = o.channels;
    this.norm = new GroupNorm(s.child("norm"), o.groups, c, 1e-6);
    this.projIn = new TokenProjection(s.child("proj_in"), c, o.linearProjection);
    const bs = s.child("transformer_blocks");
    this.blocks = Array.from({ length: o.depth }, (_, i) => new BasicTransformerBlock(bs.child(i), c, o.contextDim, o.numHeads));
    this.projOut = new TokenProjection(s.child("proj_out"), c, o.linearProjection);
  }

  /**
   * x: [B, C, H, W], context: [B, L, D] → [B, C, H, W]. A 1×1 conv commutes with the layout
   * change, so SD 1.x (conv) and SD 2.x (linear) projections share one token-layout path.
   * `crossProbs`, when given, receives each block's cross-attention probabilities averaged over
   * heads, [B, H·W, L].
   */
  forward(x: Tensor, context: Tensor, crossProbs?: Tensor[]): Tensor {
    const [b, c, hh, ww] = x.shape as [Dim, Dim, Dim, Dim];
    const n = g.reshape(g.transpose(this.norm.forward(x), [0, 2, 3, 1]), [b, -1, c]); // [B, H·W, C]
    let h = this.projIn.forward(n);
    for (const block of this.blocks) {
      const r = block.forward(h, context);
      h = r.x;
      crossProbs?.push(g.reduceMean(r.crossProbs, [1])); // [B, H·W, L]
    }
    h = this.projOut.forward(h); // [B, H·W, C]
    const y = g.transpose(g.reshape(h, [b, hh, ww, c]), [0, 3, 1, 2]); // [B, C, H, W]
    return g.add(y, x);
  }
}
