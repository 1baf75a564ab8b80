/**
 * LoRA as a side branch (Hu et al. 2021, eq. 3: h = W₀x + ΔWx with ΔW = B·A): the base weight
 * stays bound as it is and the low-rank product is added to the layer's output,
 * y = x·Wᵀ + b + (x·Dᵀ)·Uᵀ. D [R, in] stacks the down (A) factors of every active LoRA and U
 * [out, R] their up (B) factors, each already scaled by weight·alpha/rank; both are graph
 * inputs fed on every run, so changing a LoRA's weight, or swapping LoRAs of the same ranks,
 * needs no recompile. On a conv the down factor is a conv with the layer's kernel, stride and
 * padding and the up factor a 1×1 conv, as kohya's LoCon and PEFT's conv LoRA define them.
 */
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";
import type { Scope } from "./scope.js";

/** Names of the two graph inputs of the branch on module `path`. */
export function loraFeedNames(path: string): { down: string; up: string } {
  return { down: `lora.${path}.down`, up: `lora.${path}.up` };
}

/** Shapes of the branch inputs for a module of this kind and size at total rank `rank`. */
export function loraFeedShapes(
  kind: "linear" | "conv",
  inFeatures: number,
  outFeatures: number,
  kernel: number,
  rank: number,
): { down: number[]; up: number[] } {
  return kind === "linear"
    ? { down: [rank, inFeatures], up: [outFeatures, rank] }
    : { down: [rank, inFeatures, kernel, kernel], up: [outFeatures, rank, 1, 1] };
}

/** The low-rank branch of one Linear: x [..., in] → [..., out]. */
export class LinearLora {
  readonly down: Tensor; // [R, in]
  readonly up: Tensor; // [out, R]
  constructor(s: Scope, inFeatures: number, outFeatures: number, rank: number) {
    const names = loraFeedNames(s.path);
    const shapes = loraFeedShapes("linear", inFeatures, outFeatures, 1, rank);
    this.down = s.feed(names.down, shapes.down);
    this.up = s.feed(names.up, shapes.up);
  }
  /** x: [..., in] → [..., out] */
  forward(x: Tensor): Tensor {
    const h = g.matmul(x, g.transpose(this.down, [1, 0])); // [..., R]
    return g.matmul(h, g.transpose(this.up, [1, 0])); // [..., out]
  }
}

/** The low-rank branch of one Conv2d: a k×k conv to R channels, then a 1×1 conv to the output. */
export class ConvLora {
  readonly down: Tensor; // [R, in, k, k]
  readonly up: Tensor; // [out, R, 1, 1]
  constructor(
    s: Scope,
    inChannels: number,
    outChannels: number,
    kernel: number,
    rank: number,
    private readonly conv: { stride: g.Conv2dOptions["stride"]; padding: g.Conv2dOptions["padding"] },
  ) {
    const names = loraFeedNames(s.path);
    const shapes = loraFeedShapes("conv", inChannels, outChannels, kernel, rank);
    this.down = s.feed(names.down, shapes.down);
    this.up = s.feed(names.up, shapes.up);
  }
  /** x: [N, Cin, H, W] → [N, Cout, H', W'] */
  forward(x: Tensor): Tensor {
    const h = g.conv2d(x, this.down, undefined, { stride: this.conv.stride, padding: this.conv.padding, groups: 1 }); // [N, R, H', W']
    return g.conv2d(h, this.up, undefined, { stride: 1, padding: 0, groups: 1 }); // [N, Cout, H', W']
  }
}
