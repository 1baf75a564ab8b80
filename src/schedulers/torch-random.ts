/**
 * Seeded normal noise equal, bit for bit, to PyTorch's CPU generator on x86:
 * `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`.
 *
 * Behaviour reproduced (checked bit for bit against PyTorch 1.13.1, the goldens' build, on
 * x86-64 with AVX2: the goldens, and 4.5 M further draws of many seeds and sizes):
 * - The engine is MT19937, seeded with the LOW 32 BITS of the 64-bit seed (standard
 *   `init_genrand`), so seeds that differ only above bit 31 give the same stream.
 *   https://github.com/pytorch/pytorch/blob/v1.13.1/aten/src/ATen/core/MT19937RNGEngine.h
 * - A float uniform is `(u32 & 0xffffff) · 2⁻²⁴`; a double uniform takes a 64-bit draw
 *   `(first << 32) | second`, keeps the low 53 bits and scales by 2⁻⁵³.
 *   https://github.com/pytorch/pytorch/blob/v1.13.1/aten/src/ATen/core/TransformationHelper.h
 * - `randn` of a contiguous float tensor with ≥ 16 elements (`normal_fill`) first draws one
 *   float uniform per element, then runs Box–Muller on blocks of 16 (u1 = 1 − data[j],
 *   u2 = data[j + 8], j < 8). If the size is not a multiple of 16, the LAST 16 elements are
 *   redrawn with 16 fresh uniforms and transformed again. On x86 the AVX2 kernel does the
 *   maths in float32 with the Cephes log/sincos of `cephes-float32.ts` and θ = f32(2π)·u2
 *   (mean 0 and std 1 make the final fused multiply-add exact).
 *   https://github.com/pytorch/pytorch/blob/v1.13.1/aten/src/ATen/native/cpu/DistributionKernels.cpp
 * - Smaller tensors use the scalar `normal_distribution<double>`: two double uniforms u1, u2,
 *   r = √(−2·ln(1 − u2)), θ = 2π·u1, return r·cos θ and CACHE r·sin θ in the generator for
 *   the next scalar draw (the cache survives across `randn` calls; the vector path ignores
 *   it, and re-seeding clears it). Results are rounded to float32.
 *   https://github.com/pytorch/pytorch/blob/v1.13.1/aten/src/ATen/core/DistributionsHelper.h
 *   Math.log/cos/sin are not glibc's, so a double result may differ in its last bit in rare
 *   cases; after rounding to float32 that almost never shows (none seen in the tests).
 * On CPUs without AVX2 (e.g. ARM) PyTorch's scalar float kernel gives slightly different
 * noise (≈1e-6); sdts always follows the x86 stream, the one the goldens and most users see.
 */
import { InputError } from "../errors.js";
import { logCephesF32, sinCosCephesF32 } from "./cephes-float32.js";

const f = Math.fround;
const N = 624;
const M = 397;
const TWO_PI_F32 = f(2 * Math.PI);

/** A dense float32 tensor: row-major `data` with `shape`. */
export interface NoiseTensor {
  data: Float32Array;
  shape: number[];
}

/** `torch.Generator("cpu")`: an MT19937 stream with PyTorch's normal sampling on top. */
export class TorchGenerator {
  private readonly state = new Uint32Array(N);
  private index = N;
  private cachedNormal: number | null = null;

  /** Seeds like `torch.Generator().manual_seed(seed)`; any safe integer (negatives wrap). */
  constructor(seed: number) {
    this.manualSeed(seed);
  }

  /** Re-seeds in place, clearing the cached Box–Muller value, like `manual_seed`. */
  manualSeed(seed: number): this {
    if (!Number.isSafeInteger(seed)) {
      throw new InputError(`seed must be a safe integer (got ${String(seed)})`);
    }
    const s = this.state;
    s[0] = seed >>> 0; // ToUint32 = the low 32 bits, also of negative and > 2³² seeds
    for (let j = 1; j < N; j++) {
      const prev = s[j - 1] ?? 0;
      s[j] = (Math.imul(1812433253, prev ^ (prev >>> 30)) + j) >>> 0;
    }
    this.index = N;
    this.cachedNormal = null;
    return this;
  }

  /** An independent copy at the same point of the stream. */
  clone(): TorchGenerator {
    const g = new TorchGenerator(0);
    g.state.set(this.state);
    g.index = this.index;
    g.cachedNormal = this.cachedNormal;
    return g;
  }

  /** The next raw 32-bit output (`generator->random()`). */
  nextUint32(): number {
    if (this.index >= N) this.twist();
    let y = this.state[this.index++] ?? 0;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** A float32 uniform in [0, 1) with 24 random bits. */
  nextFloatUniform(): number {
    return (this.nextUint32() & 0xffffff) * 2 ** -24;
  }

  /** A double uniform in [0, 1) with 53 random bits from one 64-bit draw. */
  nextDoubleUniform(): number {
    const hi = this.nextUint32() & 0x1fffff; // high word first, 21 of its bits survive
    const lo = this.nextUint32();
    return (hi * 2 ** 32 + lo) * 2 ** -53;
  }

  /** Standard normal draws of `shape`, continuing the stream (`torch.randn(shape, generator=g)`). */
  randn(shape: readonly number[]): NoiseTensor {
    let size = 1;
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new InputError(`randn shape must hold non-negative integers (got [${shape.join(", ")}])`);
      }
      size *= d;
    }
    const data = new Float32Array(size);
    if (size >= 16) this.normalFill(data);
    else for (let i = 0; i < size; i++) data[i] = this.scalarNormal();
    return { data, shape: [...shape] };
  }

  /** The vector path: uniforms for every element, then Box–Muller in blocks of 16. */
  private normalFill(data: Float32Array): void {
    const size = data.length;
    for (let i = 0; i < size; i++) data[i] = this.nextFloatUniform();
    for (let i = 0; i + 16 <= size; i += 16) boxMuller16(data, i);
    if (size % 16 !== 0) {
      const start = size - 16;
      for (let i = 0; i < 16; i++) data[start + i] = this.nextFloatUniform();
      boxMuller16(data, start);
    }
  }

  /** The scalar path: `normal_distribution<double>` with its cached second value. */
  private scalarNormal(): number {
    if (this.cachedNormal !== null) {
      const v = this.cachedNormal;
      this.cachedNormal = null;
      return f(v);
    }
    const u1 = this.nextDoubleUniform();
    const u2 = this.nextDoubleUniform();
    const r = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return f(r * Math.cos(theta));
  }

  /** MT19937 state regeneration (Matsumoto & Nishimura 1998, the standard recurrence). */
  private twist(): void {
    const s = this.state;
    for (let k = 0; k < N; k++) {
      const y = ((s[k] ?? 0) & 0x80000000) | ((s[(k + 1) % N] ?? 0) & 0x7fffffff);
      const mag = (y & 1) !== 0 ? 0x9908b0df : 0;
      s[k] = ((s[(k + M) % N] ?? 0) ^ (y >>> 1) ^ mag) >>> 0;
    }
    this.index = 0;
  }
}

/** Box–Muller on data[i..i+16) in float32, as PyTorch's AVX2 `normal_fill_16` (mean 0, std 1). */
function boxMuller16(data: Float32Array, i: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f(1 - (data[i + j] ?? 0)); // [0, 1) → (0, 1] for the log
    const u2 = data[i + j + 8] ?? 0;
    const radius = f(Math.sqrt(f(-2 * logCephesF32(u1))));
    const { sin, cos } = sinCosCephesF32(f(TWO_PI_F32 * u2));
    data[i + j] = f(radius * cos);
    data[i + j + 8] = f(radius * sin);
  }
}

/** One-shot `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))`. */
export function randn(shape: readonly number[], seed: number): NoiseTensor {
  return new TorchGenerator(seed).randn(shape);
}
