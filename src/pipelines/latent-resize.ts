/**
 * Resizing latents for the hires fix, as torch.nn.functional.interpolate does with
 * align_corners=False: nearest (floor of the scaled index), bilinear, and bicubic (Keys' kernel,
 * a = −0.75, borders clamped).
 */
import type { Tensor } from "./types.js";

/** Interpolation modes of the latent upscalers. */
export type LatentMode = "nearest" | "bilinear" | "bicubic";

function cubic(x: number, a = -0.75): number {
  const t = Math.abs(x);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

/** Sample positions and weights along one axis for an output of `out` from `inp`. */
function taps(inp: number, out: number, mode: LatentMode): { idx: number[]; w: number[] }[] {
  const scale = inp / out;
  return Array.from({ length: out }, (_, o) => {
    if (mode === "nearest") return { idx: [Math.min(inp - 1, Math.floor(o * scale))], w: [1] };
    const src = (o + 0.5) * scale - 0.5;
    if (mode === "bilinear") {
      const s = Math.max(src, 0);
      const i0 = Math.min(Math.floor(s), inp - 1);
      const i1 = Math.min(i0 + 1, inp - 1);
      const f = s - i0;
      return { idx: [i0, i1], w: [1 - f, f] };
    }
    const i = Math.floor(src);
    const f = src - i;
    const idx = [-1, 0, 1, 2].map((k) => Math.min(inp - 1, Math.max(0, i + k)));
    return { idx, w: [cubic(1 + f), cubic(f), cubic(1 - f), cubic(2 - f)] };
  });
}

/** Resizes [B, C, h, w] latents to [B, C, outH, outW]. */
export function resizeLatents(x: Tensor, outH: number, outW: number, mode: LatentMode): Tensor {
  const [b, c, h, w] = x.shape as [number, number, number, number];
  const ty = taps(h, outH, mode);
  const tx = taps(w, outW, mode);
  const out = new Float32Array(b * c * outH * outW);
  for (let p = 0; p < b * c; p++) {
    const src = p * h * w;
    const dst = p * outH * outW;
    for (let oy = 0; oy < outH; oy++) {
      const ry = ty[oy] as { idx: number[]; w: number[] };
      for (let ox = 0; ox < outW; ox++) {
        const rx = tx[ox] as { idx: number[]; w: number[] };
        let v = 0;
        for (let a = 0; a < ry.idx.length; a++) {
          for (let k = 0; k < rx.idx.length; k++) v += (ry.w[a] ?? 0) * (rx.w[k] ?? 0) * (x.data[src + (ry.idx[a] ?? 0) * w + (rx.idx[k] ?? 0)] ?? 0);
        }
        out[dst + oy * outW + ox] = v;
      }
    }
  }
  return { data: out, shape: [b, c, outH, outW] };
}
