/** The BPE learner and the emoji captions (issue #5), without the emoji packages. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { findPackageDir } from "../../../src/io/emoji-packages.js";
import { ClipTokenizer } from "../../../src/models/clip/tokenizer.js";
import { learnBpe } from "../../../src/train/bpe.js";
import { EMOJI_SETS, emojiCaptions, emojiRecords, skinToneWords } from "../../../src/train/datasets/emoji.js";

test("learnBpe: merges frequent pairs; ClipTokenizer reads its vocabulary and round-trips text", () => {
  const corpus = ["grinning face", "grinning cat face", "red apple", "green apple", "apple, noto", "cat face, twemoji"];
  const bpe = learnBpe(corpus, 40);
  assert.ok(bpe.merges.length > 0 && bpe.merges.length <= 40);
  const tok = new ClipTokenizer({ vocab: bpe.vocab, merges: bpe.merges });
  assert.equal(tok.vocabSize, bpe.vocabSize);
  assert.ok(tok.tokenize("apple").length < 5, "a frequent word becomes few tokens");
  assert.equal(tok.decode(tok.encode("grinning cat face, noto"), { skipSpecialTokens: true }), "grinning cat face , noto");
  assert.equal(tok.decode(tok.encode("zebra"), { skipSpecialTokens: true }), "zebra", "unseen words fall back to bytes");
});

test("emoji captions: names, style word, skin tones; one record per image incl. skin variations", () => {
  const wave = {
    name: "WAVING HAND SIGN", short_name: "wave", short_names: ["wave"], category: "People & Body", subcategory: "hand-fingers-open", image: "1f44b.png", has_img_google: true, has_img_twitter: true,
    skin_variations: { "1F3FB": { image: "1f44b-1f3fb.png", has_img_google: true, has_img_twitter: false } },
  };
  const recs = emojiRecords([wave], EMOJI_SETS[0]);
  assert.deepEqual(recs.map((r) => r.name), ["noto-1f44b", "noto-1f44b-1f3fb"]);
  assert.deepEqual(recs.map((r) => r.weight), [0.5, 0.5], "an emoji and its skin tones share one draw weight");
  assert.equal(emojiRecords([wave], EMOJI_SETS[1]).length, 1);
  const caps = emojiCaptions(wave, "twemoji", skinToneWords("1F3FB"));
  assert.ok(caps.length >= 4);
  assert.ok(caps.includes("waving hand sign with light skin tone"));
  assert.ok(caps.some((c) => c.includes("twemoji")));
  assert.ok(caps.some((c) => c.includes("wave")));
  assert.equal(skinToneWords("1F3FB-1F3FF"), "light and dark");
});

test("the emoji dataset command says how to install the packages when they are missing", () => {
  assert.throws(() => findPackageDir("emoji-datasource-not-a-real-set", ["/"]), /npm install --no-save emoji-datasource-google emoji-datasource-twitter/);
});
