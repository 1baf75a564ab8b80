/**
 * Learning a byte-level BPE vocabulary from captions (Sennrich et al. 2016, §3.2) in CLIP's format:
 * words as UTF-8 bytes mapped to printable characters, `</w>` on each word's last symbol, merges
 * ranked by frequency, so the result loads unchanged through ClipTokenizer.
 */
import { bytesToUnicode, clipVocabFromMerges, clipWords } from "../models/clip/tokenizer.js";

/** A learnt vocabulary: merges (best first) and token → id (bytes, merges, then BOS and EOS). */
export interface LearntBpe {
  readonly merges: string[];
  readonly vocab: Map<string, number>;
  /** Rows the embedding needs: one more than the largest id. */
  readonly vocabSize: number;
}

/** Learns up to `numMerges` merges; stops early when no pair occurs twice. */
export function learnBpe(corpus: Iterable<string>, numMerges: number): LearntBpe {
  const { bytes, chars } = bytesToUnicode();
  const charOf = new Map(bytes.map((b, i) => [b, chars[i] ?? ""]));
  const utf8 = new TextEncoder();
  const freq = new Map<string, number>();
  for (const text of corpus) for (const w of clipWords(text)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const words = [...freq].map(([w, n]) => {
    const syms = Array.from(utf8.encode(w), (b) => charOf.get(b) ?? "");
    syms[syms.length - 1] += "</w>";
    return { syms, n };
  });
  const merges: string[] = [];
  while (merges.length < numMerges) {
    const counts = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const p = `${syms[i]} ${syms[i + 1]}`;
        counts.set(p, (counts.get(p) ?? 0) + n);
      }
    }
    let best = "";
    let bestN = 1;
    for (const [p, n] of counts) if (n > bestN || (n === bestN && best !== "" && p < best)) [best, bestN] = [p, n];
    if (best === "") break;
    merges.push(best);
    const [a, b] = best.split(" ") as [string, string];
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.syms[i] ?? "");
      }
      w.syms = out;
    }
  }
  const vocab = clipVocabFromMerges(merges);
  return { merges, vocab, vocabSize: Math.max(...vocab.values()) + 1 };
}
