/**
 * What the default-model bench and the training probes (scripts/clip-probe.ts, unet-probe.ts)
 * share: the prompt lists, the emoji an image name stands for, and nearest-neighbour ranks.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** One bench prompt and the emoji it names. */
export interface PromptCase {
  readonly prompt: string;
  /** Image code of the named emoji (without skin-tone modifiers). */
  readonly emoji: string;
}

/** The bench's prompt lists: its own phrasings, and the same emoji in held-out phrasings. */
export const PROMPT_FILES: readonly string[] = ["default-prompts.json", "default-prompts-heldout.json"].map((f) => fileURLToPath(new URL(`./${f}`, import.meta.url)));

/** Reads a prompt list (a JSON array of { prompt, emoji }). */
export function readPromptCases(path: string): PromptCase[] {
  return JSON.parse(readFileSync(path, "utf8")) as PromptCase[];
}

/** "twemoji-1f44b-1f3fd" → "1f44b": drops the style word and skin-tone modifiers. */
export function baseCode(name: string): string {
  return name.replace(/^[a-z]+-/, "").split("-").filter((p) => !/^1f3f[b-f]$/.test(p)).join("-");
}

/** Squared L2 distance from `query` (length `per`) to each of the rows of `table` ([N·per]). */
export function squaredDistances(query: ArrayLike<number>, table: ArrayLike<number>, per: number): Float64Array {
  const n = Math.floor(table.length / per);
  const dist = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < per; k++) {
      const d = (query[k] ?? 0) - (table[j * per + k] ?? 0);
      s += d * d;
    }
    dist[j] = s;
  }
  return dist;
}

/** Indices of the k smallest values, smallest first. */
export function smallest(values: Float64Array, k: number): number[] {
  return [...values.keys()].sort((a, b) => (values[a] ?? 0) - (values[b] ?? 0)).slice(0, k);
}

/**
 * The 5 rows of `table` nearest to `query` (squared L2, `per` values a row), and whether one of
 * them is the emoji `want` (`codes[row]` holds each row's baseCode).
 */
export function top5Match(query: ArrayLike<number>, table: ArrayLike<number>, per: number, codes: readonly string[], want: string): { top: number[]; hit: boolean } {
  const top = smallest(squaredDistances(query, table, per), 5);
  return { top, hit: top.some((j) => codes[j] === want) };
}
