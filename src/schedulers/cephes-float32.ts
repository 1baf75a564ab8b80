/**
 * Single-precision log, sin and cos as PyTorch's x86 CPU kernels compute them, bit for bit.
 *
 * `torch.randn` on an AVX2/AVX-512 CPU turns uniforms into normals with the Cephes-derived
 * polynomial approximations of Julien Pommier's `sse_mathfun` (AVX port, "avx_mathfun.h"):
 * https://github.com/pytorch/pytorch/blob/v1.13.1/aten/src/ATen/native/cpu/avx_mathfun.h
 * They are not correctly rounded, so `Math.log` / `Math.cos` give different last bits. Here
 * every step is one float32 operation, in the same order, so the results match exactly.
 * The AVX2 build compiles with FMA and GCC contracts every `a·b + c` into one fused
 * multiply-add (when both addends are products, the first one is fused): found by testing
 * every contraction choice against 204 800 PyTorch draws: only this one (and choices that
 * differ only where a product is exact) matched, and it then held for 4.5 M more draws.
 * Only the argument ranges the normal sampler uses matter: log on (0, 1], sin/cos on [0, 2π).
 */

import { fmaF32 } from "./f32-math.js";

const f = Math.fround;

// Cephes single-precision constants (cephes/single/logf.c, sinf.c), rounded to float32.
const SQRTHF = f(0.707106781186547524);
const LOG_P = [
  7.0376836292e-2, -1.151461031e-1, 1.167699874e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
].map(f);
const LOG_Q1 = f(-2.12194440e-4);
const LOG_Q2 = f(0.693359375);
const FOPI = f(1.27323954473516); // 4/π
const DP1 = f(-0.78515625);
const DP2 = f(-2.4187564849853515625e-4);
const DP3 = f(-3.77489497744594108e-8);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f);

const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** Natural log of a positive normal float32 `x`, as the vectorised Cephes `logf` computes it. */
export function logCephesF32(x: number): number {
  scratchF[0] = x;
  const bits = scratchU[0] ?? 0;
  let e = f((bits >>> 23) - 127 + 1); // unbiased exponent + 1, mantissa in [0.5, 1)
  scratchU[0] = (bits & ~0x7f800000) | 0x3f000000;
  let m = scratchF[0] ?? 0;
  // Shift the mantissa to [√½, √2) around 1: below √½, use 2m − 1 and one less exponent.
  const below = m < SQRTHF;
  const tmp = below ? m : 0;
  m = f(m - 1);
  if (below) e = f(e - 1);
  m = f(m + tmp);
  const z = f(m * m);
  let y = LOG_P[0] ?? 0;
  for (let k = 1; k < LOG_P.length; k++) y = fmaF32(y, m, LOG_P[k] ?? 0);
  y = f(y * m);
  y = fmaF32(y, z, f(e * LOG_Q1));
  y = fmaF32(z, -0.5, y);
  return fmaF32(e, LOG_Q2, f(m + y));
}

/** sin and cos of a float32 `x` ≥ 0, as the vectorised Cephes `sincosf` computes them. */
export function sinCosCephesF32(x: number): { sin: number; cos: number } {
  // Octant j = (⌊x·4/π⌋ + 1) & ~1, then reduce x by j·π/4 in three pieces (extended precision).
  const j = (Math.trunc(f(x * FOPI)) + 1) & ~1;
  const y = f(j);
  let r = fmaF32(y, DP1, x);
  r = fmaF32(y, DP2, r);
  r = fmaF32(y, DP3, r);
  const z = f(r * r);
  let c = COS_P[0] ?? 0;
  c = fmaF32(c, z, COS_P[1] ?? 0);
  c = fmaF32(c, z, COS_P[2] ?? 0);
  c = f(c * z);
  c = fmaF32(c, z, -f(z * 0.5));
  c = f(c + 1);
  let s = SIN_P[0] ?? 0;
  s = fmaF32(s, z, SIN_P[1] ?? 0);
  s = fmaF32(s, z, SIN_P[2] ?? 0);
  s = f(s * z);
  s = fmaF32(s, r, r);
  // Octants 2 and 6 (mod 8) swap the polynomials; bit 4 flips sin, bit 4 of j−2 keeps cos.
  const swap = (j & 2) !== 0;
  const sinMag = swap ? c : s;
  const cosMag = swap ? s : c;
  const sinNeg = (j & 4) !== 0;
  const cosNeg = ((j - 2) & 4) === 0;
  return { sin: sinNeg ? -sinMag : sinMag, cos: cosNeg ? -cosMag : cosMag };
}
