/** Reading the `emoji-datasource-*` npm packages (installed only to build the training set) and writing the dataset folder. */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { InputError } from "../errors.js";
import { decodeRgbSquare } from "./image-folder.js";
import { encodePng } from "./image.js";
import { ensureDir, pathExists, readBytes, readTextFile, writeFileAtomic } from "./run-files.js";

/** The install command the packages need; part of every "missing" error. */
export const EMOJI_INSTALL = "npm install --no-save emoji-datasource-google emoji-datasource-twitter";

/** The folder of an installed package, looked up from each of `from` (folders) in turn, then from the sdts package. */
export function findPackageDir(pkg: string, from: readonly string[]): string {
  for (const base of [...from.map((d) => join(d, "noop.js")), import.meta.url]) {
    try {
      return dirname(createRequire(base).resolve(`${pkg}/package.json`));
    } catch {
      // not installed below this folder; try the next
    }
  }
  throw new InputError(`the npm package ${pkg} is not installed; it is needed only to build the emoji dataset: run \`${EMOJI_INSTALL}\` in the sdts folder (or the current folder) and try again`);
}

/** The package's emoji.json entries. */
export async function readEmojiJson(pkgDir: string): Promise<unknown[]> {
  const v: unknown = JSON.parse(await readTextFile(join(pkgDir, "emoji.json")));
  if (!Array.isArray(v)) throw new InputError(`${pkgDir}/emoji.json is not a list of emoji; reinstall the package (${EMOJI_INSTALL})`);
  return v;
}

/** Path of a 64×64 image of the package (img/<set>/64/<file>). */
export function emojiImagePath(pkgDir: string, setDir: string, file: string): string {
  return join(pkgDir, "img", setDir, "64", file);
}

/** Composites one emoji PNG on white at size × size and writes `<name>.png` with `<name>.txt` (one caption per line). */
export async function writeEmojiExample(src: string, outDir: string, name: string, captions: readonly string[], size: number): Promise<boolean> {
  if (!pathExists(src)) return false;
  const rgb = await decodeRgbSquare(await readBytes(src), size);
  await ensureDir(outDir);
  await writeFileAtomic(join(outDir, `${name}.png`), await encodePng(rgb, size, size));
  await writeFileAtomic(join(outDir, `${name}.txt`), `${captions.join("\n")}\n`);
  return true;
}
