/**
 * The KL autoencoder of Stable Diffusion (Rombach et al. 2022, §3; diffusers `AutoencoderKL`),
 * as two separate graphs: the encoder (image → Gaussian posterior over latents) and the decoder
 * (latent → image). Follows diffusers' `Encoder` / `Decoder` / `AutoencoderKL`,
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/autoencoders/vae.py#L46
 * and https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/autoencoders/autoencoder_kl.py#L238
 * (v0.27.2). Scaling by `scalingFactor` is the pipeline's job, not the VAE's.
 */
import * as g from "../../graph/ops.js";
import type { Tensor } from "../../graph/tensor.js";
import { Conv2d, GroupNorm, silu } from "../../nn/layers.js";
import { ResnetBlock2D } from "../../nn/resnet.js";
import { Downsample2D, Upsample2D } from "../../nn/sampling.js";
import type { Scope } from "../../nn/scope.js";
import { VaeMidBlock } from "./blocks.js";
import type { VaeConfig } from "./config.js";

/** The encoder's outputs: the diagonal Gaussian posterior q(z | x) and, for tests, the raw encoder output. */
export interface VaePosterior {
  /** [B, 2·latent, h, w]: `encoder(image)` before `quant_conv`. */
  readonly hidden: Tensor;
  /** [B, latent, h, w] */
  readonly mean: Tensor;
  /** [B, latent, h, w], clamped to [−30, 20] as diffusers does. */
  readonly logvar: Tensor;
  /** [B, latent, h, w] = exp(logvar / 2) */
  readonly std: Tensor;
}

/** One encoder level: ResNets, then (all but the last level) a stride-2 downsample. */
class DownEncoderBlock {
  readonly resnets: ResnetBlock2D[] = [];
  readonly downsample: Downsample2D | undefined;
  constructor(s: Scope, c: VaeConfig, inChannels: number, outChannels: number, last: boolean) {
    for (let j = 0; j < c.layersPerBlock; j++) {
      const cin = j === 0 ? inChannels : outChannels;
      this.resnets.push(new ResnetBlock2D(s.child("resnets").child(j), { inChannels: cin, outChannels, groups: c.normNumGroups, eps: c.normEps }));
    }
    // diffusers' VAE downsamplers pad (0, 1, 0, 1) then convolve with padding 0.
    this.downsample = last ? undefined : new Downsample2D(s.child("downsamplers").child(0), outChannels, outChannels, { padding: 0 });
  }
  /** x: [B, Cin, H, W] → [B, Cout, H/2, W/2] (or H, W at the last level) */
  forward(x: Tensor): Tensor {
    let h = x;
    for (const r of this.resnets) h = r.forward(h);
    return this.downsample ? this.downsample.forward(h) : h;
  }
}

/** One decoder level: layersPerBlock + 1 ResNets, then (all but the last level) a nearest ×2 upsample and conv. */
class UpDecoderBlock {
  readonly resnets: ResnetBlock2D[] = [];
  readonly upsample: Upsample2D | undefined;
  constructor(s: Scope, c: VaeConfig, inChannels: number, outChannels: number, last: boolean) {
    for (let j = 0; j < c.layersPerBlock + 1; j++) {
      const cin = j === 0 ? inChannels : outChannels;
      this.resnets.push(new ResnetBlock2D(s.child("resnets").child(j), { inChannels: cin, outChannels, groups: c.normNumGroups, eps: c.normEps }));
    }
    this.upsample = last ? undefined : new Upsample2D(s.child("upsamplers").child(0), outChannels);
  }
  /** x: [B, Cin, H, W] → [B, Cout, 2H, 2W] (or H, W at the last level) */
  forward(x: Tensor): Tensor {
    let h = x;
    for (const r of this.resnets) h = r.forward(h);
    return this.upsample ? this.upsample.forward(h) : h;
  }
}

/** Image → posterior. Declares `encoder.*` and `quant_conv.*` on the root scope. */
export class VaeEncoder {
  readonly convIn: Conv2d;
  readonly downBlocks: DownEncoderBlock[] = [];
  readonly midBlock: VaeMidBlock;
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;
  readonly quantConv: Conv2d;
  constructor(root: Scope, readonly c: VaeConfig) {
    const s = root.child("encoder");
    const boc = c.blockOutChannels;
    const top = boc[boc.length - 1] as number;
    this.convIn = new Conv2d(s.child("conv_in"), c.inChannels, boc[0] as number, 3, { padding: 1 });
    boc.forEach((ch, i) => {
      const inCh = boc[i - 1] ?? ch;
      this.downBlocks.push(new DownEncoderBlock(s.child("down_blocks").child(i), c, inCh, ch, i === boc.length - 1));
    });
    this.midBlock = new VaeMidBlock(s.child("mid_block"), top, c.normNumGroups, c.normEps);
    this.normOut = new GroupNorm(s.child("conv_norm_out"), c.normNumGroups, top, c.normEps);
    this.convOut = new Conv2d(s.child("conv_out"), top, 2 * c.latentChannels, 3, { padding: 1 });
    this.quantConv = new Conv2d(root.child("quant_conv"), 2 * c.latentChannels, 2 * c.latentChannels, 1);
  }

  /** image: [B, in, H, W] in [−1, 1] → posterior over [B, latent, H/f, W/f], f = 2^(levels − 1) */
  forward(image: Tensor): VaePosterior {
    let h = this.convIn.forward(image); // [B, C0, H, W]
    for (const block of this.downBlocks) h = block.forward(h); // [B, C_last, H/f, W/f]
    h = this.midBlock.forward(h);
    const hidden = this.convOut.forward(silu(this.normOut.forward(h))); // [B, 2·latent, h, w]
    const moments = this.quantConv.forward(hidden); // [B, 2·latent, h, w]
    const [mean, rawLogvar] = g.split(moments, [this.c.latentChannels, this.c.latentChannels], 1) as [Tensor, Tensor];
    const logvar = g.minimum(g.maximum(rawLogvar, -30), 20); // [B, latent, h, w]
    return { hidden, mean, logvar, std: g.exp(g.mul(logvar, 0.5)) };
  }
}

/** Latent (unscaled) → image. Declares `post_quant_conv.*` and `decoder.*` on the root scope. */
export class VaeDecoder {
  readonly postQuantConv: Conv2d;
  readonly convIn: Conv2d;
  readonly midBlock: VaeMidBlock;
  readonly upBlocks: UpDecoderBlock[] = [];
  readonly normOut: GroupNorm;
  readonly convOut: Conv2d;
  constructor(root: Scope, readonly c: VaeConfig) {
    const s = root.child("decoder");
    const rev = [...c.blockOutChannels].reverse(); // lowest resolution first
    const bottom = rev[0] as number;
    const first = rev[rev.length - 1] as number;
    this.postQuantConv = new Conv2d(root.child("post_quant_conv"), c.latentChannels, c.latentChannels, 1);
    this.convIn = new Conv2d(s.child("conv_in"), c.latentChannels, bottom, 3, { padding: 1 });
    this.midBlock = new VaeMidBlock(s.child("mid_block"), bottom, c.normNumGroups, c.normEps);
    rev.forEach((ch, i) => {
      const inCh = rev[i - 1] ?? ch;
      this.upBlocks.push(new UpDecoderBlock(s.child("up_blocks").child(i), c, inCh, ch, i === rev.length - 1));
    });
    this.normOut = new GroupNorm(s.child("conv_norm_out"), c.normNumGroups, first, c.normEps);
    this.convOut = new Conv2d(s.child("conv_out"), first, c.outChannels, 3, { padding: 1 });
  }

  /** latent: [B, latent, h, w] → image [B, out, h·f, w·f], roughly in [−1, 1] (unclamped) */
  forward(latent: Tensor): Tensor {
    let h = this.convIn.forward(this.postQuantConv.forward(latent)); // [B, C_last, h, w]
    h = this.midBlock.forward(h);
    for (const block of this.upBlocks) h = block.forward(h); // [B, C0, h·f, w·f]
    return this.convOut.forward(silu(this.normOut.forward(h))); // [B, out, h·f, w·f]
  }
}
