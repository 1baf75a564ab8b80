/**
 * The common training layout: a folder of images, each with a same-named `.txt` caption file
 * (several captions allowed, one per line). Images are read as RGB composited on white. An
 * optional `weights.json` ({ "<image name without extension>": weight }, default 1) makes some
 * images drawn more or less often by the U-Net stage (the emoji set gives an emoji's skin tones
 * one share between them).
 */
import { basename, extname, join } from "node:path";
import sharp from "sharp";
import { InputError } from "../errors.js";
import { listFiles, pathExists, readBytes, readTextFile } from "./run-files.js";

const IMAGE_EXT = new Set([".png", ".jpg", ".jpeg", ".webp"]);

/** Images of one size as RGB bytes, N × size × size × 3 (HWC), and their captions. */
export interface ImageCaptionData {
  readonly size: number;
  readonly rgb: Uint8Array;
  readonly captions: readonly (readonly string[])[];
  readonly names: readonly string[];
  /** Relative draw weight of each image (all 1 without a `weights.json`). */
  readonly weights: Float64Array;
}

/** The optional per-image weights file of the layout. */
export const WEIGHTS_FILE = "weights.json";

async function readWeights(dir: string, names: readonly string[]): Promise<Float64Array> {
  const out = new Float64Array(names.length).fill(1);
  const path = join(dir, WEIGHTS_FILE);
  if (!pathExists(path)) return out;
  let json: unknown;
  try {
    json = JSON.parse(await readTextFile(path));
  } catch (e) {
    throw new InputError(`${path} is not valid JSON (${(e as Error).message}); it should map image names to positive weights`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new InputError(`${path} should be an object mapping image names to positive weights`);
  const index = new Map(names.map((n, i) => [n, i]));
  for (const [name, w] of Object.entries(json)) {
    if (typeof w !== "number" || !(w > 0) || !Number.isFinite(w)) throw new InputError(`${path}: the weight of '${name}' must be a positive number (got ${JSON.stringify(w)})`);
    const i = index.get(name);
    if (i !== undefined) out[i] = w; // names of images left out (by --limit) are skipped
  }
  return out;
}

/** Decodes an image to size × size RGB on white; images of another size are resized (Lanczos). */
export async function decodeRgbSquare(bytes: Uint8Array, size: number): Promise<Uint8Array> {
  const buf = await sharp(bytes)
    .flatten({ background: "#ffffff" })
    .resize(size, size, { fit: "fill", kernel: "lanczos3" })
    .removeAlpha()
    .raw()
    .toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The image files with a caption file and their captions (the images not read); `limit` keeps the first N (by name). */
export async function readCaptionFolder(dir: string, limit?: number): Promise<{ files: string[]; captions: string[][] }> {
  if (!pathExists(dir)) throw new InputError(`dataset folder not found: ${dir}; make one with \`sdts dataset emoji ${dir}\` or use a folder of images with same-named .txt captions`);
  const all = await listFiles(dir);
  const have = new Set(all);
  const images = all.filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()) && have.has(`${basename(f, extname(f))}.txt`));
  const files = limit === undefined ? images : images.slice(0, limit);
  if (files.length === 0) throw new InputError(`${dir} holds no images with same-named .txt captions (PNG, JPEG or WebP + .txt)`);
  const captions: string[][] = [];
  for (const f of files) {
    const text = await readTextFile(join(dir, `${basename(f, extname(f))}.txt`));
    const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
    captions.push(lines.length > 0 ? lines : [""]);
  }
  return { files, captions };
}

/** Reads every image with a caption file; `limit` keeps the first N (by name). */
export async function readImageCaptionFolder(dir: string, size: number, limit?: number): Promise<ImageCaptionData> {
  const { files, captions } = await readCaptionFolder(dir, limit);
  const rgb = new Uint8Array(files.length * size * size * 3);
  for (const [i, f] of files.entries()) rgb.set(await decodeRgbSquare(await readBytes(join(dir, f)), size), i * size * size * 3);
  const names = files.map((f) => basename(f, extname(f)));
  return { size, rgb, captions, names, weights: await readWeights(dir, names) };
}
