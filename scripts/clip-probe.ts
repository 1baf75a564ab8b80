/**
 * How well a CLIP run's text tower tells emoji apart: for the bench's free-text prompts
 * (bench/default-prompts.json, and the held-out phrasings of default-prompts-heldout.json) and for one training caption per image, whether the named emoji
 * (any skin tone, either style) is among the 5 images the contrastive embeddings rank first —
 * the most identity a U-Net conditioned on this encoder can be told.
 *
 *   npx tsx scripts/clip-probe.ts <clip-run> [--misses]
 */
import { basename, join } from "node:path";
import { PROMPT_FILES, baseCode, readPromptCases, top5Match } from "../bench/emoji-match.js";
import { compile } from "../src/graph/compile.js";
import { readImageCaptionFolder } from "../src/io/image-folder.js";
import { parseClipTextConfig } from "../src/models/clip/config.js";
import { ParamRegistry, Scope } from "../src/nn/scope.js";
import type { HostTensor } from "../src/runtime/host-tensor.js";
import { loadCheckpoint } from "../src/train/checkpoint.js";
import { CLIP_TRAIN_LENGTH, idsTensor, towers } from "../src/train/clip.js";
import { imageBatch } from "../src/train/data.js";
import { readClipRun } from "../src/train/frozen.js";
import { readRunConfig } from "../src/train/run.js";

const B = 64;
const dir = process.argv[2];
if (!dir) throw new Error("usage: npx tsx scripts/clip-probe.ts <clip-run>");
const run = await readRunConfig(dir);
const model = run.model as Record<string, unknown>;
const cfg = parseClipTextConfig(model);
const clip = await readClipRun(dir);
const ck = await loadCheckpoint(join(dir, "checkpoint.safetensors"), "clip");
const data = await readImageCaptionFolder(String(run.data), 64);
const reg = new ParamRegistry();
const tw = towers(Scope.root(reg), cfg, B, 64, Number(model.projection_dim ?? cfg.hiddenSize));
const graph = await compile({ textEmb: tw.text, imageEmb: tw.image }, { name: "clip-probe" });
const E = tw.text.shape[1] as number;
const absent = [...reg.params.keys()].filter((k) => !ck.params.has(k));
if (absent.length > 0) {
  throw new Error(`${dir}'s checkpoint lacks ${absent.length} of the probe's weights (${absent[0]}, …): it needs a CLIP run trained by \`sdts train clip\`, with its image tower, not one read back from a model folder`);
}
const feeds = (ids: HostTensor, image: HostTensor): Record<string, HostTensor> => {
  const f: Record<string, HostTensor> = { input_ids: ids, image };
  for (const k of reg.params.keys()) f[k] = ck.params.get(k) as HostTensor;
  return f;
};
const N = data.names.length;
const img = new Float32Array(N * E);
const blankIds = idsTensor(clip.tokenizer, new Array<string>(B).fill(""), CLIP_TRAIN_LENGTH);
for (let s = 0; s < N; s += B) {
  const idx = Array.from({ length: B }, (_, i) => Math.min(s + i, N - 1));
  const out = (await graph.run(feeds(blankIds, imageBatch(data, idx)))).imageEmb?.data as Float32Array;
  img.set(out.subarray(0, Math.min(B, N - s) * E), s * E);
}
const codes = data.names.map(baseCode);
const blankImg = imageBatch(data, new Array<number>(B).fill(0));
async function top5(texts: readonly string[], want: readonly string[]): Promise<number> {
  let hits = 0;
  for (let s = 0; s < texts.length; s += B) {
    const part = texts.slice(s, s + B);
    const t = (await graph.run(feeds(idsTensor(clip.tokenizer, [...part, ...new Array<string>(B - part.length).fill("")], CLIP_TRAIN_LENGTH), blankImg))).textEmb?.data as Float32Array;
    part.forEach((_, k) => {
      // unit embeddings: the smallest L2 distance is the largest cosine similarity
      const { top, hit } = top5Match(t.subarray(k * E, (k + 1) * E), img, E, codes, want[s + k] ?? "");
      hits += Number(hit);
      if (!hit && process.argv.includes("--misses")) console.log(`  miss: ${texts[s + k] ?? ""} → ${top.map((j) => data.names[j]).join(", ")}`);
    });
  }
  return (100 * hits) / texts.length;
}
for (const file of PROMPT_FILES) {
  const cases = readPromptCases(file);
  console.log(`${basename(file)}: named emoji among the 5 best-matching images ${(await top5(cases.map((c) => c.prompt), cases.map((c) => c.emoji))).toFixed(0)}%`);
}
const pick = Array.from({ length: 512 }, (_, i) => Math.floor((i * N) / 512));
console.log(`training captions (512, the last of each): ${(await top5(pick.map((i) => data.captions[i]?.at(-1) ?? ""), pick.map((i) => codes[i] ?? ""))).toFixed(0)}%`);
await graph.dispose();
