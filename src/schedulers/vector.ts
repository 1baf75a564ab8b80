/** Element-wise maths on flat float32 latents, shared by the samplers (float64 inside, one rounding out). */
import { InputError, assert } from "../errors.js";
import type { PredictionType } from "./config.js";
import type { NoiseSource } from "./common.js";

/** Σ cₖ·xₖ over equally long latents, as a new Float32Array. */
export function lincomb(terms: readonly (readonly [number, Float32Array])[]): Float32Array {
  const n = terms[0]?.[1].length ?? 0;
  for (const [, x] of terms) assert(x.length === n, () => `lincomb: lengths differ (${x.length} vs ${n})`);
  const out = new Float32Array(n);
  for (const [c, x] of terms) {
    if (c === 0) continue;
    for (let j = 0; j < n; j++) out[j] = (out[j] ?? 0) + c * (x[j] ?? 0);
  }
  return out;
}

/** x / d element-wise, rounded like a float32 tensor division. */
export function divide(x: Float32Array, d: number): Float32Array {
  if (d === 1) return x;
  const out = new Float32Array(x.length);
  for (let j = 0; j < x.length; j++) out[j] = (x[j] ?? 0) / d;
  return out;
}

/** Checks that a model output can be combined with the sample. */
export function checkSameLength(sample: Float32Array, modelOut: Float32Array, who: string): void {
  if (sample.length !== modelOut.length) {
    throw new InputError(
      `${who}: model output has ${modelOut.length} values but the sample has ${sample.length}; pass the UNet output for this sample`,
    );
  }
}

/** Draws one latent-sized normal tensor; only the element count matters to PyTorch's sampler. */
export function drawNoise(rng: NoiseSource | undefined, n: number, who: string): Float32Array {
  if (rng === undefined) {
    throw new InputError(`${who} adds noise at every step; pass a seeded generator (TorchGenerator) as rng`);
  }
  const { data } = rng.randn([n]);
  assert(data.length === n, () => `${who}: rng returned ${data.length} values for ${n}`);
  return data;
}

/**
 * x₀ estimate of the k-diffusion parameterisation x = x₀ + σ·ε on the unscaled sample
 * (Karras et al. 2022, Table 1 with c_in = 1/√(σ²+1)): ε → x − σ·ε; v → x/(σ²+1) − v·σ/√(σ²+1).
 */
export function x0FromSigma(sample: Float32Array, out: Float32Array, sigma: number, p: PredictionType): Float32Array {
  if (p === "epsilon") return lincomb([[1, sample], [-sigma, out]]);
  if (p === "v_prediction") {
    const s2 = sigma * sigma + 1;
    return lincomb([[1 / s2, sample], [-sigma / Math.sqrt(s2), out]]);
  }
  return out;
}

/**
 * x₀ estimate of the variance-preserving form x_t = √ᾱ·x₀ + √(1−ᾱ)·ε (Ho et al. 2020, eq. 15;
 * v-prediction of Salimans & Ho 2022, §4): ε → (x − √(1−ᾱ)·ε)/√ᾱ; v → √ᾱ·x − √(1−ᾱ)·v.
 */
export function x0FromAlpha(sample: Float32Array, out: Float32Array, alphaProd: number, p: PredictionType): Float32Array {
  const a = Math.sqrt(alphaProd);
  const b = Math.sqrt(1 - alphaProd);
  if (p === "epsilon") return lincomb([[1 / a, sample], [-b / a, out]]);
  if (p === "v_prediction") return lincomb([[a, sample], [-b, out]]);
  return out;
}

/** ε estimate matching x0FromAlpha (DDIM eq. 12 needs both). */
export function epsFromAlpha(sample: Float32Array, out: Float32Array, alphaProd: number, p: PredictionType): Float32Array {
  const a = Math.sqrt(alphaProd);
  const b = Math.sqrt(1 - alphaProd);
  if (p === "epsilon") return out;
  if (p === "v_prediction") return lincomb([[a, out], [b, sample]]);
  return lincomb([[1 / b, sample], [-a / b, out]]);
}

/** Clamps every element to [−r, r] (diffusers' clip_sample). */
export function clamp(x: Float32Array, r: number): Float32Array {
  return x.map((v) => Math.min(Math.max(v, -r), r));
}
