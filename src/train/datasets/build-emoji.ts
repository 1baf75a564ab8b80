/** `sdts dataset emoji`: writes the emoji training set (Noto + Twemoji, skin tones included) in the common layout. */
import { join } from "node:path";
import { InputError } from "../../errors.js";
import { emojiImagePath, findPackageDir, readEmojiJson, writeEmojiExample } from "../../io/emoji-packages.js";
import { WEIGHTS_FILE } from "../../io/image-folder.js";
import { writeJsonFile } from "../../io/run-files.js";
import { EMOJI_SETS, type EmojiEntry, emojiRecords } from "./emoji.js";

/** Options of buildEmojiDataset. */
export interface EmojiDatasetOptions {
  /** Folders to find the packages from (default: the current folder, then the sdts package). */
  readonly searchFrom?: readonly string[];
  /** Image side (default 64, the packages' own size). */
  readonly size?: number;
  readonly onProgress?: (done: number, total: number) => void;
}

/** What was written. */
export interface EmojiDatasetResult {
  readonly images: number;
  readonly perStyle: Readonly<Record<string, number>>;
  readonly missing: number;
}

/** Writes `<style>-<codepoints>.png` + `.txt` for every image of both sets into `outDir`. */
export async function buildEmojiDataset(outDir: string, o: EmojiDatasetOptions = {}): Promise<EmojiDatasetResult> {
  const size = o.size ?? 64;
  if (!Number.isInteger(size) || size < 8 || size > 512) throw new InputError(`--size must be a whole number of pixels from 8 to 512 (got ${size})`);
  // Find both packages before writing anything.
  const sets = EMOJI_SETS.map((set) => ({ set, dir: findPackageDir(set.pkg, o.searchFrom ?? [process.cwd()]) }));
  const jobs: { src: string; name: string; captions: readonly string[]; style: string; weight: number }[] = [];
  for (const { set, dir } of sets) {
    const entries = (await readEmojiJson(dir)) as EmojiEntry[];
    for (const r of emojiRecords(entries, set)) jobs.push({ src: emojiImagePath(dir, set.dir, r.source), name: r.name, captions: r.captions, style: set.style, weight: r.weight });
  }
  const perStyle: Record<string, number> = {};
  const weights: Record<string, number> = {};
  let missing = 0;
  for (const [i, j] of jobs.entries()) {
    if (await writeEmojiExample(j.src, outDir, j.name, j.captions, size)) {
      perStyle[j.style] = (perStyle[j.style] ?? 0) + 1;
      if (j.weight !== 1) weights[j.name] = j.weight;
    } else missing += 1;
    o.onProgress?.(i + 1, jobs.length);
  }
  await writeJsonFile(join(outDir, WEIGHTS_FILE), weights);
  return { images: jobs.length - missing, perStyle, missing };
}
