/**
 * CLIP's byte-level BPE tokenizer, id for id equal to transformers' slow `CLIPTokenizer`
 * (transformers e770f031, models/clip/tokenization_clip.py), which diffusers'
 * StableDiffusionPipeline uses, and to OpenAI CLIP's simple_tokenizer.py for prompts
 * without HTML entities.
 */

import { ConfigError, InputError } from "../../errors.js";
import { EmbeddingMatcher, type EmbeddingToken } from "./embedding-tokens.js";
import { cleanText, type TextCleanup } from "./text-cleanup.js";

/** A special token given by its string or by its vocabulary id. */
export type TokenRef = string | number;

/** What a ClipTokenizer is built from; `loadTokenizerFiles` (io/) returns a fitting object. */
export interface ClipTokenizerOptions {
  /** Token → id. Omitted: built from `merges` as CLIP does (bytes, bytes + `</w>`, merges, specials). */
  readonly vocab?: ReadonlyMap<string, number> | Readonly<Record<string, number>>;
  /** BPE merges, best (lowest rank) first, each "a b". */
  readonly merges: readonly string[];
  /** Default "<|startoftext|>". */
  readonly bos?: TokenRef;
  /** Default "<|endoftext|>". */
  readonly eos?: TokenRef;
  /** Padding of `encode`: SD1.x pads with `eos`, SD2.x with "!" (id 0). Default `eos`. */
  readonly pad?: TokenRef;
  /** Length of `encode`'s output, BOS and EOS included. Default 77. */
  readonly maxLength?: number;
  /**
   * Strings cut out of the text before clean-up and mapped straight to their id, like
   * transformers' added tokens. Default: the bos, eos and pad strings — so with SD2's "!"
   * pad every "!" in a prompt becomes id 0, as in diffusers (open_clip tokenizes "!!" as
   * usual; pass ["<|startoftext|>", "<|endoftext|>"] for that).
   */
  readonly addedTokens?: readonly string[];
  /** Text clean-up before BPE (see text-cleanup.ts). Default "ftfy". */
  readonly cleanup?: TextCleanup;
  /** Textual-inversion embeddings: their names in a prompt become their ids (see embedding-tokens.ts). */
  readonly embeddings?: readonly EmbeddingToken[];
}

/** Options of `ClipTokenizer.decode`. */
export interface DecodeOptions {
  /** Drop bos/eos/pad and added tokens. Default false. */
  readonly skipSpecialTokens?: boolean;
}

const START = "<|startoftext|>";
const END = "<|endoftext|>";
// CLIP's pre-tokenization pattern. Case-insensitive as in CLIP (the text is lower-cased by then).
const WORD = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+/giu;
const MAX_CACHE = 100_000;

/**
 * GPT-2/CLIP's byte → printable character table: printable Latin-1 bytes map to
 * themselves, the other 68 bytes to U+0100 onwards. The order is CLIP's vocabulary order.
 */
export function bytesToUnicode(): { bytes: number[]; chars: string[] } {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const chars = bytes.map((b) => String.fromCharCode(b));
  for (let b = 0, n = 0; b < 256; b++) {
    if (bytes.includes(b)) continue;
    bytes.push(b);
    chars.push(String.fromCharCode(256 + n++));
  }
  return { bytes, chars };
}

/** CLIP's vocabulary built from its merges: 256 bytes, the same with `</w>`, merges, specials. */
export function clipVocabFromMerges(merges: readonly string[]): Map<string, number> {
  const { chars } = bytesToUnicode();
  const tokens = [...chars, ...chars.map((c) => c + "</w>"), ...merges.map((m) => m.replace(" ", ""))];
  tokens.push(START, END);
  return new Map(tokens.map((t, i) => [t, i]));
}

/** CLIP BPE tokenizer: text → token ids (and back), pure and cached. */
export class ClipTokenizer {
  /** Id of the start token (49406 for CLIP). */
  readonly bosId: number;
  /** Id of the end token (49407 for CLIP). */
  readonly eosId: number;
  /** Id `encode` pads with: 49407 in SD1.x, 0 ("!") in SD2.x. */
  readonly padId: number;
  /** Length of `encode`'s output (77). */
  readonly maxLength: number;
  /** The text clean-up run before BPE. */
  readonly cleanup: TextCleanup;
  private readonly vocab: ReadonlyMap<string, number>;
  private readonly idToTokenTable: readonly (string | undefined)[];
  private readonly ranks = new Map<string, number>();
  private readonly byteChars: readonly string[];
  private readonly byteOfChar: ReadonlyMap<string, number>;
  private readonly addedIds = new Map<string, number>();
  private readonly addedSplit: RegExp | undefined;
  private readonly cache = new Map<string, readonly number[]>();
  private readonly utf8 = new TextEncoder();
  private readonly matcher: EmbeddingMatcher | undefined;

  constructor(private readonly opts: ClipTokenizerOptions) {
    this.vocab = toMap(opts.vocab ?? clipVocabFromMerges(opts.merges));
    const table: (string | undefined)[] = [];
    for (const [token, id] of this.vocab) table[id] = token;
    this.idToTokenTable = table;
    const { bytes, chars } = bytesToUnicode();
    const byteChars = new Array<string>(256);
    bytes.forEach((b, i) => (byteChars[b] = chars[i] ?? ""));
    this.byteChars = byteChars;
    this.byteOfChar = new Map(chars.map((c, i) => [c, bytes[i] ?? 0]));
    this.checkMerges(opts.merges);
    this.bosId = this.resolve(opts.bos ?? START, "bos");
    this.eosId = this.resolve(opts.eos ?? END, "eos");
    this.padId = this.resolve(opts.pad ?? this.eosId, "pad");
    this.maxLength = opts.maxLength ?? 77;
    if (!Number.isInteger(this.maxLength) || this.maxLength < 2) {
      throw new ConfigError(`tokenizer maxLength must be an integer ≥ 2 (got ${this.maxLength})`);
    }
    this.cleanup = opts.cleanup ?? "ftfy";
    const specials = [this.bosId, this.eosId, this.padId].map((id) => table[id] ?? "");
    for (const token of opts.addedTokens ?? specials) this.addedIds.set(token, this.resolve(token, "added"));
    this.addedSplit = addedTokenPattern([...this.addedIds.keys()]);
    const embeddings = opts.embeddings ?? [];
    this.matcher = embeddings.length > 0 ? new EmbeddingMatcher(embeddings, (t) => this.tokenize(t)) : undefined;
  }

  /** The same tokenizer recognising these textual-inversion embeddings (replacing any it had). */
  withEmbeddings(embeddings: readonly EmbeddingToken[]): ClipTokenizer {
    return new ClipTokenizer({ ...this.opts, embeddings });
  }

  /** Padded model input: BOS + the first maxLength − 2 tokens + EOS, then pad to maxLength. */
  encode(text: string): number[] {
    const tokens = this.tokenize(text);
    const ids = [this.bosId, ...tokens.slice(0, this.maxLength - 2), this.eosId];
    while (ids.length < this.maxLength) ids.push(this.padId);
    return ids;
  }

  /** All token ids of `text`, without BOS/EOS, padding or truncation. */
  tokenize(text: string): number[] {
    if (typeof text !== "string") throw new InputError(`prompt must be a string (got ${typeof text})`);
    const ids: number[] = [];
    const pieces = this.addedSplit === undefined ? [text] : text.split(this.addedSplit);
    pieces.forEach((piece, i) => {
      // split() with a capture group: odd pieces are the added tokens themselves.
      if (i % 2 === 1) ids.push(this.addedIds.get(piece) ?? this.eosId);
      else if (piece !== "") {
        for (const m of cleanText(piece, this.cleanup).matchAll(WORD)) this.pushWord(m[0], ids);
      }
    });
    return this.matcher === undefined ? ids : this.matcher.replace(ids);
  }

  /** Ids back to text: `</w>` ends a word; invalid UTF-8 becomes U+FFFD; ends are trimmed. */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    const parts: string[] = [];
    let run: number[] = [];
    const flush = (): void => {
      if (run.length > 0) parts.push(this.decodeRun(run));
      run = [];
    };
    for (const id of ids) {
      const emb = this.matcher?.label(id);
      if (emb !== undefined) {
        flush();
        if (emb.first) parts.push(emb.name);
        continue;
      }
      const token = this.idToToken(id);
      if (token === undefined) {
        throw new InputError(`token id ${id} is not in the vocabulary (ids 0…${this.idToTokenTable.length - 1})`);
      }
      if (!this.isSpecial(token, id)) run.push(id);
      else if (!opts.skipSpecialTokens) {
        flush();
        parts.push(token);
      }
    }
    flush();
    return parts.join(" ");
  }

  /** The id of a vocabulary token (e.g. "cat</w>"), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** The vocabulary token of an id (an embedding's id gives its name), or undefined. */
  idToToken(id: number): string | undefined {
    return this.idToTokenTable[id] ?? this.matcher?.label(id)?.name;
  }

  /** Number of ids of the base vocabulary (one more than its largest id); embedding ids lie beyond. */
  get vocabSize(): number {
    return this.idToTokenTable.length;
  }

  private isSpecial(token: string, id: number): boolean {
    return id === this.bosId || id === this.eosId || id === this.padId || this.addedIds.has(token);
  }

  private decodeRun(ids: readonly number[]): string {
    const text = ids.map((id) => this.idToTokenTable[id] ?? "").join("");
    const bytes = Uint8Array.from(text, (c) => this.byteOfChar.get(c) ?? 0x3f);
    return new TextDecoder().decode(bytes).replaceAll("</w>", " ").trim();
  }

  private pushWord(word: string, ids: number[]): void {
    let wordIds = this.cache.get(word);
    if (wordIds === undefined) {
      wordIds = this.bpeIds(word);
      if (this.cache.size >= MAX_CACHE) this.cache.clear();
      this.cache.set(word, wordIds);
    }
    for (const id of wordIds) ids.push(id);
  }

  private bpeIds(word: string): number[] {
    // CLIP's BPE keeps the two special tokens whole; an unknown token maps to unk (= eos).
    if (word === START || word === END) return [this.vocab.get(word) ?? this.eosId];
    const symbols = Array.from(this.utf8.encode(word), (b) => this.byteChars[b] ?? "");
    const last = symbols.length - 1;
    symbols[last] = `${symbols[last] ?? ""}</w>`;
    return this.bpe(symbols).map((s) => this.vocab.get(s) ?? this.eosId);
  }

  // Repeatedly merges every occurrence, left to right, of the adjacent pair with the lowest rank.
  private bpe(word: string[]): string[] {
    let symbols = word;
    while (symbols.length > 1) {
      let best = Infinity;
      let first = "";
      let second = "";
      for (let i = 0; i + 1 < symbols.length; i++) {
        const a = symbols[i] ?? "";
        const b = symbols[i + 1] ?? "";
        const rank = this.ranks.get(`${a} ${b}`);
        if (rank !== undefined && rank < best) [best, first, second] = [rank, a, b];
      }
      if (best === Infinity) break;
      const merged: string[] = [];
      for (let i = 0; i < symbols.length; i++) {
        const s = symbols[i] ?? "";
        if (s === first && symbols[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else merged.push(s);
      }
      symbols = merged;
    }
    return symbols;
  }

  private checkMerges(merges: readonly string[]): void {
    for (const c of this.byteChars) {
      if (!this.vocab.has(c) || !this.vocab.has(c + "</w>")) {
        throw new ConfigError(`tokenizer vocabulary lacks the byte token ${JSON.stringify(c)} (or with </w>); is it a CLIP vocab.json?`);
      }
    }
    merges.forEach((merge, rank) => {
      const parts = merge.split(" ");
      if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
        throw new ConfigError(`tokenizer merge ${rank} must be two tokens separated by one space (got ${JSON.stringify(merge)})`);
      }
      if (!this.vocab.has(parts.join(""))) {
        throw new ConfigError(`tokenizer merge ${rank} (${JSON.stringify(merge)}) makes a token missing from the vocabulary`);
      }
      if (!this.ranks.has(merge)) this.ranks.set(merge, rank);
    });
  }

  private resolve(ref: TokenRef, what: string): number {
    const id = typeof ref === "number" ? ref : this.vocab.get(ref);
    if (id === undefined || this.idToTokenTable[id] === undefined) {
      throw new ConfigError(`tokenizer ${what} token ${JSON.stringify(ref)} is not in the vocabulary; give a token string or id that is`);
    }
    return id;
  }
}

function toMap(vocab: ReadonlyMap<string, number> | Readonly<Record<string, number>>): ReadonlyMap<string, number> {
  return isMap(vocab) ? vocab : new Map(Object.entries(vocab));
}

function isMap(v: ReadonlyMap<string, number> | Readonly<Record<string, number>>): v is ReadonlyMap<string, number> {
  return v instanceof Map;
}

// One regex matching any added token, longest first so that a token never loses to its prefix.
function addedTokenPattern(tokens: readonly string[]): RegExp | undefined {
  if (tokens.length === 0) return undefined;
  const sorted = [...tokens].sort((a, b) => b.length - a.length);
  return new RegExp(`(${sorted.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`);
}

/** The words CLIP's BPE runs on: the cleaned text split by CLIP's pattern (to learn a vocabulary from captions). */
export function clipWords(text: string, cleanup: TextCleanup = "ftfy"): string[] {
  return Array.from(cleanText(text, cleanup).matchAll(WORD), (m) => m[0]);
}
