/**
 * Test helpers for the scheduler goldens in ../shared/golden: a tiny private safetensors reader
 * (F32/F64/I64, little-endian) and tolerance reporting. Kept local so these tests do not depend
 * on src/io while it is being written.
 */
import { readFileSync } from "node:fs";
import { GOLDEN_DIR } from "../../golden-dir.js";

/** Root of the shared golden data (../shared/golden from the repo). */
export const GOLDEN = GOLDEN_DIR;

/** One tensor of a safetensors file, widened to numbers. */
export interface GoldenTensor {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array;
}

/** Reads every tensor of a .safetensors file (F32, F64 or I64). */
export function readSafetensors(file: string): Map<string, GoldenTensor> {
  const buf = readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8")) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const base = 8 + headerLen;
  const out = new Map<string, GoldenTensor>();
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const [s, e] = t.data_offsets;
    const bytes = buf.buffer.slice(buf.byteOffset + base + s, buf.byteOffset + base + e);
    const data =
      t.dtype === "F32" ? new Float32Array(bytes)
      : t.dtype === "F64" ? new Float64Array(bytes)
      : t.dtype === "I64" ? new BigInt64Array(bytes)
      : null;
    if (data === null) throw new Error(`${file}: ${name} has dtype ${t.dtype}; this reader knows F32/F64/I64`);
    out.set(name, { dtype: t.dtype, shape: t.shape, data });
  }
  return out;
}

/** A tensor of a file as float32 (throws when missing). */
export function f32(file: Map<string, GoldenTensor>, name: string): Float32Array {
  const t = file.get(name);
  if (t === undefined) throw new Error(`golden tensor ${name} is missing`);
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data as Float64Array);
}

/** A tensor of a file as plain numbers (throws when missing). */
export function nums(file: Map<string, GoldenTensor>, name: string): number[] {
  const t = file.get(name);
  if (t === undefined) throw new Error(`golden tensor ${name} is missing`);
  return Array.from(t.data as Float32Array | Float64Array, Number);
}

/** Max abs difference, worst index, and whether |a−b| ≤ tol·max(1,|b|) held everywhere. */
export function compare(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: number,
): { ok: boolean; maxAbs: number; meanAbs: number; worst: number } {
  let maxAbs = 0;
  let sum = 0;
  let worst = -1;
  let ok = actual.length === expected.length;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] ?? NaN;
    const b = expected[i] ?? NaN;
    const d = Math.abs(a - b);
    sum += d;
    if (!(d <= tol * Math.max(1, Math.abs(b)))) ok = false;
    if (!(d <= maxAbs)) {
      maxAbs = d;
      worst = i;
    }
  }
  return { ok, maxAbs, meanAbs: sum / Math.max(1, expected.length), worst };
}
