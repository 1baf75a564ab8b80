/** The VAE's mid-block pieces: single-head spatial self-attention, and the resnet–attention–resnet mid block. */
import * as g from "../../graph/ops.js";
import type { Tensor } from "../../graph/tensor.js";
import { attention } from "../../nn/attention.js";
import { GroupNorm, Linear } from "../../nn/layers.js";
import { ResnetBlock2D } from "../../nn/resnet.js";
import type { Scope } from "../../nn/scope.js";

/**
 * Self-attention over the H·W positions with one head of all C channels, GroupNorm first and a
 * residual: diffusers' `Attention` as `UNetMidBlock2D` builds it for the VAE
 * (https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/attention_processor.py#L1224,
 * `AttnProcessor2_0`). The projections are linears [C, C] (CompVis files hold them as 1×1 convs).
 */
export class VaeAttention {
  readonly groupNorm: GroupNorm;
  readonly toQ: Linear;
  readonly toK: Linear;
  readonly toV: Linear;
  readonly toOut: Linear;
  constructor(s: Scope, readonly channels: number, groups: number, eps: number) {
    this.groupNorm = new GroupNorm(s.child("group_norm"), groups, channels, eps);
    this.toQ = new Linear(s.child("to_q"), channels, channels);
    this.toK = new Linear(s.child("to_k"), channels, channels);
    this.toV = new Linear(s.child("to_v"), channels, channels);
    this.toOut = new Linear(s.child("to_out").child(0), channels, channels);
  }

  /** x: [B, C, H, W] → [B, C, H, W] */
  forward(x: Tensor): Tensor {
    const [b, c, h, w] = x.shape as [number, number, number, number];
    const n = this.groupNorm.forward(x); // [B, C, H, W]
    const seq = g.transpose(g.reshape(n, [b, c, h * w]), [0, 2, 1]); // [B, H·W, C]
    const { out } = attention(this.toQ.forward(seq), this.toK.forward(seq), this.toV.forward(seq), 1); // [B, H·W, C]
    const y = g.reshape(g.transpose(this.toOut.forward(out), [0, 2, 1]), [b, c, h, w]); // [B, C, H, W]
    return g.add(y, x);
  }
}

/** ResNet → attention → ResNet at constant channels, the bottom of both VAE halves (`UNetMidBlock2D` without a time embedding). */
export class VaeMidBlock {
  readonly resnets: readonly [ResnetBlock2D, ResnetBlock2D];
  readonly attention: VaeAttention;
  constructor(s: Scope, channels: number, groups: number, eps: number) {
    const r = s.child("resnets");
    const resnet = (i: number) => new ResnetBlock2D(r.child(i), { inChannels: channels, outChannels: channels, groups, eps });
    this.resnets = [resnet(0), resnet(1)];
    this.attention = new VaeAttention(s.child("attentions").child(0), channels, groups, eps);
  }

  /** x: [B, C, H, W] → [B, C, H, W] */
  forward(x: Tensor): Tensor {
    const h = this.resnets[0].forward(x);
    return this.resnets[1].forward(this.attention.forward(h));
  }
}
