/** Helpers for the golden pipeline tests: reading cases and comparing tensors with a report. */
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

/** The fields every golden pipeline case (txt2img, img2img, inpaint) records about its run. */
export interface GoldenCase {
  prompt: string;
  negative_prompt: string | null;
  seed: number;
  num_inference_steps: number;
  guidance_scale: number;
  scheduler_class: string;
  scheduler_overrides: Record<string, unknown>;
}

/** The generation parameters a case names, as sdts takes them (the sampler by its A1111 name). */
export function caseParams(j: GoldenCase): { prompt: string; negativePrompt: string; steps: number; cfgScale: number; sampler: string; seed: number } {
  return {
    prompt: j.prompt,
    negativePrompt: j.negative_prompt ?? "",
    steps: j.num_inference_steps,
    cfgScale: j.guidance_scale,
    sampler: samplerFor(j.scheduler_class, j.scheduler_overrides),
    seed: j.seed,
  };
}

export { assertClose } from "../../assert-close.js";
