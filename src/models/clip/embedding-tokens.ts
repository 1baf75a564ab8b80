/**
 * Textual-inversion tokens in the tokenizer: an embedding is used by writing its name in the
 * prompt. Matching is on token ids, as AUTOMATIC1111 does it (modules/textual_inversion,
 * `EmbeddingDatabase.find_embedding_at_position`): the name is tokenized like prompt text and
 * each place where its token sequence occurs becomes the embedding's own ids, longest name first.
 * So matching ignores case and stands on word boundaries the way CLIP's pre-tokenizer splits words.
 */

/** One embedding as the tokenizer sees it: its name and the ids of its vectors (past the base vocabulary). */
export interface EmbeddingToken {
  readonly name: string;
  /** One id per vector, e.g. vocabSize + j: rows appended to the text encoder's token table. */
  readonly ids: readonly number[];
}

interface Candidate {
  readonly pattern: readonly number[];
  readonly token: EmbeddingToken;
}

/** Replaces embedding names (as token-id sequences) with their vector ids. */
export class EmbeddingMatcher {
  private readonly byFirst = new Map<number, Candidate[]>();
  private readonly labels = new Map<number, { name: string; first: boolean }>();

  /** `tokenize` must be the plain tokenizer (without embeddings). Names that tokenize to nothing are skipped. */
  constructor(tokens: readonly EmbeddingToken[], tokenize: (text: string) => number[]) {
    for (const token of tokens) {
      const pattern = tokenize(token.name);
      const head = pattern[0];
      if (head === undefined || token.ids.length === 0) continue;
      const list = this.byFirst.get(head) ?? [];
      list.push({ pattern, token });
      list.sort((a, b) => b.pattern.length - a.pattern.length);
      this.byFirst.set(head, list);
      token.ids.forEach((id, j) => this.labels.set(id, { name: token.name, first: j === 0 }));
    }
  }

  /** `ids` with every occurrence of an embedding's name replaced by its ids. */
  replace(ids: readonly number[]): number[] {
    const out: number[] = [];
    for (let i = 0; i < ids.length; ) {
      const hit = this.byFirst.get(ids[i] ?? -1)?.find((c) => c.pattern.every((t, j) => ids[i + j] === t));
      if (hit === undefined) {
        out.push(ids[i] ?? 0);
        i++;
      } else {
        out.push(...hit.token.ids);
        i += hit.pattern.length;
      }
    }
    return out;
  }

  /** The embedding name of an id, and whether it is the embedding's first vector; undefined for other ids. */
  label(id: number): { name: string; first: boolean } | undefined {
    return this.labels.get(id);
  }
}
