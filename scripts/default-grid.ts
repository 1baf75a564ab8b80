/**
 * Writes docs/default-model-grid.png (8×8 images of the embedded default model) and
 * docs/default-model-grid.md (the prompts, row by row): the first 64 prompts of
 * bench/default-prompts.json, 20 steps, the model's default CFG and sampler, seed 1000 + i (as the quality bench).
 *
 *   node --import tsx scripts/default-grid.ts
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { PROMPT_FILES, readPromptCases } from "../bench/emoji-match.js";
import sharp from "sharp";
import { loadModel } from "../src/pipelines/load-model.js";
import { gridPng } from "../src/train/data.js";

const cases = readPromptCases(PROMPT_FILES[0] as string).slice(0, 64);
const model = await loadModel("default");
const { sampler, cfgScale } = model.defaultParams;
const tiles: Uint8Array[] = [];
try {
  for (const [i, c] of cases.entries()) {
    const r = await model.txt2img({ prompt: c.prompt, steps: 20, width: 64, height: 64, seed: 1000 + i });
    const raw = await sharp(r.images[0] as Uint8Array).removeAlpha().raw().toBuffer();
    tiles.push(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
  }
} finally {
  await model.dispose();
}
mkdirSync(new URL("../docs/", import.meta.url), { recursive: true });
writeFileSync(new URL("../docs/default-model-grid.png", import.meta.url), await gridPng(tiles, 64, 8));
const rows = Array.from({ length: 8 }, (_, r) => `${r + 1}. ${cases.slice(r * 8, r * 8 + 8).map((c) => `“${c.prompt}”`).join(" · ")}`);
writeFileSync(
  new URL("../docs/default-model-grid.md", import.meta.url),
  `# The default model: 64 prompts\n\n![8×8 grid](default-model-grid.png)\n\nRow by row, left to right (20 steps, CFG ${cfgScale}, ${sampler}, seed 1000 + index; made by \`node --import tsx scripts/default-grid.ts\`):\n\n${rows.join("\n")}\n`,
);
console.log("wrote docs/default-model-grid.png and docs/default-model-grid.md");
