/**
 * A caption prior for U-Nets that read the prompt only through its pooled text state
 * (UNetConfig.textContext "pooled"): the pooled states of the training captions, and a snap of a
 * prompt's state onto them — the softmax-weighted mean (by cosine similarity / temperature) of its
 * k nearest caption states. A prompt worded unlike any caption lands between the captions' states,
 * where the U-Net never trained; the snap puts it back among them. Stored in a model folder as
 * `caption_prior/config.json` ({ k, temperature }) and `caption_prior/states.safetensors`
 * (`states`, [N, D]); sdts' own addition, which diffusers does not read.
 */
import { join } from "node:path";
import { ConfigError } from "../../errors.js";
import { pathExists, readJsonFile } from "../../io/run-files.js";
import { openSafetensors, tensorToFloat32 } from "../../io/safetensors.js";

/** The caption states and how a prompt's state is snapped onto them. */
export interface CaptionPrior {
  /** [n·dim] pooled states of the training captions. */
  readonly states: Float32Array;
  readonly dim: number;
  /** How many nearest caption states are averaged. */
  readonly k: number;
  /** Softmax temperature over cosine similarities. */
  readonly temperature: number;
  /** [n] L2 norms of the states (computed once, by captionPrior). */
  readonly norms: Float32Array;
}

/** A prior over `states` ([n·dim]), with the states' norms computed once. */
export function captionPrior(states: Float32Array, dim: number, k: number, temperature: number): CaptionPrior {
  const norms = new Float32Array(states.length / dim);
  norms.forEach((_, j) => (norms[j] = Math.hypot(...states.subarray(j * dim, (j + 1) * dim))));
  return { states, dim, k, temperature, norms };
}

/** Defaults of `sdts train export` (measured on the emoji model: k 8, temperature 0.02). */
export const CAPTION_PRIOR_DEFAULTS = { k: 8, temperature: 0.02 } as const;

/** Folder of the prior inside a model folder. */
export const CAPTION_PRIOR_DIR = "caption_prior";

/** The softmax-weighted mean of the `k` caption states nearest to `v` by cosine similarity. */
export function snapToCaptions(prior: CaptionPrior, v: Float32Array): Float32Array {
  const { states, dim: d, norms } = prior;
  const n = norms.length;
  const k = Math.min(prior.k, n);
  const vn = Math.hypot(...v) || 1;
  const best: { sim: number; j: number }[] = [];
  for (let j = 0; j < n; j++) {
    let dot = 0;
    for (let e = 0; e < d; e++) dot += (v[e] ?? 0) * (states[j * d + e] ?? 0);
    const sim = dot / (vn * ((norms[j] ?? 0) || 1));
    if (best.length < k || sim > (best[best.length - 1]?.sim ?? -Infinity)) {
      best.push({ sim, j });
      best.sort((a, b) => b.sim - a.sim);
      if (best.length > k) best.pop();
    }
  }
  const top = best[0]?.sim ?? 0;
  const w = best.map((b) => Math.exp((b.sim - top) / prior.temperature));
  const total = w.reduce((a, b) => a + b, 0);
  const out = new Float32Array(d);
  best.forEach((b, i) => {
    for (let e = 0; e < d; e++) out[e] = (out[e] ?? 0) + ((w[i] ?? 0) / total) * (states[b.j * d + e] ?? 0);
  });
  return out;
}

/** Reads `<modelDir>/caption_prior`, or undefined where the folder has none. */
export async function readCaptionPrior(modelDir: string, dim: number): Promise<CaptionPrior | undefined> {
  const dir = join(modelDir, CAPTION_PRIOR_DIR);
  if (!(await pathExists(join(dir, "config.json")))) return undefined;
  const cfg = (await readJsonFile(join(dir, "config.json"))) as Record<string, unknown>;
  const k = cfg.k ?? CAPTION_PRIOR_DEFAULTS.k;
  const temperature = cfg.temperature ?? CAPTION_PRIOR_DEFAULTS.temperature;
  if (!(Number.isInteger(k) && (k as number) >= 1)) throw new ConfigError(`${dir}/config.json: k must be a whole number ≥ 1 (got ${JSON.stringify(k)})`);
  if (!(typeof temperature === "number" && temperature > 0)) throw new ConfigError(`${dir}/config.json: temperature must be a number > 0 (got ${JSON.stringify(temperature)})`);
  const file = await openSafetensors(join(dir, "states.safetensors"));
  const t = await file.read("states").finally(() => file.close());
  if (t.shape.length !== 2 || t.shape[1] !== dim) throw new ConfigError(`${dir}/states.safetensors: states must be [N, ${dim}] (the text encoder's width), got [${t.shape.join(", ")}]`);
  return captionPrior(tensorToFloat32(t, "states"), dim, k as number, temperature);
}
