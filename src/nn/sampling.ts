/**
 * Resolution changes of the SD U-Net and VAE (diffusers `Downsample2D` / `Upsample2D` with a conv):
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/downsampling.py
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/upsampling.py
 */
import { ShapeError } from "../errors.js";
import * as g from "../graph/ops.js";
import type { Dim } from "../graph/shape.js";
import type { Tensor } from "../graph/tensor.js";
import { Conv2d } from "./layers.js";
import type { Scope } from "./scope.js";

/** Halves H and W with a 3×3 stride-2 conv, declared at `<s>.conv`. */
export class Downsample2D {
  readonly conv: Conv2d;
  /**
   * `padding` as diffusers' option: 1 (the U-Net) pads every side by one; 0 (the VAE) pads only
   * the bottom and right by one, so an even H gives exactly H/2 with a different pixel alignment.
   */
  constructor(s: Scope, channels: number, outChannels = channels, opts: { padding?: 0 | 1 } = {}) {
    const padding = opts.padding ?? 1;
    this.conv = new Conv2d(s.child("conv"), channels, outChannels, 3, {
      stride: 2,
      padding: padding === 1 ? 1 : [0, 0, 1, 1], // [top, left, bottom, right]
    });
  }

  /** x: [B, C, H, W] → [B, Cout, H/2, W/2] for even sizes (odd: ⌈H/2⌉ with padding 1, ⌊H/2⌋ with 0) */
  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** Doubles H and W (nearest neighbour) then mixes with a 3×3 conv, declared at `<s>.conv`. */
export class Upsample2D {
  readonly conv: Conv2d;
  constructor(s: Scope, channels: number, outChannels = channels) {
    this.conv = new Conv2d(s.child("conv"), channels, outChannels, 3, { padding: 1 });
  }

  /**
   * x: [B, C, h, w] → [B, Cout, 2h, 2w], or [B, Cout, size] where the skip it meets is odd-sized
   * (2h − 1 after a stride-2 downsample of an odd size). Nearest resizing of h to 2h − 1 takes
   * row ⌊i·h/(2h−1)⌋ = ⌊i/2⌋ for every i < 2h − 1, so doubling and dropping the last row is exact
   * (diffusers passes `upsample_size` to `interpolate` for this case).
   */
  forward(x: Tensor, size?: readonly [Dim, Dim]): Tensor {
    let h = g.resizeNearest(x, 2); // [B, C, 2h, 2w]
    if (size !== undefined) h = cropTo(h, size);
    return this.conv.forward(h);
  }
}

/** Crops the last two dims of a doubled tensor to `size` (each equal to 2n or 2n − 1). */
function cropTo(x: Tensor, size: readonly [Dim, Dim]): Tensor {
  const [hh, ww] = x.shape.slice(-2);
  const axes: number[] = [];
  const ends: number[] = [];
  [size[0], size[1]].forEach((want, i) => {
    const have = i === 0 ? hh : ww;
    if (want === have) return;
    if (typeof want !== "number" || typeof have !== "number" || want !== have - 1) {
      throw new ShapeError(`Upsample2D: cannot resize ${String(have)} to ${String(want)}; expected ${String(have)} or ${String(have)}-1`);
    }
    axes.push(x.rank - 2 + i);
    ends.push(want);
  });
  return axes.length === 0 ? x : g.slice(x, axes, axes.map(() => 0), ends);
}
