/** Checks of pipeline inputs: each error says what was expected, what came, and what to use. */
import { InputError } from "../errors.js";
import { findSampler } from "../schedulers/index.js";
import { resolveSeed } from "./noise.js";
import type { Txt2ImgInfo } from "./txt2img.js";

/** A prompt string (any text, may be empty for the negative prompt). */
export function checkPrompt(v: unknown, field: string): string {
  if (typeof v !== "string") throw new InputError(`${field} must be a string (got ${typeof v})`);
  return v;
}

/** Sampling steps: a whole number 1…1000. */
export function checkSteps(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 1000) {
    throw new InputError(`steps must be a whole number from 1 to 1000 (got ${String(v)})`);
  }
  return v;
}

/** CFG scale: a finite number ≥ 0 (≤ 1 turns guidance off). */
export function checkCfg(v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 100) {
    throw new InputError(`cfgScale must be a number from 0 to 100 (got ${String(v)})`);
  }
  return v;
}

/** A sampler name or alias known to sdts; returns its canonical name. */
export function checkSampler(v: unknown): string {
  if (typeof v !== "string") throw new InputError(`sampler must be a string (got ${typeof v})`);
  return findSampler(v).name;
}

/** Width or height: a positive multiple of 8 (and of the model's latent factor). */
export function checkSize(v: unknown, field: string, downscale: number): number {
  const m = Math.max(8, downscale);
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) throw new InputError(`${field} must be a positive whole number of pixels (got ${String(v)})`);
  if (v % m !== 0) {
    const lo = Math.max(m, v - (v % m));
    throw new InputError(`${field} must be a multiple of ${m} (got ${v}); use ${lo} or ${lo + m}`);
  }
  if (v > 4096) throw new InputError(`${field} must be at most 4096 (got ${v})`);
  return v;
}

/** Batch size: a whole number 1…64. */
export function checkBatch(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 64) {
    throw new InputError(`batchSize must be a whole number from 1 to 64 (got ${String(v)})`);
  }
  return v;
}

/** The prompt and sampling parameters every pipeline takes, checked, with A1111's defaults. */
export interface SamplingParams {
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly steps: number;
  readonly cfgScale: number;
  readonly sampler: string;
}

/** Checks prompt, negative prompt, steps (20), CFG and sampler (both: the model's default). */
export function checkSampling(
  p: { prompt: unknown; negativePrompt?: unknown; steps?: unknown; cfgScale?: unknown; sampler?: unknown },
  defaults: { readonly sampler: string; readonly cfgScale: number },
): SamplingParams {
  return {
    prompt: checkPrompt(p.prompt, "prompt"),
    negativePrompt: checkPrompt(p.negativePrompt ?? "", "negativePrompt"),
    steps: checkSteps(p.steps ?? 20),
    cfgScale: checkCfg(p.cfgScale ?? defaults.cfgScale),
    sampler: checkSampler(p.sampler ?? defaults.sampler),
  };
}

/** Output size, batch and seed, checked; `size` is what width/height default to. */
export interface OutputParams {
  readonly width: number;
  readonly height: number;
  readonly batch: number;
  readonly seed: number;
}

/** Checks width and height (multiples of the latent factor), batch (1) and seed (−1 = random). */
export function checkOutput(
  p: { width?: unknown; height?: unknown; batchSize?: unknown; seed?: number },
  size: { readonly width: number; readonly height: number },
  downscale: number,
): OutputParams {
  return {
    width: checkSize(p.width ?? size.width, "width", downscale),
    height: checkSize(p.height ?? size.height, "height", downscale),
    batch: checkBatch(p.batchSize ?? 1),
    seed: resolveSeed(p.seed),
  };
}

/** The parameters a run used, as reported back in its result. */
export function runInfo(
  s: SamplingParams,
  o: OutputParams,
  run: { seeds: number[]; model: string; infotexts: string[]; denoisingStrength?: number },
): Txt2ImgInfo {
  const { prompt, negativePrompt, steps, cfgScale, sampler } = s;
  const { width, height, batch, seed } = o;
  return { prompt, negativePrompt, steps, cfgScale, sampler, seed: run.seeds[0] ?? seed, width, height, batchSize: batch, ...run };
}
