/**
 * The embedded default model (issue #5): load time, one 64×64 image (20 steps with CFG, decode
 * included), and the quality figure — for 100 free-text prompts naming dataset emoji, whether the
 * 5 nearest dataset images (L2 over 64×64 RGB on white) include the named emoji (any skin tone,
 * either style). Needs the dataset folder for the quality part: `sdts dataset emoji data/emoji`
 * (or pass another folder as the first argument, or SDTS_EMOJI_DATA).
 *
 *   npm run bench:default [-- <dataset-folder>] [--model <folder>] [--sampler <name>] [--cfg <scale>] [--prompts <file>] [--seeds <n>]
 *
 * --model measures another model folder (e.g. a fresh `sdts train export`); --sampler and --cfg
 * change the quality run's settings (default: the model's default sampler and CFG, 20 steps);
 * --prompts takes another prompt list, e.g. bench/default-prompts-heldout.json: the same 100
 * emoji in phrasings found neither in the dataset's captions nor in the trainer's CAPTION_WORDS and FILLER_WORDS.
 * --seeds n makes every prompt's image with n seeds (1000k + i, k = 1…n) and prints the mean:
 * one seed per prompt moves the figure by about ±5 points.
 */
import os from "node:os";
import { performance } from "node:perf_hooks";
import sharp from "sharp";
import { type ImageCaptionData, readImageCaptionFolder } from "../src/io/image-folder.js";
import { pathExists } from "../src/io/run-files.js";
import { loadModel } from "../src/pipelines/load-model.js";
import type { Model } from "../src/pipelines/model.js";
import { PROMPT_FILES, type PromptCase, baseCode, readPromptCases, top5Match } from "./emoji-match.js";
import { median } from "./util.js";

async function rgbOf(png: Uint8Array): Promise<Uint8Array> {
  const b = await sharp(png).removeAlpha().raw().toBuffer();
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

async function speed(model: Model): Promise<{ first: number; image: number }> {
  // the model's default CFG scale; any scale other than 1 costs the same (two U-Net passes a step)
  const params = { prompt: "a red apple", steps: 20, width: 64, height: 64 };
  const t0 = performance.now();
  await model.txt2img({ ...params, seed: 0 });
  const first = performance.now() - t0;
  const times: number[] = [];
  for (let i = 1; i <= 7; i++) {
    const t = performance.now();
    await model.txt2img({ ...params, seed: i });
    times.push(performance.now() - t);
  }
  return { first, image: median(times) };
}

interface QualitySettings {
  readonly sampler?: string;
  readonly cfgScale: number;
  readonly cases: readonly PromptCase[];
  /** Seeds are seedBase + i for prompt i. */
  readonly seedBase: number;
}

async function quality(model: Model, data: ImageCaptionData, codes: readonly string[], q: QualitySettings): Promise<number> {
  let hits = 0;
  for (const [i, c] of q.cases.entries()) {
    const res = await model.txt2img({ prompt: c.prompt, steps: 20, cfgScale: q.cfgScale, width: 64, height: 64, seed: q.seedBase + i, ...(q.sampler ? { sampler: q.sampler } : {}) });
    const img = await rgbOf(res.images[0] as Uint8Array);
    const { top, hit } = top5Match(img, data.rgb, 64 * 64 * 3, codes, c.emoji);
    if (hit) hits += 1;
    console.log(`${hit ? "✓" : "·"} ${c.prompt.padEnd(48)} nearest: ${top.map((j) => data.names[j]).join(", ")}`);
  }
  return (100 * hits) / q.cases.length;
}

interface Args {
  dataDir?: string;
  model: string;
  sampler?: string;
  cfgScale?: number;
  prompts: string;
  seeds: number;
}

function parseArgs(argv: readonly string[]): Args {
  const out: Args = { model: "default", prompts: PROMPT_FILES[0] as string, seeds: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--model") out.model = next();
    else if (a === "--sampler") out.sampler = next();
    else if (a === "--cfg") out.cfgScale = Number(next());
    else if (a === "--prompts") out.prompts = next();
    else if (a === "--seeds") out.seeds = Number(next());
    else if (a.startsWith("--")) throw new Error(`unknown option ${a} (use --model, --sampler, --cfg, --prompts, --seeds)`);
    else out.dataDir = a;
  }
  if (out.cfgScale !== undefined && !(out.cfgScale >= 1)) throw new Error("--cfg must be a number ≥ 1");
  if (!(Number.isInteger(out.seeds) && out.seeds >= 1 && out.seeds <= 10)) throw new Error("--seeds must be a whole number from 1 to 10");
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.log(`default model bench: ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`);
  const t0 = performance.now();
  const model = await loadModel(args.model);
  const load = performance.now() - t0;
  try {
    const s = await speed(model);
    console.log(`load: ${(load / 1000).toFixed(2)} s (budget 2 s); first image (compiles the graphs): ${(s.first / 1000).toFixed(2)} s`);
    console.log(`one 64×64 image, 20 steps, CFG ${model.defaultParams.cfgScale}, decode included: ${(s.image / 1000).toFixed(3)} s median of 7 (budget 0.5 s)`);
    const dataDir = args.dataDir ?? process.env.SDTS_EMOJI_DATA ?? "data/emoji";
    if (!pathExists(dataDir)) {
      console.log(`no dataset folder at ${dataDir}: build it with \`npx sdts dataset emoji ${dataDir}\` (after npm install --no-save emoji-datasource-google emoji-datasource-twitter) for the quality figure`);
      return;
    }
    const sampler = args.sampler ?? model.defaultParams.sampler;
    const cfgScale = args.cfgScale ?? model.defaultParams.cfgScale;
    console.log(`quality: 20 steps, ${sampler}, CFG ${cfgScale}, prompts ${args.prompts}`);
    const data = await readImageCaptionFolder(dataDir, 64);
    const codes = data.names.map(baseCode);
    const cases = readPromptCases(args.prompts);
    const figures: number[] = [];
    for (let k = 1; k <= args.seeds; k++) {
      figures.push(await quality(model, data, codes, { sampler, cfgScale, cases, seedBase: 1000 * k }));
      if (args.seeds > 1) console.log(`seeds ${1000 * k} + i: top-5 ${(figures.at(-1) ?? 0).toFixed(0)}%`);
    }
    const mean = figures.reduce((a, b) => a + b, 0) / figures.length;
    console.log(`default model top-5: ${mean.toFixed(0)}%${args.seeds > 1 ? ` (mean of ${args.seeds} seeds per prompt)` : ""}`);
  } finally {
    await model.dispose();
  }
}

await main();
