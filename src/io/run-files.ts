/** Small file helpers for datasets and training runs: atomic writes, appended logs, JSON, listings. */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { appendFile, mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CheckpointError } from "../errors.js";

/** Creates a folder (and its parents) if missing. */
export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
}

/** True when the path exists. */
export function pathExists(path: string): boolean {
  return existsSync(path);
}

/** Writes via a temp file and rename, so a failed write leaves no half file and replaces nothing. */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new CheckpointError(`cannot write ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Appends one line (a newline is added). */
export async function appendLine(path: string, line: string): Promise<void> {
  await appendFile(path, `${line}\n`);
}

/** Reads a UTF-8 text file. */
export async function readTextFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Reads a file's bytes. */
export async function readBytes(path: string): Promise<Uint8Array> {
  try {
    const b = await readFile(path);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Parses a JSON file holding an object. */
export async function readJsonFile(path: string): Promise<Record<string, unknown>> {
  const text = await readTextFile(path);
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (e) {
    throw new CheckpointError(`${path} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  throw new CheckpointError(`${path} must hold a JSON object`);
}

/** Writes an object as pretty JSON, atomically. */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** File names in a folder (not recursive), sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isFile()).map((e) => e.name).sort();
  } catch (e) {
    throw new CheckpointError(`cannot list ${dir}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

/** Total size in bytes of the files under a folder (recursive). */
export async function folderBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await readFile(join(e.parentPath, e.name))).byteLength;
  }
  return n;
}

/** Copies one file's bytes. */
export async function copyFile(from: string, to: string): Promise<void> {
  await writeFileAtomic(to, await readBytes(from));
}

/** A fresh temp folder beside `target` (for building a folder and swapping it in). */
export async function tempFolderBeside(target: string): Promise<string> {
  const dir = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.tmp`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Moves a finished folder to `target`, replacing what was there only once the new one is in place. */
export async function swapFolder(built: string, target: string): Promise<void> {
  const old = existsSync(target) ? `${built}.old` : undefined;
  if (old !== undefined) await rename(target, old);
  try {
    await rename(built, target);
  } catch (e) {
    if (old !== undefined) await rename(old, target);
    throw new CheckpointError(`cannot move ${built} to ${target}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (old !== undefined) await rm(old, { recursive: true, force: true });
}

/** Removes a folder and everything in it. */
export async function removeFolder(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
