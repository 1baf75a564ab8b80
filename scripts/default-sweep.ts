/**
 * A sampling-settings sweep for a default-model folder, split in two so that the images can be
 * made on another machine (one without the dataset) and scored here:
 *
 *   npx tsx scripts/default-sweep.ts gen <model-folder> <out-dir> "<sampler>@<cfg>@<steps>[@<seed>]" …
 *   npx tsx scripts/default-sweep.ts score <out-dir> [<dataset-folder>]
 *
 * `gen` makes the bench's images (both prompt lists, seed 1000 + i or <seed> + i, 64×64) for each setting and
 * writes them as raw RGB, `<out-dir>/<setting>--<prompt list>.rgb`; `score` prints, for each
 * file, the share of prompts whose 5 nearest dataset images include the named emoji — the
 * figure `bench:default` prints, for many settings at once.
 */
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import sharp from "sharp";
import { readImageCaptionFolder } from "../src/io/image-folder.js";
import { loadModel } from "../src/pipelines/load-model.js";
import { baseCode, readPromptCases, top5Match } from "../bench/emoji-match.js";

const PER = 64 * 64 * 3;
// from the working directory (the repo root), so that an esbuild bundle of this script finds them too
const PROMPT_FILES = ["bench/default-prompts.json", "bench/default-prompts-heldout.json"];
const [mode, ...rest] = process.argv.slice(2);

if (mode === "gen") {
  const [modelDir, outDir, ...settings] = rest;
  if (!modelDir || !outDir || settings.length === 0) throw new Error("usage: default-sweep.ts gen <model> <out-dir> <sampler@cfg@steps>…");
  mkdirSync(outDir, { recursive: true });
  const model = await loadModel(modelDir);
  for (const setting of settings) {
    const [sampler = "Euler a", cfg = "7", steps = "20", seed = "1000"] = setting.split("@");
    for (const file of PROMPT_FILES) {
      const cases = readPromptCases(file);
      const out = new Uint8Array(cases.length * PER);
      for (const [i, c] of cases.entries()) {
        const res = await model.txt2img({ prompt: c.prompt, sampler, cfgScale: Number(cfg), steps: Number(steps), width: 64, height: 64, seed: Number(seed) + i });
        out.set(await sharp(res.images[0] as Uint8Array).removeAlpha().raw().toBuffer(), i * PER);
      }
      writeFileSync(join(outDir, `${setting}--${basename(file, ".json")}.rgb`), out);
    }
    console.log(`done ${setting}`);
  }
  await model.dispose();
} else if (mode === "score") {
  const [dir, dataDir = "data/emoji"] = rest;
  if (!dir) throw new Error("usage: default-sweep.ts score <out-dir> [<dataset-folder>]");
  const data = await readImageCaptionFolder(dataDir, 64);
  const codes = data.names.map(baseCode);
  const lists = new Map(PROMPT_FILES.map((f) => [basename(f, ".json"), readPromptCases(f)]));
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".rgb")).sort()) {
    const cases = lists.get(f.replace(/\.rgb$/, "").split("--")[1] ?? "") ?? [];
    const rgb = readFileSync(join(dir, f));
    let hits = 0;
    cases.forEach((c, i) => (hits += Number(top5Match(rgb.subarray(i * PER, (i + 1) * PER), data.rgb, PER, codes, c.emoji).hit)));
    console.log(`${f.replace(/\.rgb$/, "").padEnd(60)} top-5 ${((100 * hits) / Math.max(1, cases.length)).toFixed(0)}%`);
  }
} else {
  throw new Error("usage: default-sweep.ts gen|score …");
}
