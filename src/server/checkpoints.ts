/**
 * The checkpoints the server can switch to (A1111's /sdapi/v1/sd-models): the loaded model
 * plus `.safetensors` files and diffusers folders in the models folder (two levels deep).
 * Hashes are null: A1111 also leaves them empty until it has read the whole file.
 */
import { type Dirent, existsSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";

/** One entry of /sdapi/v1/sd-models. */
export interface CheckpointEntry {
  readonly title: string;
  readonly model_name: string;
  readonly hash: string | null;
  readonly sha256: string | null;
  readonly filename: string;
  readonly config: string | null;
}

function entry(title: string, filename: string): CheckpointEntry {
  const modelName = title.replace(/\.safetensors$/i, "").split(/[\\/]/).join("_");
  return { title, model_name: modelName, hash: null, sha256: null, filename, config: null };
}

async function walk(dir: string, depth: number, out: string[]): Promise<void> {
  let names: Dirent[];
  try {
    names = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const d of names.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (d.name.startsWith(".")) continue;
    const p = join(dir, d.name);
    // Follow symlinks: linking checkpoints into a models folder is common.
    const st = d.isSymbolicLink() ? await stat(p).catch(() => undefined) : d;
    if (st === undefined) continue;
    if (st.isFile() && /\.safetensors$/i.test(d.name)) out.push(p);
    else if (st.isDirectory() && existsSync(join(p, "model_index.json"))) out.push(p);
    else if (st.isDirectory() && depth > 0) await walk(p, depth - 1, out);
  }
}

/** The loaded model (if any) first, then the models folder's checkpoints. */
export async function listCheckpoints(modelsDir: string | undefined, current: { source: string; name: string } | undefined): Promise<CheckpointEntry[]> {
  const found: string[] = [];
  if (modelsDir !== undefined) await walk(resolve(modelsDir), 1, found);
  const list = found.map((p) => entry(relative(resolve(modelsDir ?? "."), p).split(sep).join("/"), p));
  if (current !== undefined && !list.some((e) => resolve(e.filename) === resolve(current.source))) {
    list.unshift(entry(current.name === "default" ? "default" : basename(current.source), current.source));
  }
  return list;
}

/** The title of the loaded model as /sd-models lists it. */
export function titleOf(current: { source: string; name: string }, list: readonly CheckpointEntry[]): string {
  return list.find((e) => resolve(e.filename) === resolve(current.source))?.title ?? current.name;
}

/**
 * What to load for an `sd_model_checkpoint` value: a listed title (with or without A1111's
 * " [hash]" suffix), model name or filename, "default", or a path to a checkpoint.
 */
export function resolveCheckpoint(value: string, list: readonly CheckpointEntry[]): string | undefined {
  const v = value.trim().replace(/\s*\[[0-9a-f]{8,64}\]$/i, "");
  const hit = list.find((e) => e.title === v || e.model_name === v || e.filename === v || e.title.replace(/\.safetensors$/i, "") === v);
  if (hit !== undefined) return hit.title === "default" ? "default" : hit.filename;
  if (v === "default") return "default";
  return existsSync(v) ? resolve(v) : undefined;
}
