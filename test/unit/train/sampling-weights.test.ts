/** Training-data details with exact answers: min-SNR weights, weighted draws, the weights.json file, caption phrasings, initial values. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readImageCaptionFolder } from "../../../src/io/image-folder.js";
import { CAPTION_WORDS, CAPTION_WRAP_SHARE, CaptionDistractors, CaptionNoise, DISTRACTOR_MAX_SHARE, FILLER_WORDS, WeightedSampler, randomCaption, rephrase } from "../../../src/train/data.js";
import { defaultInit } from "../../../src/train/init.js";
import { Rng } from "../../../src/train/rng.js";
import { runNumber, runShare } from "../../../src/train/run.js";
import { HIGH_NOISE_SHARE, contextNoise, drawTimestep, minSnrWeight } from "../../../src/train/unet.js";
import { writeShapes } from "./synthetic.js";

test("SNR weighting: v weighs the x₀ error by SNR clamped to [1, γ], ε by min(SNR, γ); no weight exceeds 1", () => {
  for (const [ab, vX0, epsX0] of [[0.999, 5, 5], [0.9, 5, 5], [0.75, 3, 3], [0.5, 1, 1], [0.1, 1, 1 / 9], [0.0047, 1, 0.0047 / 0.9953]] as const) {
    const snr = ab / (1 - ab);
    // ε-MSE = SNR·x₀-MSE and v-MSE = (SNR + 1)·x₀-MSE.
    assert.ok(Math.abs(minSnrWeight(ab, 5, "v_prediction") * (snr + 1) - vX0) < 1e-9 * Math.max(1, snr), `v at ᾱ ${ab}`);
    assert.ok(Math.abs(minSnrWeight(ab, 5, "epsilon") * snr - epsX0) < 1e-9 * Math.max(1, snr), `ε at ᾱ ${ab}`);
    for (const p of ["v_prediction", "epsilon"] as const) assert.ok(minSnrWeight(ab, 5, p) <= 1 + 1e-12, `${p} weight above 1 at ᾱ ${ab}`);
  }
  assert.equal(minSnrWeight(0.5, 0, "epsilon"), 1, "γ = 0 turns the weighting off");
  assert.ok(Math.abs(minSnrWeight(0.0047, 5, "v_prediction") - 1 / (0.0047 / 0.9953 + 1)) < 1e-12, "high noise keeps (nearly) full v weight");
});

test("drawTimestep: share 0 draws exactly as uniform r.int did; share s puts s + (1 − s)/2 of the draws in the noisier half", () => {
  const [a, b] = [new Rng(9), new Rng(9)];
  for (let i = 0; i < 1000; i++) assert.equal(drawTimestep(a, 1000, 0), b.int(1000), "old runs (no share recorded) draw the same timesteps");
  const r = new Rng(10);
  const n = 100_000;
  let high = 0;
  let lowest = 1000;
  let highest = -1;
  for (let i = 0; i < n; i++) {
    const t = drawTimestep(r, 1000, HIGH_NOISE_SHARE);
    assert.ok(Number.isInteger(t) && t >= 0 && t < 1000, `timestep ${t}`);
    high += Number(t >= 500);
    [lowest, highest] = [Math.min(lowest, t), Math.max(highest, t)];
  }
  const expected = HIGH_NOISE_SHARE + (1 - HIGH_NOISE_SHARE) / 2;
  assert.ok(Math.abs(high / n - expected) < 0.01, `${high} of ${n} in [500, 1000), expected ≈ ${expected * n}`);
  assert.deepEqual([lowest, highest], [0, 999], "both ends of the schedule are still drawn");
  for (let i = 0; i < 1000; i++) assert.ok(drawTimestep(r, 7, 1) >= 3, "share 1 draws only from the noisier half");
});

test("runShare: a recorded share, 0 when the run predates it; anything outside [0, 1] is named", () => {
  assert.equal(runShare({ captionNoise: 0.5 }, "captionNoise"), 0.5);
  assert.equal(runShare({}, "timestepHighShare"), 0, "runs recorded before the option");
  assert.throws(() => runShare({ timestepHighShare: 1.5 }, "timestepHighShare"), /run config: timestepHighShare must be a number from 0 to 1 \(got 1\.5\)/);
  assert.throws(() => runShare({ captionWrap: "0.5" }, "captionWrap"), /captionWrap must be a number from 0 to 1 \(got "0\.5"\)/);
  assert.equal(runNumber({ contextNoise: 0.3 }, "contextNoise", 2), 0.3);
  assert.equal(runNumber({}, "contextNoise", 2), 0, "runs recorded before the option");
  assert.throws(() => runNumber({ contextNoise: 2.5 }, "contextNoise", 2), /run config: contextNoise must be a number from 0 to 2 \(got 2\.5\)/);
});

test("WeightedSampler: draws follow the weights; one batch holds no repeats", () => {
  const w = Float64Array.from([1, 1, 2, 0.25, 0.25, 0.5]); // sums to 5
  const s = new WeightedSampler(w);
  const rng = new Rng(11);
  const counts = new Array<number>(w.length).fill(0);
  const draws = 200_000;
  for (let i = 0; i < draws; i++) { const k = s.sample(rng, 1)[0] as number; counts[k] = (counts[k] ?? 0) + 1; }
  counts.forEach((c, i) => {
    const expected = (draws * (w[i] as number)) / 5;
    assert.ok(Math.abs(c - expected) < 5 * Math.sqrt(expected), `index ${i}: ${c} draws, expected ≈ ${expected}`);
  });
  for (let t = 0; t < 200; t++) {
    const b = s.sample(rng, 4);
    assert.equal(new Set(b).size, 4, `batch ${b.join(",")} repeats an image`);
  }
  assert.equal(s.sample(rng, 9).length, 9, "more draws than images are allowed (with repeats)");
});

test("weights.json: read by name, default 1; bad values are named", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sdts-weights-"));
  try {
    await writeShapes(dir);
    const plain = await readImageCaptionFolder(dir, 64);
    assert.ok(plain.weights.every((x) => x === 1));
    await writeFile(join(dir, "weights.json"), JSON.stringify({ "red-circle": 0.25, "not-an-image": 3 }));
    const d = await readImageCaptionFolder(dir, 64);
    d.names.forEach((n, i) => assert.equal(d.weights[i], n === "red-circle" ? 0.25 : 1, n));
    await writeFile(join(dir, "weights.json"), JSON.stringify({ "red-circle": -1 }));
    await assert.rejects(readImageCaptionFolder(dir, 64), /weights\.json: the weight of 'red-circle' must be a positive number \(got -1\)/);
    await writeFile(join(dir, "weights.json"), "{");
    await assert.rejects(readImageCaptionFolder(dir, 64), /weights\.json is not valid JSON/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("randomCaption: wrap 0 returns the captions as written; wrap 1 rewords each with CAPTION_WORDS around the caption; empty captions stay empty", () => {
  const data = { captions: [["red apple", "apple, noto"], [""]] } as unknown as Parameters<typeof randomCaption>[0];
  const rng = new Rng(5);
  const prefixes = new Set<string>();
  const all = Object.values(CAPTION_WORDS).flat();
  for (let i = 0; i < 400; i++) {
    const c = randomCaption(data, 0, rng);
    assert.ok(c === "red apple" || c === "apple, noto", c);
    const w = randomCaption(data, 0, rng, { wrap: 1 });
    assert.ok(w !== "red apple" && w !== "apple, noto", `'${w}' was not reworded`);
    assert.ok(w.includes("red apple") || /apple(, | - |; | \| |: | \/ | )noto/.test(w), `'${w}' lost the caption`);
    // what is left once the caption is cut out is made of CAPTION_WORDS only
    const rest = w.replace(/red apple|apple.{1,3}noto/, "").split(/[ ,.!]+/).filter((x) => x !== "");
    for (const word of rest) assert.ok(all.some((p) => p.split(/[ ,.!]+/).includes(word)), `'${word}' in '${w}' is not from CAPTION_WORDS`);
    const first = CAPTION_WORDS.prefixes.find((p) => w.startsWith(`${p} `));
    if (first !== undefined) prefixes.add(first);
    assert.equal(randomCaption(data, 1, rng, { wrap: 1 }), "", "the empty caption is not reworded");
  }
  assert.ok(prefixes.size > CAPTION_WORDS.prefixes.length / 2, `only ${prefixes.size} prefixes drawn in 400 tries`);
  let wrapped = 0;
  for (let i = 0; i < 4000; i++) wrapped += Number(!["red apple", "apple, noto"].includes(randomCaption(data, 0, rng, { wrap: CAPTION_WRAP_SHARE })));
  assert.ok(Math.abs(wrapped / 4000 - CAPTION_WRAP_SHARE) < 0.03, `${wrapped} of 4000 wrapped`);
});

test("rephrase: a prefix ending in an article replaces the caption's own ('an a …' is not made)", () => {
  const rng = new Rng(9);
  for (let i = 0; i < 2000; i++) {
    const w = rephrase("a couple with heart, noto", rng);
    assert.ok(!/(^| )(a|an|the|one|some|my) (a|an|the) /.test(w), w);
    assert.ok(w.includes("couple with heart"), w);
  }
});

test("CaptionNoise: fillers leave out the folder's caption words; the subject's words stay, in order; share 0 draws as before", () => {
  const captions = [["very red apple, noto, food & drink"], ["grinning face"]];
  const noise = new CaptionNoise(captions);
  assert.equal(noise.fillerCount, new Set(FILLER_WORDS).size - 1, "'very' is a caption word, so it is no filler");
  const rng = new Rng(21);
  const seen = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const w = noise.apply("red apple, noto, food & drink", rng);
    assert.notEqual(w, "", "noise emptied the caption");
    // 'red' then 'apple' (other words may come between them), never dropped
    const words = w.split(/[^a-z&]+/).filter((x) => x !== "");
    const r = words.indexOf("red");
    assert.ok(r >= 0 && words.indexOf("apple", r + 1) > r, `'${w}' lost the subject`);
    for (const x of words) if (!["red", "apple", "noto", "food", "&", "drink"].includes(x)) seen.add(x);
  }
  assert.ok(![...seen].includes("very"), "a caption word was used as filler");
  assert.ok(seen.size > 150, `only ${seen.size} distinct added words in 3000 draws`);
  assert.ok([...seen].some((x) => !FILLER_WORDS.includes(x)), "no made-up words");
  // A run recorded without noise (or an older run) draws exactly what it drew before the option existed.
  const data = { captions } as unknown as Parameters<typeof randomCaption>[0];
  const [a, b] = [new Rng(4), new Rng(4)];
  for (let i = 0; i < 500; i++) assert.equal(randomCaption(data, i % 2, a, { wrap: 0.5 }), randomCaption(data, i % 2, b, { wrap: 0.5, noise, noiseShare: 0 }));
  assert.equal(a.state, b.state);
});

test("CaptionDistractors: the folder's naming words (≤ 3% of images, ≥ 3 letters) added once, before, after or between parts; share 0 draws as before", () => {
  // 100 images: 'noto' in all, 'face' in 4 (over 3%), 'cat' in 3 (at the limit), 'ox' in 1 (too short), a word of its own each
  const captions = Array.from({ length: 100 }, (_, i) => [`${i < 4 ? "face " : ""}${i < 3 ? "cat " : ""}${i === 0 ? "ox " : ""}thing${i}, noto`]);
  assert.equal(DISTRACTOR_MAX_SHARE, 0.03);
  const d = new CaptionDistractors(captions);
  assert.equal(d.count, 100 + 1, "thing0 … thing99 and cat; not noto, face or ox");
  const rng = new Rng(8);
  const where = { before: 0, after: 0, between: 0 };
  for (let i = 0; i < 2000; i++) {
    const w = d.apply("cat thing7, noto", rng);
    const words = w.split(/[ ,]+/);
    assert.equal(words.length, 4, `'${w}' is not the caption and one word`);
    const added = words.filter((x) => !["cat", "thing7", "noto"].includes(x));
    assert.equal(added.length, 1, `'${w}' repeats a word of the caption`);
    assert.match(added[0] ?? "", /^thing\d+$/);
    assert.equal(w.replace(` ${added[0]}`, "").replace(`${added[0]} `, ""), "cat thing7, noto", `'${w}' changed the caption itself`);
    if (w.startsWith(added[0] ?? "")) where.before++;
    else if (w.endsWith(added[0] ?? "")) where.after++;
    else where.between++;
  }
  assert.ok(Math.abs(where.before / 2000 - 0.45) < 0.04 && Math.abs(where.after / 2000 - 0.35) < 0.04 && Math.abs(where.between / 2000 - 0.2) < 0.04, JSON.stringify(where));
  const data = { captions: [["cat thing1, noto"], [""]] } as unknown as Parameters<typeof randomCaption>[0];
  const [a, b] = [new Rng(4), new Rng(4)];
  for (let i = 0; i < 500; i++) assert.equal(randomCaption(data, i % 2, a, { wrap: 0.5 }), randomCaption(data, i % 2, b, { wrap: 0.5, distractors: d, distractShare: 0 }));
  assert.equal(a.state, b.state, "a run without the option draws what it drew before");
  let stray = 0;
  for (let i = 0; i < 2000; i++) stray += Number(randomCaption(data, 0, a, { distractors: d, distractShare: 0.25 }) !== "cat thing1, noto");
  assert.ok(Math.abs(stray / 2000 - 0.25) < 0.03, `${stray} of 2000 given a stray word`);
  assert.equal(randomCaption(data, 1, a, { distractors: d, distractShare: 1 }), "", "the empty caption stays empty");
});

test("defaultInit: embedding tables N(0, 0.02²); the linears of time/add embeddings by fan-in", () => {
  assert.deepEqual(defaultInit("text_model.embeddings.token_embedding.weight", [100, 32]), { normal: 0.02 });
  assert.deepEqual(defaultInit("add_embedding.pool.positional_embedding", [1, 32]), { normal: 0.02 });
  assert.deepEqual(defaultInit("time_embedding.linear_1.weight", [128, 32]), { normal: 1 / Math.sqrt(32) });
  assert.deepEqual(defaultInit("add_embedding.pool.q_proj.weight", [32, 32]), { normal: 1 / Math.sqrt(32) });
  assert.equal(defaultInit("add_embedding.norm1.weight", [32]), "ones");
  assert.equal(defaultInit("add_embedding.proj.bias", [128]), "zeros");
});

test("contextNoise: RMS as asked, four fifths of the variance shared by a caption's rows, captions independent", () => {
  const [b, len, d, rms] = [64, 77, 128, 0.3];
  const n = contextNoise(new Rng(4), [b, len, d], rms);
  const at = (k: number, j: number, q: number) => n[(k * len + j) * d + q] ?? 0;
  let [sq, rowCov, capCov] = [0, 0, 0];
  for (let k = 0; k < b; k++) {
    for (let q = 0; q < d; q++) {
      for (let j = 0; j < len; j++) sq += at(k, j, q) ** 2;
      rowCov += at(k, 0, q) * at(k, 1, q); // two rows of one caption
      capCov += at(k, 0, q) * at((k + 1) % b, 0, q); // the same row of two captions
    }
  }
  const variance = rms * rms;
  assert.ok(Math.abs(Math.sqrt(sq / (b * len * d)) - rms) < 0.01, `RMS ${Math.sqrt(sq / (b * len * d))}`);
  // Covariance estimates over b·d = 8,192 pairs: standard error ≈ variance / 90.
  assert.ok(Math.abs(rowCov / (b * d) - 0.8 * variance) < 0.05 * variance, `rows of a caption share 0.8 of the variance (got ${rowCov / (b * d) / variance})`);
  assert.ok(Math.abs(capCov / (b * d)) < 0.05 * variance, `captions independent (got ${capCov / (b * d) / variance})`);
  assert.ok(contextNoise(new Rng(4), [2, 3, 4], 0).every((v) => v === 0), "RMS 0 adds nothing");
});
