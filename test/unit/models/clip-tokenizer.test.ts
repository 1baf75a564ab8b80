/** CLIP BPE tokenizer against the transformers / OpenAI CLIP goldens in ../shared/golden. */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { CheckpointError } from "../../../src/errors.js";
import { CLIP_BPE_GZ, defaultTokenizerPath, loadTokenizerFiles } from "../../../src/io/tokenizer-files.js";
import { ClipTokenizer } from "../../../src/models/clip/tokenizer.js";
import { loadTokenizer } from "../../../src/pipelines/load-tokenizer.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const GOLDEN = `${GOLDEN_DIR}/`;

interface Variant {
  input_ids?: number[];
  untruncated_ids: number[];
  tokens?: string[];
}
interface GoldenPrompt {
  prompt: string;
  hf_ftfy: Required<Variant>;
  hf_noftfy: Required<Variant>;
  openai: Variant;
  agree_hf_ftfy_vs_openai: boolean;
}

const golden = JSON.parse(readFileSync(join(GOLDEN, "tokenizer/clip_tokenizer_golden.json"), "utf8")) as {
  prompts: GoldenPrompt[];
};

/** Asserts equal id lists, naming the prompt and the first index that differs. */
function assertIds(got: readonly number[], want: readonly number[], what: string): void {
  const n = Math.max(got.length, want.length);
  for (let i = 0; i < n; i++) {
    if (got[i] !== want[i]) {
      assert.fail(`${what}: first difference at index ${i}: got ${got[i]}, want ${want[i]} ` +
        `(lengths ${got.length} / ${want.length})\n  got  ${got.join(",")}\n  want ${want.join(",")}`);
    }
  }
}

/** Reads one I64 tensor with a minimal safetensors header parser, as numbers per row. */
function readI64Rows(file: string, name: string): number[][] {
  const buf = readFileSync(file);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString("utf8")) as Record<
    string, { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const info = header[name];
  assert.ok(info && info.dtype === "I64" && info.shape.length === 2, `${name}: expected a 2-D I64 tensor`);
  const [rows = 0, cols = 0] = info.shape;
  const start = 8 + headerLen + info.data_offsets[0];
  return Array.from({ length: rows }, (_, r) =>
    Array.from({ length: cols }, (_, c) => Number(buf.readBigInt64LE(start + 8 * (r * cols + c)))));
}

describe("ClipTokenizer on the golden prompts", () => {
  let tok: ClipTokenizer;
  let basic: ClipTokenizer;
  before(async () => {
    tok = await loadTokenizer();
    const files = await loadTokenizerFiles(defaultTokenizerPath());
    basic = new ClipTokenizer({ ...files, cleanup: "basic" });
  });

  test("hf_ftfy padded input_ids (what the SD pipeline feeds) match", () => {
    for (const p of golden.prompts) assertIds(tok.encode(p.prompt), p.hf_ftfy.input_ids, JSON.stringify(p.prompt));
  });

  test("hf_ftfy untruncated ids and token strings match", () => {
    for (const p of golden.prompts) {
      const ids = [tok.bosId, ...tok.tokenize(p.prompt), tok.eosId];
      assertIds(ids, p.hf_ftfy.untruncated_ids, JSON.stringify(p.prompt));
      assert.deepEqual(ids.map((id) => tok.idToToken(id)), p.hf_ftfy.tokens, JSON.stringify(p.prompt));
    }
  });

  test("hf_noftfy (BasicTokenizer clean-up) ids match with cleanup: basic", () => {
    for (const p of golden.prompts) {
      assertIds(basic.encode(p.prompt), p.hf_noftfy.input_ids, `noftfy ${JSON.stringify(p.prompt)}`);
      assertIds([basic.bosId, ...basic.tokenize(p.prompt), basic.eosId], p.hf_noftfy.untruncated_ids,
        `noftfy ${JSON.stringify(p.prompt)}`);
    }
  });

  test("openai simple_tokenizer ids match wherever it agrees with hf_ftfy", () => {
    for (const p of golden.prompts.filter((q) => q.agree_hf_ftfy_vs_openai)) {
      assertIds([tok.bosId, ...tok.tokenize(p.prompt), tok.eosId], p.openai.untruncated_ids, JSON.stringify(p.prompt));
    }
  });

  test("long prompts keep 75 tokens between BOS and EOS", () => {
    const long = golden.prompts.find((p) => p.hf_ftfy.untruncated_ids.length > 77);
    assert.ok(long, "the goldens hold a prompt longer than 75 tokens");
    const ids = tok.encode(long.prompt);
    assert.equal(ids.length, 77);
    assert.equal(ids[76], tok.eosId);
    assert.ok(tok.tokenize(long.prompt).length > 75);
  });
});

describe("ClipTokenizer behaviour", () => {
  let tok: ClipTokenizer;
  before(async () => {
    tok = await loadTokenizer();
  });

  test("special fields are SD1.x's", () => {
    assert.deepEqual([tok.bosId, tok.eosId, tok.padId, tok.maxLength], [49406, 49407, 49407, 77]);
    assert.equal(tok.tokenToId("cat</w>"), 2368);
    assert.equal(tok.tokenToId("no such token"), undefined);
    assert.equal(tok.vocabSize, 49408);
  });

  test("literal special tokens in the text map to their ids, in any case", () => {
    const a = tok.tokenToId("a</w>");
    assert.deepEqual(tok.tokenize("a<|endoftext|>a"), [a, 49407, a]);
    assert.deepEqual(tok.tokenize("A <|ENDOFTEXT|> <|startoftext|>"), [a, 49407, 49406]);
  });

  test("ftfy subset: entities, ligatures, full width, quotes, control characters", () => {
    const same = (x: string, y: string): void => assert.deepEqual(tok.tokenize(x), tok.tokenize(y), x);
    same("fish &amp; chips &eacute;t&EACUTE; &#x2019;s &#8220;q&#8221;", "fish & chips été 's \"q\"");
    same("ﬂuﬃest ＬＯＵＤ　ＮＯＩＳＥＳ", "fluffiest loud noises");
    same("a\u0000b\u001b[31mc\ufeff \x92x", "abc 'x");
    // ftfy leaves entities alone in a line that holds "<" (its "auto" HTML mode).
    assert.notDeepEqual(tok.tokenize("<b> &amp;"), tok.tokenize("<b> &"));
  });

  test("decode inverts tokenize for plain text", () => {
    assert.equal(tok.decode(tok.tokenize("a photograph of an astronaut, 4k")), "a photograph of an astronaut , 4 k");
    assert.equal(tok.decode(tok.encode("日本語"), { skipSpecialTokens: true }), "日本語");
    assert.match(tok.decode(tok.encode("hi").slice(0, 4)), /^<\|startoftext\|> hi <\|endoftext\|> <\|endoftext\|>$/);
    assert.throws(() => tok.decode([49408]), /not in the vocabulary/);
  });

  test("the gz merge list gives the same vocabulary and ids as vocab.json + merges.txt", async () => {
    const gz = await loadTokenizer(join(GOLDEN, "clip", CLIP_BPE_GZ));
    assert.equal(gz.vocabSize, tok.vocabSize);
    for (let id = 0; id < tok.vocabSize; id++) assert.equal(gz.idToToken(id), tok.idToToken(id));
    for (const p of golden.prompts) assertIds(gz.encode(p.prompt), tok.encode(p.prompt), JSON.stringify(p.prompt));
  });
});

describe("SD2-style padding with '!' (id 0)", () => {
  const index = JSON.parse(readFileSync(join(GOLDEN, "tiny-sd2/cases/index.json"), "utf8")) as {
    prompts: string[];
    pipeline: { prompt: string; negative_prompt: string; input_ids: number[]; negative_input_ids: number[] };
  };
  let sd2: ClipTokenizer;
  before(async () => {
    sd2 = new ClipTokenizer({ ...(await loadTokenizerFiles(defaultTokenizerPath())), pad: "!" });
  });

  test("pipeline case ids match", () => {
    assert.equal(sd2.padId, 0);
    assertIds(sd2.encode(index.pipeline.prompt), index.pipeline.input_ids, "tiny-sd2 prompt");
    assertIds(sd2.encode(index.pipeline.negative_prompt), index.pipeline.negative_input_ids, "tiny-sd2 negative");
  });

  test("text encoder case ids (I64 safetensors) match", () => {
    const rows = readI64Rows(join(GOLDEN, "tiny-sd2/cases/text_encoder_io.safetensors"), "input_ids");
    index.prompts.forEach((p, i) => assertIds(sd2.encode(p), rows[i] ?? [], `tiny-sd2 text encoder ${JSON.stringify(p)}`));
  });

  test("'!' in a prompt is an added token as in diffusers unless addedTokens says otherwise", async () => {
    const pad = (ids: number[]): number[] => [...ids, ...Array<number>(77 - ids.length).fill(0)];
    assertIds(sd2.encode("! !! !!!"), pad([49406, 0, 0, 0, 0, 0, 0, 49407]), "diffusers");
    const files = await loadTokenizerFiles(defaultTokenizerPath());
    const openClip = new ClipTokenizer({ ...files, pad: 0, addedTokens: ["<|startoftext|>", "<|endoftext|>"] });
    assertIds(openClip.encode("! !! !!!"), pad([49406, 256, 748, 995, 49407]), "open_clip");
  });
});

describe("tokenizer files", () => {
  test("tiny-pipeline and edit cases: tokenizer folders give the recorded ids", async () => {
    const cases = ["tiny-pipeline/cases/euler.json", "tiny-pipeline/cases/euler_a.json",
      "tiny-pipeline/cases/dpmpp_2m_karras.json", "tiny-pipeline/cases/unipc.json",
      "edit/img2img/ddim_s03.json", "edit/inpaint/inpaint9_euler.json"];
    const fromFolder = await loadTokenizer(join(GOLDEN, "tiny-pipeline/tokenizer"));
    const fromModel = await loadTokenizer(join(GOLDEN, "edit/tiny-inpaint"));
    for (const file of cases) {
      const c = JSON.parse(readFileSync(join(GOLDEN, file), "utf8")) as {
        prompt: string; negative_prompt: string; input_ids: number[]; negative_input_ids: number[];
      };
      for (const t of [fromFolder, fromModel]) {
        assertIds(t.encode(c.prompt), c.input_ids, `${file} prompt`);
        assertIds(t.encode(c.negative_prompt), c.negative_input_ids, `${file} negative prompt`);
      }
    }
  });

  test("a folder's tokenizer_config.json sets pad and max length", async () => {
    const files = await loadTokenizerFiles(join(GOLDEN, "tiny-pipeline"));
    assert.equal(files.pad, "<|endoftext|>");
    assert.equal(files.maxLength, 77);
    assert.deepEqual(files.addedTokens, ["<|startoftext|>", "<|endoftext|>"]);
  });

  test("the shipped vocabulary is found from the package root", () => {
    const dir = defaultTokenizerPath();
    for (const name of ["vocab.json", "merges.txt", "LICENSE"]) assert.ok(existsSync(join(dir, name)), name);
  });

  test("missing or broken files give a CheckpointError saying what was expected", async () => {
    await assert.rejects(loadTokenizer("/no/such/folder"),
      (e: unknown) => e instanceof CheckpointError && /not found.*expected a folder with vocab\.json/.test(e.message));
    const dir = await mkdtemp(join(tmpdir(), "sdts-tok-"));
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /no tokenizer files/.test(e.message));
    await writeFile(join(dir, "vocab.json"), "{ not json");
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /has no merges\.txt/.test(e.message));
    await writeFile(join(dir, "merges.txt"), "#version: 0.2\na b\n");
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /not valid JSON/.test(e.message));
    await writeFile(join(dir, "vocab.json"), '{"a": 0}');
    await assert.rejects(loadTokenizer(dir), (e: unknown) => e instanceof CheckpointError && /lacks the byte token/.test(e.message));
  });
});
