/**
 * Per-checkpoint cache folders for models whose weights stay on disk.
 *
 * onnxruntime reads an external initializer only from a file inside the model's own folder
 * (see session.ts), so a checkpoint is hard-linked into a folder of the cache and the generated
 * `.onnx` files are written beside it; their initializers then point at byte ranges of the
 * checkpoint and onnxruntime maps the file instead of copying it. Where a hard link cannot be
 * made (the cache is on another filesystem, or the filesystem has none), the tensors a graph
 * needs are written once into a data file in the folder instead.
 *
 * On CPU the graph onnxruntime optimized at the first load is saved beside the model
 * (`<name>-<key>.opt.onnx` + `.opt.bin`) and later loads start from it: for the SD 1.5 U-Net
 * that skips constant folding and the NCHWc layout transform, tens of seconds. That copy holds
 * every weight in float32 (3.4 GB for the U-Net) and suits this CPU and onnxruntime version
 * only, so both are part of its key.
 *
 * Each graph shape has its own copy (one per resolution for the U-Net), so a folder keeps only
 * the `MAX_OPTIMIZED` most recently used copies and deletes the oldest when it saves another.
 *
 * A folder is named by a hash of its source files' identity (real path, size, mtime, inode),
 * so an edited or replaced checkpoint gets a fresh folder. The hard link keeps the checkpoint's
 * disk blocks alive after the original is deleted: remove the cache folder to free them.
 */
import { createHash, randomBytes } from "node:crypto";
import { type Stats } from "node:fs";
import { link, mkdir, open, readFile, readdir, realpath, rename, rm, stat, unlink, utimes, writeFile } from "node:fs/promises";
import os from "node:os";
import { basename, extname, join } from "node:path";
import { BackendError } from "../errors.js";
import { ortVersion } from "./providers.js";
import { type Session, type SessionOptions, createSession } from "./session.js";

/** The cache root: `$SDTS_CACHE`, else `$XDG_CACHE_HOME/sdts`, else `~/.cache/sdts`. */
export function defaultCacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SDTS_CACHE) return env.SDTS_CACHE;
  return join(env.XDG_CACHE_HOME || join(os.homedir(), ".cache"), "sdts");
}

/** A byte range of a file inside the model folder, as an ONNX external initializer names it. */
export interface DataRange {
  /** File name relative to the folder. */
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

/** One tensor to place in a data file: its key, byte length and a reader for its bytes (which need stay valid only until the next part is read). */
export interface DataPart {
  readonly key: string;
  readonly length: number;
  readonly read: () => Promise<Uint8Array>;
}

/** Options of `openModelDir`. */
export interface ModelDirOptions {
  /** Cache root (default `defaultCacheRoot()`). */
  readonly root?: string;
  /** Makes the hard link; tests inject a failing one to take the fallback path. */
  readonly link?: (existing: string, newPath: string) => Promise<void>;
}

/** A cache folder holding hard links to some checkpoint files. */
export interface ModelDir {
  readonly dir: string;
  /** The link's file name inside `dir` for a source file, or undefined when it could not be linked. */
  location(file: string): string | undefined;
  /**
   * Writes the parts into the data file `<name>.bin` (64-byte aligned), or reuses one an
   * earlier run completed with the same keys and lengths; returns each key's range.
   */
  writeData(name: string, parts: readonly DataPart[]): Promise<Map<string, DataRange>>;
  /** Writes a model file atomically (temp file, then rename) unless identical bytes are there; returns its path. */
  writeModel(name: string, bytes: Uint8Array): Promise<string>;
  /**
   * A session for the model `bytes`, saved as `<stem>-<hash>.onnx`; on CPU loaded from the
   * optimized copy an earlier load saved, or saving one now unless `keepOptimized` is false
   * (for graphs made once, e.g. with a particular set of LoRAs, not worth their disk).
   */
  openSession(stem: string, bytes: Uint8Array, options: SessionOptions, keepOptimized?: boolean): Promise<Session>;
}

/** Optimized copies kept per cache folder (each can be gigabytes): the most recently used ones. */
export const MAX_OPTIMIZED = 3;

/** Link errors that mean "no hard link here", not "something is broken". */
const NO_LINK = new Set(["EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "EACCES", "ENOSYS"]);

function identity(path: string, s: Stats): unknown[] {
  return [path, s.size, s.mtimeMs, s.ino, s.dev];
}

/** Opens (creating it if needed) the cache folder for `files` and hard-links each of them into it. */
export async function openModelDir(files: readonly string[], opts: ModelDirOptions = {}): Promise<ModelDir> {
  const sources = await Promise.all(
    [...new Set(files)].sort().map(async (f) => {
      const real = await realpath(f);
      return { file: f, real, stats: await stat(real) };
    }),
  );
  const hash = createHash("sha256").update(JSON.stringify(sources.map((s) => identity(s.real, s.stats)))).digest("hex").slice(0, 20);
  const dir = join(opts.root ?? defaultCacheRoot(), hash);
  try {
    await mkdir(dir, { recursive: true });
    const about = JSON.stringify({ sources: sources.map((s) => s.real) }, null, 1);
    await writeFile(join(dir, "sources.json"), about);
  } catch (e) {
    throw new BackendError(`cannot create the model cache folder ${dir}: ${(e as Error).message}; set SDTS_CACHE to a writable folder`, { cause: e });
  }
  const locations = new Map<string, string>();
  for (const [i, s] of sources.entries()) {
    const name = `w${i}${extname(s.real) || ".bin"}`;
    if (await linkInto(s.real, s.stats, join(dir, name), opts.link ?? link)) locations.set(s.file, name);
  }
  return {
    dir,
    location: (file) => locations.get(file),
    writeData: (name, parts) => writeData(dir, name, parts),
    writeModel: (name, bytes) => writeModel(dir, name, bytes),
    openSession: (stem, bytes, options, keep = true) => openSession(dir, stem, bytes, options, keep),
  };
}

/** Makes `dst` a hard link of `src` (reusing a correct one); false when the filesystem cannot link. */
async function linkInto(src: string, srcStats: Stats, dst: string, makeLink: NonNullable<ModelDirOptions["link"]>): Promise<boolean> {
  const have = await stat(dst).catch(() => undefined);
  if (have !== undefined && have.ino === srcStats.ino && have.dev === srcStats.dev) return true;
  if (have !== undefined) await unlink(dst);
  try {
    await makeLink(src, dst);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    if (code === "EEXIST") return (await stat(dst)).ino === srcStats.ino; // a concurrent process linked it
    if (NO_LINK.has(code)) return false;
    throw new BackendError(`cannot hard-link ${src} into the model cache (${dst}): ${(e as Error).message}`, { cause: e });
  }
}

interface Manifest {
  readonly size: number;
  readonly entries: Record<string, [number, number]>;
}

const ALIGN = 64;

async function writeData(dir: string, name: string, parts: readonly DataPart[]): Promise<Map<string, DataRange>> {
  const location = `${name}.bin`;
  const entries: Record<string, [number, number]> = {};
  let size = 0;
  for (const p of parts) {
    entries[p.key] = [size, p.length];
    size = Math.ceil((size + p.length) / ALIGN) * ALIGN;
  }
  const ranges = new Map(parts.map((p) => [p.key, { location, offset: entries[p.key]![0], length: p.length }]));
  const manifestPath = join(dir, `${name}.json`);
  const old = await readFile(manifestPath, "utf8").then((t) => JSON.parse(t) as Manifest).catch(() => undefined);
  const binSize = await stat(join(dir, location)).then((s) => s.size).catch(() => -1);
  if (old !== undefined && old.size === size && binSize === size && JSON.stringify(old.entries) === JSON.stringify(entries)) return ranges;

  const tmp = join(dir, `.${location}.${randomBytes(6).toString("hex")}.tmp`);
  const fh = await open(tmp, "w");
  try {
    for (const p of parts) {
      const bytes = await p.read();
      if (bytes.length !== p.length) throw new BackendError(`model cache: tensor '${p.key}' has ${bytes.length} bytes, expected ${p.length}`);
      let done = 0;
      while (done < bytes.length) done += (await fh.write(bytes, done, Math.min(bytes.length - done, 1 << 30), entries[p.key]![0] + done)).bytesWritten;
    }
    await fh.truncate(size);
    await fh.close();
    await rename(tmp, join(dir, location));
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e instanceof BackendError ? e : new BackendError(`cannot write ${join(dir, location)}: ${(e as Error).message}`, { cause: e });
  }
  await writeModel(dir, `${name}.json`, new TextEncoder().encode(JSON.stringify({ size, entries } satisfies Manifest)));
  return ranges;
}

async function writeModel(dir: string, name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, basename(name));
  const old = await readFile(path).catch(() => undefined);
  if (old !== undefined && Buffer.compare(old, bytes) === 0) return path;
  const tmp = join(dir, `.${basename(name)}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new BackendError(`cannot write ${path}: ${(e as Error).message}; set SDTS_CACHE to a writable folder`, { cause: e });
  }
  return path;
}

const sha12 = (...parts: (string | Uint8Array)[]): string => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex").slice(0, 12);
};

async function openSession(dir: string, stem: string, bytes: Uint8Array, options: SessionOptions, keep: boolean): Promise<Session> {
  const modelName = `${stem}-${sha12(bytes)}.onnx`;
  if (!keep || options.provider !== "cpu" || (options.optimization ?? "all") === "disabled") return createSession(await writeModel(dir, modelName, bytes), options);
  const key = sha12(bytes, ortVersion(), os.cpus()[0]?.model ?? "", options.optimization ?? "all");
  const opt = join(dir, `${stem}-${key}.opt.onnx`);
  if (await stat(opt).then(() => true, () => false)) {
    try {
      const session = await createSession(opt, options);
      const now = new Date();
      await utimes(opt, now, now).catch(() => undefined); // the mtime orders copies by last use
      return session;
    } catch {
      await rm(opt, { force: true }); // unreadable (e.g. its data file was deleted): optimize again
    }
  }
  const model = await writeModel(dir, modelName, bytes);
  // A unique data file per writer: concurrent first loads never write into each other's file.
  const nonce = randomBytes(6).toString("hex");
  const tmp = join(dir, `.${stem}-${key}.opt.onnx.${nonce}.tmp`);
  const first = await createSession(model, { ...options, saveOptimized: { model: tmp, externalData: `${stem}-${key}-${nonce}.opt.bin` } });
  try {
    await rename(tmp, opt);
    await removeStale(dir, stem, key);
    await removeLeastUsed(dir, MAX_OPTIMIZED);
  } catch {
    return first; // usable; the next load optimizes again
  }
  // Reloading costs a few seconds but maps the saved weights instead of holding them in anonymous
  // memory: for the SD 1.5 U-Net the resident set drops from 4.5 to 3.5 GiB.
  await first.dispose();
  return createSession(opt, options);
}

/** Deletes the optimized copies (graph + data files) beyond the `keep` most recently used. */
async function removeLeastUsed(dir: string, keep: number): Promise<void> {
  const files = await readdir(dir);
  const copies = await Promise.all(
    files.filter((f) => f.endsWith(".opt.onnx")).map(async (f) => ({ base: f.slice(0, -".opt.onnx".length), used: (await stat(join(dir, f))).mtimeMs })),
  );
  copies.sort((a, b) => b.used - a.used);
  for (const { base } of copies.slice(keep)) {
    for (const f of files) {
      if (f === `${base}.opt.onnx` || (f.startsWith(`${base}-`) && /^-[0-9a-f]{12}\.opt\.bin$/.test(f.slice(base.length)))) await rm(join(dir, f), { force: true });
    }
  }
}

/** Deletes optimized copies of `stem` saved under another key (an older graph, ORT or CPU). */
async function removeStale(dir: string, stem: string, key: string): Promise<void> {
  const own = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-([0-9a-f]{12})(-[0-9a-f]{12})?\\.opt\\.(onnx|bin)$`);
  for (const f of await readdir(dir)) {
    const m = own.exec(f);
    if (m !== null && m[1] !== key) await rm(join(dir, f), { force: true });
  }
}
