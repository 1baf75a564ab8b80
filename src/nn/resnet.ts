/**
 * The residual block of the SD U-Net and VAE (diffusers `ResnetBlock2D`, "default" time-embedding
 * mode, output scale 1): https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/resnet.py
 */
import { assert } from "../errors.js";
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";
import { Conv2d, GroupNorm, Linear, silu } from "./layers.js";
import type { Scope } from "./scope.js";

/** Shape and norm settings of one ResnetBlock2D. */
export interface ResnetOptions {
  readonly inChannels: number;
  readonly outChannels: number;
  /** Width of the time embedding; undefined for blocks without one (the VAE's). */
  readonly tembChannels?: number;
  /** GroupNorm groups of both norms (32 in SD). */
  readonly groups: number;
  /** GroupNorm epsilon: 1e-5 in the U-Net, 1e-6 in the VAE. */
  readonly eps: number;
}

/** GroupNorm → SiLU → conv3×3 (+ time projection) → GroupNorm → SiLU → conv3×3, plus a (1×1-projected) skip. */
export class ResnetBlock2D {
  readonly norm1: GroupNorm;
  readonly conv1: Conv2d;
  readonly timeEmbProj: Linear | undefined;
  readonly norm2: GroupNorm;
  readonly conv2: Conv2d;
  /** 1×1 conv on the skip path, only where the channel count changes. */
  readonly convShortcut: Conv2d | undefined;

  constructor(s: Scope, readonly o: ResnetOptions) {
    const { inChannels: cin, outChannels: cout } = o;
    this.norm1 = new GroupNorm(s.child("norm1"), o.groups, cin, o.eps);
    this.conv1 = new Conv2d(s.child("conv1"), cin, cout, 3, { padding: 1 });
    this.timeEmbProj = o.tembChannels === undefined ? undefined : new Linear(s.child("time_emb_proj"), o.tembChannels, cout);
    this.norm2 = new GroupNorm(s.child("norm2"), o.groups, cout, o.eps);
    this.conv2 = new Conv2d(s.child("conv2"), cout, cout, 3, { padding: 1 });
    this.convShortcut = cin === cout ? undefined : new Conv2d(s.child("conv_shortcut"), cin, cout, 1);
  }

  /** x: [B, Cin, H, W], temb: [B, T] (required iff the block has a time projection) → [B, Cout, H, W] */
  forward(x: Tensor, temb?: Tensor): Tensor {
    let h = this.conv1.forward(silu(this.norm1.forward(x))); // [B, Cout, H, W]
    if (this.timeEmbProj !== undefined) {
      assert(temb !== undefined, "ResnetBlock2D: this block has a time projection; pass temb");
      const t = this.timeEmbProj.forward(silu(temb)); // [B, Cout]
      h = g.add(h, g.unsqueeze(t, [2, 3])); // + [B, Cout, 1, 1]
    }
    h = this.conv2.forward(silu(this.norm2.forward(h))); // [B, Cout, H, W]
    const skip = this.convShortcut === undefined ? x : this.convShortcut.forward(x);
    return g.add(skip, h);
  }
}
