/** Basic layers: Linear, Conv2d, GroupNorm, LayerNorm, Embedding; activations. */
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";
import { ConvLora, LinearLora } from "./lora.js";
import type { Scope } from "./scope.js";

/** y = x·Wᵀ + b, W [out, in] as checkpoints store it; plus a LoRA branch where the scope's registry plans one. */
export class Linear {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  readonly lora: LinearLora | undefined;
  constructor(s: Scope, readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    this.weight = s.param("weight", [outFeatures, inFeatures]);
    this.bias = opts.bias === false ? undefined : s.param("bias", [outFeatures]);
    const rank = s.adaptable({ kind: "linear", inFeatures, outFeatures, kernel: 1 });
    this.lora = rank === undefined ? undefined : new LinearLora(s, inFeatures, outFeatures, rank);
  }
  /** x: [..., in] → [..., out] */
  forward(x: Tensor): Tensor {
    const y = g.matmul(x, g.transpose(this.weight, [1, 0]));
    const biased = this.bias ? g.add(y, this.bias) : y;
    return this.lora ? g.add(biased, this.lora.forward(x)) : biased;
  }
}

/** 2-D convolution with weight [out, in/groups, k, k]; plus a LoRA branch where the registry plans one (groups 1 only). */
export class Conv2d {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  readonly lora: ConvLora | undefined;
  constructor(
    s: Scope,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    readonly opts: { stride?: number; padding?: g.Conv2dOptions["padding"]; bias?: boolean; groups?: number } = {},
  ) {
    this.weight = s.param("weight", [outChannels, inChannels / (opts.groups ?? 1), kernel, kernel]);
    this.bias = opts.bias === false ? undefined : s.param("bias", [outChannels]);
    const rank = (opts.groups ?? 1) === 1 ? s.adaptable({ kind: "conv", inFeatures: inChannels, outFeatures: outChannels, kernel }) : undefined;
    const conv = { stride: opts.stride ?? 1, padding: opts.padding ?? 0 };
    this.lora = rank === undefined ? undefined : new ConvLora(s, inChannels, outChannels, kernel, rank, conv);
  }
  /** x: [N, Cin, H, W] → [N, Cout, H', W'] */
  forward(x: Tensor): Tensor {
    const y = g.conv2d(x, this.weight, this.bias, {
      stride: this.opts.stride ?? 1,
      padding: this.opts.padding ?? 0,
      groups: this.opts.groups ?? 1,
    });
    return this.lora ? g.add(y, this.lora.forward(x)) : y;
  }
}

/** Group normalization over channel groups with per-channel affine. */
export class GroupNorm {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(s: Scope, readonly groups: number, readonly channels: number, readonly eps = 1e-5) {
    this.weight = s.param("weight", [channels]);
    this.bias = s.param("bias", [channels]);
  }
  /** x: [N, C, ...] → same */
  forward(x: Tensor): Tensor {
    return g.groupNorm(x, this.weight, this.bias, this.groups, this.eps);
  }
}

/** Layer normalization over the last dim. */
export class LayerNorm {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(s: Scope, readonly dim: number, readonly eps = 1e-5) {
    this.weight = s.param("weight", [dim]);
    this.bias = s.param("bias", [dim]);
  }
  /** x: [..., dim] → same */
  forward(x: Tensor): Tensor {
    return g.layerNorm(x, this.weight, this.bias, this.eps, -1);
  }
}

/** A lookup table [num, dim]. */
export class Embedding {
  readonly weight: Tensor;
  constructor(s: Scope, readonly num: number, readonly dim: number) {
    this.weight = s.param("weight", [num, dim]);
  }
  /** ids: int64 [...] → [..., dim] */
  forward(ids: Tensor): Tensor {
    return g.gather(this.weight, ids, 0);
  }
}

/** x·σ(x) */
export function silu(x: Tensor): Tensor {
  return g.mul(x, g.sigmoid(x));
}

/** x·σ(1.702x), CLIP's GELU approximation. */
export function quickGelu(x: Tensor): Tensor {
  return g.mul(x, g.sigmoid(g.mul(x, 1.702)));
}
