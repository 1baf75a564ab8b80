/** The training-only image tower of the small CLIP: strided 3×3 convs with SiLU, global mean pooling, a projection. */
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";
import { Conv2d, GroupNorm, Linear, silu } from "../nn/layers.js";
import type { Scope } from "../nn/scope.js";

/** Convs halving the resolution at each of `widths`, then mean pooling and a linear map to `embedDim`. */
export class ImageTower {
  readonly convs: Conv2d[];
  readonly norms: GroupNorm[];
  readonly proj: Linear;
  constructor(s: Scope, widths: readonly number[], embedDim: number) {
    this.convs = widths.map((w, i) => new Conv2d(s.child("convs").child(i), i === 0 ? 3 : (widths[i - 1] ?? 3), w, 3, { stride: 2, padding: 1 }));
    this.norms = widths.map((w, i) => new GroupNorm(s.child("norms").child(i), Math.min(8, w), w));
    this.proj = new Linear(s.child("proj"), widths[widths.length - 1] ?? 3, embedDim);
  }
  /** image: [B, 3, S, S] → [B, embedDim] */
  forward(image: Tensor): Tensor {
    let h = image;
    this.convs.forEach((c, i) => {
      h = silu((this.norms[i] as GroupNorm).forward(c.forward(h))); // [B, w_i, S/2^(i+1), …]
    });
    return this.proj.forward(g.reduceMean(h, [2, 3])); // [B, E]
  }
}
