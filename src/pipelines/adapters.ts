/**
 * LoRAs and textual-inversion embeddings for a loaded model: finding them in their folders,
 * loading and caching LoRA files, and turning a request's LoRA list into graph plans.
 */
import { CheckpointError, InputError } from "../errors.js";
import { type FoundFile, listFiles, safetensorsDataHash } from "../io/model-files.js";
import { openSafetensors } from "../io/safetensors.js";
import type { EmbeddingToken } from "../models/clip/embedding-tokens.js";
import { readEmbedding } from "../models/clip/textual-inversion.js";
import type { LoraTargets } from "../models/lora/keys.js";
import { type ActiveLora, type LoraModule, type LoraPlan, planLoras, readLora } from "../models/lora/lora.js";
import { extractLoraTags } from "./lora-tags.js";

/** A LoRA to apply: by `name` (its file name in the LoRA folder, or its alias) or by `path`. */
export interface LoraRequest {
  readonly name?: string;
  readonly path?: string;
  /** Multiplier on the LoRA (both networks unless `unetWeight` is given); default 1. */
  readonly weight?: number;
  /** Multiplier on the U-Net's modules only (A1111's `<lora:name:te:unet>`). */
  readonly unetWeight?: number;
}

/** A LoRA file in the LoRA folder. */
export interface LoraInfo {
  /** File name without extension: what `<lora:name:…>` uses. */
  readonly name: string;
  /** `ss_output_name` from the file's metadata, else the name (A1111's alias). */
  readonly alias: string;
  readonly path: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Why the file cannot be used (not a readable .safetensors); listed so that it can be fixed. */
  readonly error?: string;
}

/** A loaded textual-inversion embedding. */
export interface EmbeddingInfo {
  readonly name: string;
  readonly path: string;
  /** Tokens it takes in a prompt. */
  readonly vectors: number;
  /** Width of each vector. */
  readonly shape: number;
}

/** Embeddings found in the embeddings folder: loaded, or skipped with the reason. */
export interface EmbeddingList {
  readonly loaded: readonly EmbeddingInfo[];
  readonly skipped: readonly { readonly name: string; readonly path: string; readonly reason: string }[];
}

/** Loaded embeddings: tokens for the tokenizer and the rows appended to the text encoder's token table. */
export interface LoadedEmbeddings {
  readonly tokens: readonly EmbeddingToken[];
  /** [count, width] row-major. */
  readonly table: Float32Array;
  readonly count: number;
  readonly list: EmbeddingList;
}

const PICKLE = [".pt", ".pth", ".bin", ".ckpt"];
const pickleReason = "a PyTorch pickle; sdts never unpickles files, since they can run code. Convert it to .safetensors";

/**
 * Loads every embedding under `dir`; new token ids start at `firstId` (the text encoder's vocabulary
 * size). Pickles, unreadable files, wrong widths and duplicate names are skipped with a reason.
 */
export async function loadEmbeddings(dir: string, hiddenSize: number, firstId: number): Promise<LoadedEmbeddings> {
  const files = await listFiles(dir, [".safetensors", ...PICKLE]);
  const loaded: EmbeddingInfo[] = [];
  const skipped: { name: string; path: string; reason: string }[] = [];
  const tokens: EmbeddingToken[] = [];
  const rows: Float32Array[] = [];
  let count = 0;
  for (const f of files) {
    if (PICKLE.includes(f.ext)) {
      skipped.push({ name: f.name, path: f.path, reason: pickleReason });
      continue;
    }
    if (tokens.some((t) => t.name === f.name)) {
      skipped.push({ name: f.name, path: f.path, reason: `another embedding is already called '${f.name}'` });
      continue;
    }
    try {
      const file = await openSafetensors(f.path);
      try {
        const e = await readEmbedding(file, hiddenSize);
        tokens.push({ name: f.name, ids: Array.from({ length: e.count }, (_, j) => firstId + count + j) });
        rows.push(e.vectors);
        count += e.count;
        loaded.push({ name: f.name, path: f.path, vectors: e.count, shape: e.dim });
      } finally {
        await file.close();
      }
    } catch (e) {
      if (!(e instanceof CheckpointError)) throw e;
      skipped.push({ name: f.name, path: f.path, reason: e.message });
    }
  }
  const table = new Float32Array(count * hiddenSize);
  let at = 0;
  for (const r of rows) {
    table.set(r, at);
    at += r.length;
  }
  return { tokens, table, count, list: { loaded, skipped } };
}

interface CachedLora {
  readonly modules: readonly LoraModule[];
  hash?: string;
}

/** Graph plans for both networks, and the infotext entries describing the LoRAs. */
export interface LoraActivation {
  readonly unet: LoraPlan | undefined;
  readonly textEncoder: LoraPlan | undefined;
  readonly infotext: Readonly<Record<string, string>>;
}

/** The LoRAs a model can use: a folder to find them by name, and a cache of loaded files. */
export class LoraLibrary {
  private readonly cache = new Map<string, Promise<CachedLora>>();
  private known: LoraTargets | undefined;
  /** `targets` is called once, on first use (it builds the model's module list). */
  constructor(
    private readonly makeTargets: () => LoraTargets,
    private readonly dir: string | undefined,
    private readonly maxCached = 8,
  ) {}

  private get targets(): LoraTargets {
    this.known ??= this.makeTargets();
    return this.known;
  }

  /** Every LoRA file in the folder (empty when there is none), with its metadata; a file that cannot be read is listed with its `error`. */
  async list(): Promise<LoraInfo[]> {
    if (this.dir === undefined) return [];
    const out: LoraInfo[] = [];
    for (const f of await listFiles(this.dir, [".safetensors"])) {
      try {
        const file = await openSafetensors(f.path);
        const metadata = file.metadata;
        await file.close();
        out.push({ name: f.name, alias: metadata["ss_output_name"] ?? f.name, path: f.path, metadata });
      } catch (e) {
        out.push({ name: f.name, alias: f.name, path: f.path, metadata: {}, error: e instanceof Error ? e.message : String(e) });
      }
    }
    return out;
  }

  /** Plans for the LoRAs named by `requests` and by `<lora:…>` tags in `prompt`. */
  async activate(prompt: string, requests: readonly LoraRequest[] = []): Promise<LoraActivation | undefined> {
    const tagged = extractLoraTags(prompt).loras.map((t): LoraRequest => ({ name: t.name, weight: t.weight, ...(t.unetWeight === undefined ? {} : { unetWeight: t.unetWeight }) }));
    const all = [...requests, ...tagged];
    if (all.length === 0) return undefined;
    const active: ActiveLora[] = [];
    const hashes: string[] = [];
    const weights: string[] = [];
    for (const r of all) {
      const { path, label } = await this.locate(r);
      const weight = checkWeight(r.weight ?? 1, `weight of LoRA '${label}'`);
      const unetWeight = checkWeight(r.unetWeight ?? weight, `unetWeight of LoRA '${label}'`);
      const lora = await this.load(path);
      lora.hash ??= (await safetensorsDataHash(path)).slice(0, 12);
      active.push({ modules: lora.modules, textWeight: weight, unetWeight });
      const clean = label.replace(/[:,]/g, "");
      hashes.push(`${clean}: ${lora.hash}`);
      weights.push(`${clean}: ${unetWeight === weight ? weight : `${weight}/${unetWeight}`}`);
    }
    return {
      unet: planLoras(active, "unet", this.targets),
      textEncoder: planLoras(active, "textEncoder", this.targets),
      infotext: { "Lora hashes": hashes.join(", "), "Lora weights": weights.join(", ") },
    };
  }

  private async locate(r: LoraRequest): Promise<{ path: string; label: string }> {
    if (typeof r !== "object" || r === null) throw new InputError("each LoRA must be an object { name or path, weight? }");
    if (r.path !== undefined) {
      if (typeof r.path !== "string" || r.path === "") throw new InputError("LoRA path must be a non-empty string");
      const lower = r.path.toLowerCase();
      if (PICKLE.some((e) => lower.endsWith(e))) throw new CheckpointError(`${r.path} is ${pickleReason}`);
      if (!lower.endsWith(".safetensors")) throw new InputError(`LoRA path must be a .safetensors file (got ${r.path})`);
      return { path: r.path, label: r.name ?? (r.path.split(/[\\/]/).pop() ?? r.path).replace(/\.safetensors$/i, "") };
    }
    if (typeof r.name !== "string" || r.name === "") throw new InputError("a LoRA needs a name (a file in the LoRA folder) or a path");
    if (this.dir === undefined) throw new InputError(`LoRA '${r.name}' named, but no LoRA folder is set; set the LoRA folder (loadModel's loraDir) or give the file's path`);
    const files = await listFiles(this.dir, [".safetensors", ...PICKLE]);
    const hit = findLora(files, r.name) ?? (await this.findByAlias(files, r.name));
    if (hit === undefined) {
      const names = files.filter((f) => f.ext === ".safetensors").map((f) => f.name);
      const some = names.length === 0 ? "the folder has no .safetensors LoRAs" : `available: ${names.slice(0, 10).join(", ")}${names.length > 10 ? ", …" : ""}`;
      throw new InputError(`LoRA '${r.name}' not found in ${this.dir} (${some})`);
    }
    if (hit.ext !== ".safetensors") throw new CheckpointError(`LoRA '${r.name}' (${hit.path}) is ${pickleReason}`);
    return { path: hit.path, label: r.name };
  }

  private async findByAlias(files: readonly FoundFile[], name: string): Promise<FoundFile | undefined> {
    for (const f of files) {
      if (f.ext !== ".safetensors") continue;
      const file = await openSafetensors(f.path);
      const alias = file.metadata["ss_output_name"];
      await file.close();
      if (alias === name) return f;
    }
    return undefined;
  }

  private load(path: string): Promise<CachedLora> {
    let p = this.cache.get(path);
    if (p === undefined) {
      if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value ?? "");
      p = (async () => {
        const file = await openSafetensors(path);
        try {
          return { modules: await readLora(file, this.targets) };
        } finally {
          await file.close();
        }
      })();
      p.catch(() => this.cache.delete(path));
      this.cache.set(path, p);
    }
    return p;
  }
}

/** A LoraLibrary over `dir`, checked now to be a readable folder (so a wrong path fails at load, not at the first prompt). */
export async function openLoraLibrary(makeTargets: () => LoraTargets, dir: string | undefined): Promise<LoraLibrary> {
  if (dir !== undefined) {
    if (typeof dir !== "string" || dir === "") throw new InputError("loraDir must be a folder path");
    await listFiles(dir, []);
  }
  return new LoraLibrary(makeTargets, dir);
}

function checkWeight(w: number, what: string): number {
  if (typeof w !== "number" || !Number.isFinite(w)) throw new InputError(`${what} must be a finite number (got ${String(w)})`);
  return w;
}

/** A file by name: exact file name, then path relative to the folder, then file name ignoring case. */
function findLora(files: readonly FoundFile[], name: string): FoundFile | undefined {
  const rel = (f: FoundFile) => f.relative.slice(0, f.relative.length - f.ext.length);
  // A .safetensors file wins over a pickle of the same name.
  const find = (hit: (f: FoundFile) => boolean) => files.find((f) => f.ext === ".safetensors" && hit(f)) ?? files.find(hit);
  return find((f) => f.name === name) ?? find((f) => rel(f) === name) ?? find((f) => f.name.toLowerCase() === name.toLowerCase());
}
