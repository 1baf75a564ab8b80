/** Finding add-on model files (LoRAs, embeddings) in folders, and A1111's file hashes for infotext. */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readdir } from "node:fs/promises";
import { extname, join, relative } from "node:path";
import { CheckpointError } from "../errors.js";

/** A file found under a folder. */
export interface FoundFile {
  /** File name without extension (how prompts name it). */
  readonly name: string;
  /** Path relative to the folder, "/"-separated. */
  readonly relative: string;
  readonly path: string;
  /** Lower-case extension with the dot: ".safetensors", ".pt". */
  readonly ext: string;
}

/** Every file under `dir` (recursively, hidden entries skipped) whose extension is in `exts`, sorted by relative path. */
export async function listFiles(dir: string, exts: readonly string[]): Promise<FoundFile[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch (e) {
    throw new CheckpointError(`cannot read folder ${dir}: ${(e as Error).message}; check the path`, { cause: e });
  }
  const out: FoundFile[] = [];
  for (const d of entries) {
    if (!d.isFile() || d.name.startsWith(".")) continue;
    const ext = extname(d.name).toLowerCase();
    if (!exts.includes(ext)) continue;
    const path = join(d.parentPath, d.name);
    const rel = relative(dir, path).split(/[\\/]/);
    if (rel.some((p) => p.startsWith("."))) continue;
    out.push({ name: d.name.slice(0, d.name.length - ext.length), relative: rel.join("/"), path, ext });
  }
  return out.sort((a, b) => (a.relative < b.relative ? -1 : a.relative > b.relative ? 1 : 0));
}

/**
 * SHA-256 (hex) of a safetensors file's tensor data, i.e. of everything after the header: the
 * "addnet" hash AUTOMATIC1111 shows for LoRAs (its infotext's `Lora hashes` use the first 12 digits),
 * unchanged when only the metadata is edited.
 */
export async function safetensorsDataHash(path: string): Promise<string> {
  const fh = await open(path, "r");
  let start: number;
  try {
    const head = new Uint8Array(8);
    await fh.read(head, 0, 8, 0);
    start = 8 + Number(new DataView(head.buffer).getBigUint64(0, true));
  } finally {
    await fh.close();
  }
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { start })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
