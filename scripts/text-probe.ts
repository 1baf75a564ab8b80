/**
 * What a text encoder's pooled (EOS) state tells apart, with no image tower: each bench prompt's
 * unit-length pooled state against those of every image's last training caption; a hit when the
 * named emoji (any skin tone, either style) owns one of the 5 nearest captions. Prints both prompt
 * lists, and the held-out list per template (its prompts with the emoji's name replaced by X).
 * Works on a CLIP run folder or a model folder (e.g. models/default), unlike clip-probe.ts.
 *
 *   npx tsx scripts/text-probe.ts <clip-run | model-folder> [dataset-folder, default data/emoji]
 */
import { basename } from "node:path";
import { PROMPT_FILES, baseCode, readPromptCases, top5Match } from "../bench/emoji-match.js";
import { readImageCaptionFolder } from "../src/io/image-folder.js";
import { pooledStates, readClipRun } from "../src/train/frozen.js";

const [dir, dataDir = "data/emoji"] = process.argv.slice(2);
if (!dir) throw new Error("usage: npx tsx scripts/text-probe.ts <clip-run | model-folder> [dataset-folder]");
const clip = await readClipRun(dir);
const data = await readImageCaptionFolder(dataDir, 64);
const D = clip.config.hiddenSize;

/** Unit-length pooled states of `texts`, [n·D]. */
async function pooled(texts: readonly string[]): Promise<Float32Array> {
  const out = await pooledStates(clip, texts);
  for (let i = 0; i < texts.length; i++) {
    const v = out.subarray(i * D, (i + 1) * D);
    const norm = Math.hypot(...v);
    v.forEach((x, q) => (v[q] = x / norm));
  }
  return out;
}

const codes = data.names.map(baseCode);
const gallery = await pooled(data.captions.map((c) => c.at(-1) ?? ""));
for (const file of PROMPT_FILES) {
  const cases = readPromptCases(file) as (ReturnType<typeof readPromptCases>[number] & { name?: string })[];
  const emb = await pooled(cases.map((c) => c.prompt));
  const perTemplate = new Map<string, { hits: number; n: number }>();
  let hits = 0;
  cases.forEach((c, i) => {
    const hit = top5Match(emb.subarray(i * D, (i + 1) * D), gallery, D, codes, c.emoji).hit;
    hits += Number(hit);
    const t = c.name ? c.prompt.replace(c.name, "X") : "";
    const a = perTemplate.get(t) ?? { hits: 0, n: 0 };
    perTemplate.set(t, { hits: a.hits + Number(hit), n: a.n + 1 });
  });
  console.log(`${basename(file)}: named emoji owns one of the 5 nearest captions for ${((100 * hits) / cases.length).toFixed(0)}%`);
  if (file.endsWith("heldout.json")) for (const [t, a] of [...perTemplate].sort((x, y) => x[1].hits - y[1].hits)) console.log(`  ${a.hits}/${a.n}  ${t}`);
}
