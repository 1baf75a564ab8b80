/**
 * Finding a model's files and configs: a diffusers folder (model_index.json, unet/, vae/,
 * text_encoder/, tokenizer/, scheduler/) or a single-file checkpoint in the original layout.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { CheckpointError, ConfigError } from "../errors.js";

/** Parses JSON that may hold bare -Infinity/Infinity/NaN (Python's json writes them). */
export function parseLooseJson(text: string, what: string): Record<string, unknown> {
  try {
    const fixed = text.replace(/(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,}\]])/g, '"$1"');
    const v: unknown = JSON.parse(fixed);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("not a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${what}: not valid JSON (${e instanceof Error ? e.message : String(e)}); fix or replace the file`);
  }
}

/** Reads a JSON config file, or undefined if it does not exist. */
export function readJsonIfExists(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  return parseLooseJson(readFileSync(path, "utf8"), path);
}

/** The first of several candidate files that exists. */
export function firstExisting(dir: string, names: readonly string[]): string | undefined {
  for (const n of names) if (existsSync(join(dir, n))) return join(dir, n);
  return undefined;
}

/** The weights file of a diffusers component folder; refuses pickles with a clear message. */
export function componentWeights(dir: string, stem: string): string {
  const f = firstExisting(dir, [`${stem}.safetensors`, `${stem}.fp16.safetensors`]);
  if (f !== undefined) return f;
  if (firstExisting(dir, [`${stem}.bin`, `${stem}.fp16.bin`]) !== undefined) {
    throw new CheckpointError(`${dir} holds only a PyTorch pickle (${stem}.bin); sdts never runs pickles. Convert it to .safetensors (e.g. with the safetensors library's convert script) and try again`);
  }
  throw new CheckpointError(`${dir}: no ${stem}.safetensors found; is this a complete diffusers model folder?`);
}

/** What kind of source a path is. */
export type SourceKind = "diffusers" | "single-file" | "ckpt";

/** Classifies a model path, with clear errors for what sdts cannot load. */
export function sourceKind(path: string): SourceKind {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such file or folder; check the path`);
  const st = statSync(path);
  if (st.isDirectory()) {
    if (existsSync(join(path, "model_index.json")) || existsSync(join(path, "unet"))) return "diffusers";
    throw new CheckpointError(`${path} is a folder without model_index.json or unet/; pass a diffusers model folder or a .safetensors file`);
  }
  const name = basename(path).toLowerCase();
  if (name.endsWith(".safetensors")) return "single-file";
  if (name.endsWith(".ckpt") || name.endsWith(".pt") || name.endsWith(".pth") || name.endsWith(".bin")) return "ckpt";
  throw new CheckpointError(`${path}: unknown file type; sdts loads .safetensors checkpoints and diffusers folders`);
}
