/** A1111 prompt syntax against ../shared/golden/edit/prompt_syntax.json, plus chunking and emphasis. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { InputError, ShapeError } from "../../../src/errors.js";
import { loadTokenizer } from "../../../src/pipelines/load-tokenizer.js";
import {
  applyEmphasis,
  multicondSubprompts,
  parsePromptAttention,
  promptSchedules,
  tokenizeWeighted,
  type PromptTokenizer,
  type WeightedText,
} from "../../../src/pipelines/prompt-syntax/index.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const GOLDEN = `${GOLDEN_DIR}/edit/prompt_syntax.json`;

interface GoldenCase {
  prompt: string;
  attention: WeightedText[] | null;
  schedules_20: [number, string][] | null;
  multicond_subprompts: [string, number][] | null;
  errors?: string | string[] | null;
}
const golden = JSON.parse(readFileSync(GOLDEN, "utf8")) as { steps: number; prompts: GoldenCase[] };

/** Equal texts, weights within 1e-12 relative. */
function assertWeighted(got: readonly (readonly [string, number])[], want: readonly (readonly [string, number])[], what: string): void {
  assert.deepEqual(got.map(([t]) => t), want.map(([t]) => t), `${what}: texts`);
  got.forEach(([, w], i) => {
    const v = (want[i] as readonly [string, number])[1];
    assert.ok(Math.abs(w - v) <= 1e-12 * Math.abs(v), `${what}: weight ${i} is ${w}, want ${v}`);
  });
}

describe("A1111 prompt syntax on the golden prompts", () => {
  for (const c of golden.prompts) {
    test(JSON.stringify(c.prompt), () => {
      if (c.attention === null) assert.throws(() => parsePromptAttention(c.prompt), InputError);
      else assertWeighted(parsePromptAttention(c.prompt), c.attention, "attention");
      if (c.schedules_20 === null) assert.throws(() => promptSchedules(c.prompt, golden.steps), InputError);
      else assert.deepEqual(promptSchedules(c.prompt, golden.steps), c.schedules_20);
      if (c.multicond_subprompts === null) assert.throws(() => multicondSubprompts(c.prompt), InputError);
      else assertWeighted(multicondSubprompts(c.prompt), c.multicond_subprompts, "multicond");
    });
  }
});

describe("parsePromptAttention edge cases (checked against A1111 with lark 1.1.2)", () => {
  test("weights are float64 products applied in closing order", () => {
    assert.deepEqual(parsePromptAttention("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))))."), [
      ["a ", 1.0], ["house", 1.5730000000000004], [" ", 1.1], ["on", 1.0], [" a ", 1.1],
      ["hill", 0.55], [", sun, ", 1.1], ["sky", 1.4641000000000006], [".", 1.0],
    ]);
  });
  test("a weight Python's float() rejects raises, as A1111's ValueError", () => {
    assert.throws(() => parsePromptAttention("(a:1.2.3)"), InputError);
    assert.throws(() => parsePromptAttention("(a:.)"), InputError);
    // Without an open round bracket the weight is only text, never converted.
    assert.deepEqual(parsePromptAttention("a:1.2.3)"), [["a:1.2.3)", 1.0]]);
  });
  test("BREAK uses Python's Unicode word boundaries and whitespace", () => {
    assert.deepEqual(parsePromptAttention("東京BREAK"), [["東京BREAK", 1.0]]);
    assert.deepEqual(parsePromptAttention("a\u3000BREAK\x1cb"), [["a", 1.0], ["BREAK", -1], ["b", 1.0]]);
    assert.deepEqual(parsePromptAttention("(a BREAK b)"), [["a", 1.1], ["BREAK", -1.1], ["b", 1.1]]);
  });
  test("a lone backslash vanishes; escapes keep their character", () => {
    assert.deepEqual(parsePromptAttention("a\\b \\\\ \\)"), [["ab \\ )", 1.0]]);
  });
});

describe("promptSchedules edge cases (checked against A1111 with lark 1.1.2)", () => {
  const g = (p: string): [number, string][] => promptSchedules(p, 10);
  test("editing forms, fractions, nesting", () => {
    assert.deepEqual(g("a [b:3]"), [[3, "a "], [10, "a b"]]);
    assert.deepEqual(g("a [b: 3]"), [[3, "a "], [10, "a b"]]);
    assert.deepEqual(g("a [[[b]]:2]"), [[2, "a "], [10, "a [[b]]"]]);
    assert.deepEqual(g("[(a:2):3]"), [[3, ""], [10, "(a:2)"]]);
    assert.deepEqual(g("a [b : c : 1] d"), [[1, "a b  d"], [10, "a  c  d"]]);
    assert.deepEqual(g("a[b:[c:d:2]:1]e"), [[1, "abe"], [2, "ace"], [10, "ade"]]);
    assert.deepEqual(g("a [b:.5] c"), [[5, "a  c"], [10, "a b c"]]);
    assert.deepEqual(g("[a:b:0.999]"), [[9, "a"], [10, "b"]]);
    assert.deepEqual(g("[a:b:-5]"), [[-50, "a"], [10, "b"]]);
    assert.deepEqual(g("[a:b:1e3]"), [[10, "a"]]);
  });
  test("stray brackets stay text; a bad group is text too", () => {
    assert.deepEqual(g("a [unbalanced"), [[10, "a [unbalanced"]]);
    assert.deepEqual(g("((a][:b:c [d:3]"), [[3, "((a][:b:c "], [10, "((a][:b:c d"]]);
    assert.deepEqual(g("[a:b:5 ]"), [[10, "[a:b:5 ]"]]);
    assert.deepEqual(g("a [{b|d{:.5] c"), [[10, "a [{b|d{:.5] c"]]);
  });
  test("alternation takes the first element of the chosen option", () => {
    assert.deepEqual(g("[a|(b:1.1)]").slice(0, 3), [[1, "a"], [2, "(b:1.1)"], [3, "a"]]);
    assert.deepEqual(g("[(x) y|z]").slice(0, 2), [[1, "(x)"], [2, "z"]]);
    assert.deepEqual(g("[  a|b]").slice(0, 2), [[1, "  a"], [2, "b"]]);
  });
  test("prompts the grammar rejects come back whole", () => {
    assert.deepEqual(g("a | b"), [[10, "a | b"]]);
    assert.deepEqual(g("(a|b)"), [[10, "(a|b)"]]);
    assert.deepEqual(g("trailing \\"), [[10, "trailing \\"]]);
    assert.deepEqual(g("a\\\nb"), [[10, "a\\\nb"]]);
  });
  test("where A1111 raises, so does this", () => {
    assert.throws(() => g("[|b]"), InputError); // empty alternative: StopIteration
    assert.throws(() => g("x [a:b:1e400]"), InputError); // OverflowError
    assert.throws(() => g("[[a:-1e400]|b]"), InputError);
  });
});

describe("multicondSubprompts", () => {
  test("splits at the word AND with trailing weights", () => {
    assert.deepEqual(multicondSubprompts("a cat:1.5 AND dog : -0.5 AND AND ANDROID"), [["a cat", 1.5], [" dog", -0.5], [" ", 1.0], [" ANDROID", 1.0]]);
    assert.deepEqual(multicondSubprompts("a\nb:2"), [["a\nb:2", 1.0]]);
    assert.deepEqual(multicondSubprompts("x:0.5AND y"), [["x:0.5AND y", 1.0]]); // no word boundary in "5AND"
  });
});

// One id per word, "," its own token: ids 1000 + word index, "," = 267.
const fake = (padId = 49407): PromptTokenizer => ({
  bosId: 49406,
  eosId: 49407,
  padId,
  tokenize: (text) => text.split(/(,)|\s+/).filter((w) => w !== undefined && w !== "").map((w) => (w === "," ? 267 : 1000 + Number(w.slice(1)))),
});
const words = (from: number, to: number): string => Array.from({ length: to - from }, (_, i) => `w${from + i}`).join(" ");
const wordIds = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => 1000 + from + i);
const eos = (n: number): number[] => new Array<number>(n).fill(49407);

describe("tokenizeWeighted (A1111 tokenize_line)", () => {
  test("a 100-token prompt gives 2 chunks of 77", () => {
    const { chunks, tokenCount } = tokenizeWeighted(fake(), [[words(0, 100), 1.0]]);
    assert.equal(tokenCount, 100);
    assert.deepEqual(chunks.map((c) => c.ids), [
      [49406, ...wordIds(0, 75), 49407],
      [49406, ...wordIds(75, 100), ...eos(51)],
    ]);
    assert.ok(chunks.every((c) => c.weights.length === 77 && c.weights.every((w) => w === 1)));
  });
  test("weights follow their tokens; BOS, EOS and padding get 1", () => {
    const { chunks } = tokenizeWeighted(fake(), [["w1 w2", 1.0], ["w3", 1.1]]);
    assert.deepEqual(chunks[0]?.weights.slice(0, 5), [1, 1, 1, 1.1, 1]);
  });
  test("BREAK starts a new chunk, even an empty one", () => {
    const parsed = parsePromptAttention("w1 w2 BREAK w3");
    const { chunks, tokenCount } = tokenizeWeighted(fake(), parsed);
    assert.deepEqual(chunks.map((c) => c.ids.slice(0, 4)), [[49406, 1001, 1002, 49407], [49406, 1003, 49407, 49407]]);
    assert.equal(tokenCount, 76);
    assert.deepEqual(tokenizeWeighted(fake(), parsePromptAttention("BREAK w1")).chunks.length, 2);
    assert.deepEqual(tokenizeWeighted(fake(), [["", 1.0]]).chunks.map((c) => c.ids), [[49406, ...eos(76)]]);
  });
  test("a chunk filling within 20 tokens after a comma moves the words after it", () => {
    // 70 words, a comma at index 70, then 10 words: the 4 words after the comma move on.
    const { chunks } = tokenizeWeighted(fake(), [[`${words(0, 70)} , ${words(70, 80)}`, 1.0]]);
    assert.deepEqual(chunks.map((c) => c.ids), [
      [49406, ...wordIds(0, 70), 267, ...eos(5)],
      [49406, ...wordIds(70, 80), ...eos(66)],
    ]);
  });
  test("a comma further back than 20 tokens does not", () => {
    const { chunks } = tokenizeWeighted(fake(), [[`${words(0, 50)} , ${words(50, 80)}`, 1.0]]);
    assert.deepEqual(chunks[0]?.ids, [49406, ...wordIds(0, 50), 267, ...wordIds(50, 74), 49407]);
    assert.deepEqual(tokenizeWeighted(fake(), [[`${words(0, 70)} , ${words(70, 80)}`, 1.0]], { commaPaddingBacktrack: 0 }).chunks[0]?.ids.length, 77);
  });
  test("with a pad id other than EOS (SD2) everything after the first EOS is pad", () => {
    const { chunks } = tokenizeWeighted(fake(0), [["w1", 1.0]]);
    assert.deepEqual(chunks[0]?.ids, [49406, 1001, 49407, ...new Array<number>(74).fill(0)]);
  });
  test("embeddings put placeholder ids and a fix at their offset", () => {
    const findEmbedding = (ids: readonly number[], p: number) => (ids[p] === 1005 ? { name: "emb", tokenCount: 1, vectors: 3 } : undefined);
    const { chunks } = tokenizeWeighted(fake(), [["w1 w5 w2", 1.2]], { findEmbedding });
    assert.deepEqual(chunks[0]?.ids.slice(0, 7), [49406, 1001, 0, 0, 0, 1002, 49407]);
    assert.deepEqual(chunks[0]?.fixes.map((f) => f.offset), [2]);
  });
  test("with the CLIP tokenizer: 2 chunks for a long prompt, comma id 267", async () => {
    const tok = await loadTokenizer();
    const text = Array.from({ length: 40 }, (_, i) => `cat${i % 10}`).join(" ");
    const { chunks } = tokenizeWeighted(tok, parsePromptAttention(`${text}, (dog:1.5)`));
    assert.equal(chunks.length, 2);
    assert.ok(chunks.every((c) => c.ids.length === 77 && c.ids[0] === tok.bosId && c.ids[76] === tok.eosId));
    assert.ok(chunks.flatMap((c) => c.weights).includes(1.5));
  });
});

describe("applyEmphasis (A1111 Original)", () => {
  test("hand-computed: [[1,2],[3,4]] with weights [1,2] keeps mean 2.5", () => {
    const out = applyEmphasis(Float32Array.from([1, 2, 3, 4]), [1, 2, 2], [[1, 2]]);
    const r = 2.5 / 4.25;
    assert.deepEqual([...out], [1, 2, 6, 8].map((v) => Math.fround(v * Math.fround(r))));
  });
  test("each chunk's mean (and the tensor's) is kept; weight 1 changes nothing", () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 0.5;
    const [k, T, D] = [2, 77, 8];
    const z = Float32Array.from({ length: k * T * D }, rnd);
    const w = Array.from({ length: k }, () => Array.from({ length: T }, () => 0.5 + Math.abs(rnd())));
    const out = applyEmphasis(z, [k, T, D], w);
    const mean = (a: Float32Array, from: number, to: number): number => a.subarray(from, to).reduce((s, v) => s + v, 0) / (to - from);
    for (let c = 0; c < k; c++) {
      const [a, b] = [c * T * D, (c + 1) * T * D];
      assert.ok(Math.abs(mean(out, a, b) - mean(z, a, b)) <= 1e-6 * Math.abs(mean(z, a, b)), `chunk ${c}`);
    }
    assert.ok(Math.abs(mean(out, 0, z.length) - mean(z, 0, z.length)) <= 1e-6 * Math.abs(mean(z, 0, z.length)));
    assert.deepEqual(applyEmphasis(z, [k, T, D], w.map((r) => r.map(() => 1))), z);
  });
  test("shape mismatches throw ShapeError", () => {
    assert.throws(() => applyEmphasis(new Float32Array(3), [1, 2, 2], [[1, 1]]), ShapeError);
    assert.throws(() => applyEmphasis(new Float32Array(4), [1, 2, 2], [[1]]), ShapeError);
  });
});
