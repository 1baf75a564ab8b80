/** Helpers for the golden pipeline tests: reading cases and comparing tensors with a report. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { openSafetensors } from "../../../src/io/safetensors.js";
import { SAMPLERS } from "../../../src/schedulers/samplers.js";

/** All float tensors of a golden case file as Float32Array (F64 kept as numbers). */
export async function readCase(path: string): Promise<Map<string, { data: Float32Array; shape: number[] }>> {
  const f = await openSafetensors(path);
  try {
    const out = new Map<string, { data: Float32Array; shape: number[] }>();
    for (const [name, info] of f.tensors) {
      if (info.dtype === "I64") continue;
      out.set(name, { data: await f.readAsFloat32(name), shape: [...info.shape] });
    }
    return out;
  } finally {
    await f.close();
  }
}

/** The JSON of a case. */
export function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

/** The A1111 sampler name whose diffusers class and overrides are the case's. */
export function samplerFor(className: string, overrides: Record<string, unknown>): string {
  const same = (a: Record<string, unknown>, b: Record<string, unknown>) => {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => k !== "eta"));
    return [...keys].every((k) => JSON.stringify(a[k]) === JSON.stringify(b[k]));
  };
  const hit = SAMPLERS.find((s) => s.className === className && same(s.overrides as Record<string, unknown>, overrides));
  return hit?.name ?? className;
}

/** Asserts max |a − b| ≤ tol, reporting maxAbs, meanAbs and the worst index. */
export function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): number {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  let max = 0;
  let sum = 0;
  let at = -1;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs((got[i] ?? NaN) - (want[i] ?? NaN));
    sum += d;
    if (!(d <= max)) [max, at] = [d, i];
  }
  assert.ok(max <= tol, `${what}: maxAbs ${max} (tol ${tol}), meanAbs ${sum / want.length}, worst index ${at}: got ${got[at]}, want ${want[at]}`);
  return max;
}
