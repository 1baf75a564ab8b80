/**
 * Reads CLIP tokenizer files: a transformers `tokenizer/` folder (vocab.json + merges.txt, with
 * tokenizer_config.json / special_tokens_map.json when present), a model folder holding one, or
 * OpenAI CLIP's bpe_simple_vocab_16e6.txt.gz. Returns plain data for `new ClipTokenizer(...)`.
 */

import { existsSync } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import { CheckpointError, ConfigError } from "../errors.js";

/** What a tokenizer is built from; the shape of `ClipTokenizerOptions` (models/clip). */
export interface TokenizerFiles {
  /** Token → id; absent for the .gz merge list, whose vocabulary CLIP derives from the merges. */
  readonly vocab?: Map<string, number>;
  readonly merges: string[];
  readonly bos?: string;
  readonly eos?: string;
  readonly pad?: string;
  readonly maxLength?: number;
  /** transformers' added tokens (cut out of prompts whole): its special and added tokens. */
  readonly addedTokens?: string[];
  /** The file or folder the data came from, for error messages. */
  readonly source: string;
}

/** File name of OpenAI CLIP's gzipped merge list. */
export const CLIP_BPE_GZ = "bpe_simple_vocab_16e6.txt.gz";

// CLIP (and transformers' CLIPTokenizer) use the first 49152 − 256 − 2 merges of any merge list.
const CLIP_NUM_MERGES = 49152 - 256 - 2;
const EXPECTED =
  `expected a folder with vocab.json and merges.txt, a model folder with a tokenizer/ subfolder, or ${CLIP_BPE_GZ}`;

/** Reads the tokenizer at `pathOrFolder` (see the file comment for what is accepted). */
export async function loadTokenizerFiles(pathOrFolder: string): Promise<TokenizerFiles> {
  const info = await stat(pathOrFolder).catch(() => undefined);
  if (info === undefined) throw new CheckpointError(`tokenizer path not found: ${pathOrFolder}; ${EXPECTED}`);
  if (info.isFile()) {
    if (pathOrFolder.endsWith(".gz")) return readClipBpeGz(pathOrFolder);
    const name = basename(pathOrFolder);
    if (name === "vocab.json" || name === "merges.txt") return readHfTokenizerFolder(dirname(pathOrFolder));
    throw new CheckpointError(`cannot read a tokenizer from the file ${pathOrFolder}; ${EXPECTED}`);
  }
  const has = (name: string): boolean => existsSync(join(pathOrFolder, name));
  if (has("vocab.json") || has("merges.txt")) {
    for (const name of ["vocab.json", "merges.txt"]) {
      if (!has(name)) throw new CheckpointError(`tokenizer folder ${pathOrFolder} has no ${name}; it needs both vocab.json and merges.txt`);
    }
    return readHfTokenizerFolder(pathOrFolder);
  }
  if (has("tokenizer")) return loadTokenizerFiles(join(pathOrFolder, "tokenizer"));
  if (has(CLIP_BPE_GZ)) return readClipBpeGz(join(pathOrFolder, CLIP_BPE_GZ));
  throw new CheckpointError(`no tokenizer files in ${pathOrFolder}; ${EXPECTED}`);
}

/** Reads OpenAI CLIP's gzipped merge list (first line a version comment). */
export async function readClipBpeGz(file: string): Promise<TokenizerFiles> {
  let text: string;
  try {
    text = (await promisify(gunzip)(await readFile(file))).toString("utf8");
  } catch (e) {
    throw new CheckpointError(`cannot read ${file} as a gzipped CLIP merge list: ${String(e)}`);
  }
  const lines = text.split("\n");
  if (lines.length < CLIP_NUM_MERGES + 1) {
    throw new CheckpointError(`${file} holds ${Math.max(lines.length - 1, 0)} merges; CLIP needs ${CLIP_NUM_MERGES}`);
  }
  return { merges: parseMergeLines(lines.slice(1, CLIP_NUM_MERGES + 1), file, 2), source: file };
}

/** Reads a transformers tokenizer folder: vocab.json, merges.txt and the optional configs. */
export async function readHfTokenizerFolder(folder: string): Promise<TokenizerFiles> {
  const vocabPath = join(folder, "vocab.json");
  const mergesPath = join(folder, "merges.txt");
  const vocab = parseVocabJson(await readText(vocabPath), vocabPath);
  const mergesText = await readText(mergesPath);
  if (!mergesText.startsWith("#")) {
    throw new CheckpointError(`${mergesPath} must start with a "#version" line (transformers skips the first line)`);
  }
  // As transformers: strip, drop the version line, keep at most CLIP's merge count.
  const lines = mergesText.trim().split("\n").slice(1, CLIP_NUM_MERGES + 1);
  const merges = parseMergeLines(lines, mergesPath, 2);
  const config = await readSpecialTokens(folder);
  return { vocab, merges, ...config, source: folder };
}

/** Parses vocab.json: a JSON object of token → non-negative integer id. */
export function parseVocabJson(text: string, source: string): Map<string, number> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${source} is not valid JSON: ${String(e)}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new CheckpointError(`${source} must be a JSON object of token → id`);
  }
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(json)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new CheckpointError(`${source}: the id of ${JSON.stringify(token)} must be a non-negative integer (got ${JSON.stringify(id)})`);
    }
    vocab.set(token, id as number);
  }
  return vocab;
}

function parseMergeLines(lines: readonly string[], source: string, firstLineNo: number): string[] {
  return lines.map((line, i) => {
    const parts = line.trim().split(/\s+/);
    if (parts.length !== 2 || parts[0] === "") {
      throw new CheckpointError(`${source} line ${firstLineNo + i}: expected a merge "a b" (got ${JSON.stringify(line)})`);
    }
    return parts.join(" ");
  });
}

type SpecialTokens = Pick<TokenizerFiles, "bos" | "eos" | "pad" | "maxLength" | "addedTokens">;

// transformers reads tokenizer_config.json, then lets special_tokens_map.json override it.
async function readSpecialTokens(folder: string): Promise<SpecialTokens> {
  const config = await readOptionalJson(join(folder, "tokenizer_config.json"));
  const map = await readOptionalJson(join(folder, "special_tokens_map.json"));
  // Without either file, leave the defaults to ClipTokenizer (added tokens follow bos/eos/pad).
  if (config === undefined && map === undefined) return {};
  const pick = (key: string): string | undefined =>
    tokenString(map?.[key], `special_tokens_map.json ${key}`) ?? tokenString(config?.[key], `tokenizer_config.json ${key}`);
  const out = { bos: pick("bos_token"), eos: pick("eos_token"), pad: pick("pad_token") };
  const added = new Set<string>();
  const decoder = config?.["added_tokens_decoder"];
  if (typeof decoder === "object" && decoder !== null) {
    for (const t of Object.values(decoder)) {
      const s = tokenString(t, "tokenizer_config.json added_tokens_decoder");
      if (s !== undefined) added.add(s);
    }
  }
  for (const s of [out.bos ?? "<|startoftext|>", out.eos ?? "<|endoftext|>", out.pad, pick("unk_token")]) {
    if (s !== undefined) added.add(s);
  }
  return { ...out, addedTokens: [...added], maxLength: maxLengthOf(config?.["model_max_length"]) };
}

function maxLengthOf(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  // transformers writes int(1e30) when a tokenizer has no length limit: treat it as unset.
  if (typeof v === "number" && v >= 1e12) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 2) {
    throw new ConfigError(`tokenizer_config.json model_max_length must be an integer ≥ 2 (got ${JSON.stringify(v)})`);
  }
  return v;
}

// A special token is written as a string or as {"content": "..."} (an AddedToken).
function tokenString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return v;
  if (typeof v === "object" && typeof (v as { content?: unknown }).content === "string") {
    return (v as { content: string }).content;
  }
  throw new ConfigError(`${what} must be a string or {"content": string} (got ${JSON.stringify(v)})`);
}

async function readOptionalJson(path: string): Promise<Record<string, unknown> | undefined> {
  if (!existsSync(path)) return undefined;
  try {
    const json: unknown = JSON.parse(await readFile(path, "utf8"));
    if (typeof json === "object" && json !== null && !Array.isArray(json)) return json as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${String(e)}`);
  }
  throw new ConfigError(`${path} must hold a JSON object`);
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new CheckpointError(`cannot read ${path}: ${String(e)}`);
  }
}

/** The CLIP vocabulary shipped with sdts: `assets/clip` in the package root. */
export function defaultTokenizerPath(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "assets", "clip");
    if (dirname(dir) === dir) break;
  }
  throw new ConfigError(`cannot find the sdts package root (a folder with package.json) above ${start}; pass a tokenizer path`);
}
