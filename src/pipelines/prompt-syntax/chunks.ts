/**
 * Weighted prompt → 77-token chunks, as A1111's `FrozenCLIPEmbedderWithCustomWords.tokenize_line`
 * ([modules/sd_hijack_clip.py](https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/00e09382cd85c77ac35545c7264855823dfc2eb1/modules/sd_hijack_clip.py)):
 * 75 prompt tokens per chunk plus BOS/EOS, `BREAK` starts a new chunk, and a chunk that
 * fills up within `commaPaddingBacktrack` tokens after a comma moves the words after that
 * comma to the next chunk.
 */

import type { WeightedText } from "./attention.js";

/** What chunking needs of a tokenizer (ClipTokenizer fits): raw ids without BOS/EOS. */
export interface PromptTokenizer {
  tokenize(text: string): number[];
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number;
}

/** A textual-inversion embedding found in the token stream by `findEmbedding`. */
export interface EmbeddingMatch {
  /** The embedding's name (its file name). */
  readonly name: string;
  /** How many prompt tokens spell its name. */
  readonly tokenCount: number;
  /** How many vectors it puts into the chunk. */
  readonly vectors: number;
}

/** Where an embedding's vectors replace the placeholder ids (0) of a chunk. */
export interface ChunkFix {
  /** Index in `ids` (BOS is index 0) of the first placeholder. */
  readonly offset: number;
  readonly embedding: EmbeddingMatch;
}

/** One text-encoder input: 77 ids and the weight of each (1 for BOS, EOS and padding). */
export interface PromptChunk {
  readonly ids: number[];
  readonly weights: number[];
  readonly fixes: ChunkFix[];
}

/** Options of `tokenizeWeighted`; the defaults are A1111's. */
export interface ChunkOptions {
  /** Prompt tokens per chunk, BOS/EOS not counted. Default 75. */
  readonly chunkLength?: number;
  /** A1111's `comma_padding_backtrack`; 0 turns it off. Default 20. */
  readonly commaPaddingBacktrack?: number;
  /** Id of "," as a word. Default: the tokenizer's only id for ",". */
  readonly commaId?: number;
  /** An embedding whose name starts at `ids[position]`, if any. Default: none. */
  readonly findEmbedding?: (ids: readonly number[], position: number) => EmbeddingMatch | undefined;
}

/** Chunks of one prompt, and A1111's token count (all chunks full except the last). */
export interface WeightedTokens {
  readonly chunks: PromptChunk[];
  readonly tokenCount: number;
}

interface OpenChunk {
  ids: number[];
  weights: number[];
  fixes: ChunkFix[];
}

const emptyChunk = (): OpenChunk => ({ ids: [], weights: [], fixes: [] });

/** Tokenizes parsePromptAttention's runs into 77-token chunks with per-token weights. */
export function tokenizeWeighted(tok: PromptTokenizer, parsed: readonly WeightedText[], opts: ChunkOptions = {}): WeightedTokens {
  const size = opts.chunkLength ?? 75;
  const backtrack = opts.commaPaddingBacktrack ?? 20;
  const comma = opts.commaId ?? commaIdOf(tok);
  const chunks: PromptChunk[] = [];
  let chunk = emptyChunk();
  let tokenCount = 0;
  let lastComma = -1;

  const nextChunk = (isLast = false): void => {
    tokenCount += isLast ? chunk.ids.length : size;
    chunks.push(closeChunk(tok, chunk, size));
    chunk = emptyChunk();
    lastComma = -1;
  };

  for (const [text, weight] of parsed) {
    if (text === "BREAK" && weight === -1) {
      nextChunk();
      continue;
    }
    const ids = tok.tokenize(text);
    let position = 0;
    while (position < ids.length) {
      const id = ids[position] as number;
      if (id === comma) lastComma = chunk.ids.length;
      else if (backtrack !== 0 && chunk.ids.length === size && lastComma !== -1 && size - lastComma <= backtrack) {
        // The chunk is full and a comma is near its end: the words after it move on.
        const moved = splitChunk(chunk, lastComma + 1);
        nextChunk();
        chunk = moved;
      }
      if (chunk.ids.length === size) nextChunk();
      const embedding = opts.findEmbedding?.(ids, position);
      if (embedding === undefined) {
        chunk.ids.push(id);
        chunk.weights.push(weight);
        position++;
        continue;
      }
      if (chunk.ids.length + embedding.vectors > size) nextChunk();
      chunk.fixes.push({ offset: chunk.ids.length, embedding });
      for (let v = 0; v < embedding.vectors; v++) {
        chunk.ids.push(0);
        chunk.weights.push(weight);
      }
      position += embedding.tokenCount;
    }
  }
  if (chunk.ids.length > 0 || chunks.length === 0) nextChunk(true);
  return { chunks, tokenCount };
}

// The tail of `chunk` from `at` on, removed from it. A1111 leaves the embedding fixes of moved
// tokens behind in the old chunk (pointing at padding); they move with their tokens here.
function splitChunk(chunk: OpenChunk, at: number): OpenChunk {
  const moved: OpenChunk = { ids: chunk.ids.splice(at), weights: chunk.weights.splice(at), fixes: [] };
  moved.fixes = chunk.fixes.filter((f) => f.offset >= at).map((f) => ({ ...f, offset: f.offset - at }));
  chunk.fixes = chunk.fixes.filter((f) => f.offset < at);
  return moved;
}

// Pads to `size` with EOS and adds BOS/EOS; where the pad id differs (SD2), everything after
// the first EOS becomes pad, as A1111's `process_tokens` does.
function closeChunk(tok: PromptTokenizer, chunk: OpenChunk, size: number): PromptChunk {
  const ids = [tok.bosId, ...chunk.ids];
  const weights = [1.0, ...chunk.weights];
  while (ids.length < size + 2) {
    ids.push(tok.eosId);
    weights.push(1.0);
  }
  if (tok.padId !== tok.eosId) {
    const end = ids.indexOf(tok.eosId);
    for (let i = end + 1; i < ids.length; i++) ids[i] = tok.padId;
  }
  return { ids, weights, fixes: chunk.fixes.map((f) => ({ ...f, offset: f.offset + 1 })) };
}

// A1111 looks up ",</w>" in the vocabulary; tokenizing "," gives that id for CLIP.
function commaIdOf(tok: PromptTokenizer): number {
  const ids = tok.tokenize(",");
  return ids.length === 1 ? (ids[0] as number) : -1;
}
