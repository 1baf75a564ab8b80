// @ts-check
/** Paints a cross-attention map (h·w values in [0, 1]) onto a canvas with a perceptual colour map. */

/** Stops of an inferno-like map: dark violet → red → amber → pale yellow (reads in colour-blind vision too). */
const STOPS = [
  [0.0, [12, 7, 38]],
  [0.25, [87, 16, 110]],
  [0.5, [188, 55, 84]],
  [0.75, [249, 142, 9]],
  [1.0, [252, 255, 164]],
];

/**
 * RGB of value v in [0, 1].
 * @param {number} v
 * @returns {[number, number, number]}
 */
export function colormap(v) {
  const x = Math.min(1, Math.max(0, Number.isFinite(v) ? v : 0));
  for (let i = 1; i < STOPS.length; i++) {
    const [p1, c1] = /** @type {[number, number[]]} */ (STOPS[i]);
    if (x <= p1) {
      const [p0, c0] = /** @type {[number, number[]]} */ (STOPS[i - 1]);
      const t = (x - p0) / (p1 - p0);
      return /** @type {[number, number, number]} */ (c0.map((c, k) => Math.round(c + ((c1[k] ?? c) - c) * t)));
    }
  }
  return [252, 255, 164];
}

/**
 * Draws a map at its own resolution; CSS scales the canvas up smoothly over the image.
 * The server scales each map to a maximum of 1; the display also stretches its minimum to 0, since
 * averaged attention is often flat (0.85–1) and what matters is where the word looked *more*.
 * Every pixel gets colour (as attention-map overlays usually do), with more weight where attention
 * is high, so the map reads at a glance and the picture still shows through where the word is absent.
 * @param {HTMLCanvasElement} canvas
 * @param {{ width: number, height: number, data: ArrayLike<number> }} map
 * @param {{ alphaFloor?: number }} [opts]
 */
export function drawHeatmap(canvas, map, opts = {}) {
  const { width, height, data } = map;
  if (!(width > 0 && height > 0) || data.length < width * height) return false;
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (!ctx) return false;
  const img = ctx.createImageData(width, height);
  const floor = opts.alphaFloor ?? 0.45;
  const { lo, span } = range(data, width * height);
  for (let i = 0; i < width * height; i++) {
    const v = (Number(data[i]) - lo) / span;
    const [r, g, b] = colormap(v);
    const o = i * 4;
    img.data[o] = r;
    img.data[o + 1] = g;
    img.data[o + 2] = b;
    img.data[o + 3] = Math.round(255 * (floor + (1 - floor) * Math.min(1, Math.max(0, v || 0))));
  }
  ctx.putImageData(img, 0, 0);
  return true;
}

/**
 * Smallest value and the spread to divide by (1 for a flat map, which then shows as it is).
 * @param {ArrayLike<number>} data
 * @param {number} n
 */
function range(data, n) {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = Number(data[i]);
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return hi - lo > 1e-6 ? { lo, span: hi - lo } : { lo: 0, span: 1 };
}
