/** Shared benchmark helpers: interleaved timing, medians, seeded fills and number formatting. */
import { performance } from "node:perf_hooks";

/** Median of a non-empty list. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Geometric mean of positive numbers. */
export function geomean(xs: readonly number[]): number {
  return Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
}

/** Wall time of one call of `fn`, in milliseconds. */
export async function timeOnce(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** Milliseconds of every timed call of each function, in round order. */
export type Samples<K extends string> = Record<K, number[]>;

/**
 * Times each function `runs` times after `warmup` untimed rounds. Rounds interleave the
 * functions (a, b, b, a, …), so drift in clock speed or load from other processes is shared.
 * Each timed call follows `settle` untimed calls of the same function: on a small machine the
 * first run after another session's run is slower (that session's idle threads still spin,
 * caches hold its data), a cost of switching that neither function owns.
 */
export async function timeInterleaved<K extends string>(
  fns: Readonly<Record<K, () => Promise<unknown>>>,
  opts: { readonly warmup: number; readonly runs: number; readonly settle?: number },
): Promise<Samples<K>> {
  const keys = Object.keys(fns) as K[];
  const times = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Samples<K>;
  for (let i = 0; i < opts.warmup + opts.runs; i++) {
    const order = i % 2 === 0 ? keys : [...keys].reverse();
    for (const k of order) {
      for (let j = 0; j < (opts.settle ?? 0); j++) await fns[k]();
      const ms = await timeOnce(fns[k]);
      if (i >= opts.warmup) times[k].push(ms);
    }
  }
  return times;
}

/** Median of each sample list. */
export function medians<K extends string>(s: Samples<K>): Record<K, number> {
  return Object.fromEntries(Object.entries<number[]>(s).map(([k, v]) => [k, median(v)])) as Record<K, number>;
}

/** Median over rounds of a[i] / b[i]: a ratio that cancels load shared by both runs of a round. */
export function pairedRatio(a: readonly number[], b: readonly number[]): number {
  return median(a.map((x, i) => x / (b[i] as number)));
}

/** A Float32Array of `n` uniform values in [-scale, scale), from a seeded xorshift generator. */
export function randomF32(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

/** The bytes of a Float32Array (a view, no copy). */
export function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A number with `digits` decimals. */
export const fmt = (x: number, digits = 1): string => x.toFixed(digits);
