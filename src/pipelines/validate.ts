/** Checks of pipeline inputs: each error says what was expected, what came, and what to use. */
import { InputError } from "../errors.js";
import { findSampler } from "../schedulers/index.js";

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
