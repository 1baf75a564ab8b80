/**
 * The common training layout: a folder of images, each with a same-named `.txt` caption file
 * (several captions allowed, one per line). Images are read as RGB composited on white.
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

/** Reads every image with a caption file; `limit` keeps the first N (by name). */
export async function readImageCaptionFolder(dir: string, size: number, limit?: number): Promise<ImageCaptionData> {
  if (!pathExists(dir)) throw new InputError(`dataset folder not found: ${dir}; make one with \`sdts dataset emoji ${dir}\` or use a folder of images with same-named .txt captions`);
  const files = await listFiles(dir);
  const have = new Set(files);
  const images = files.filter((f) => IMAGE_EXT.has(extname(f).toLowerCase()) && have.has(`${basename(f, extname(f))}.txt`));
  const picked = limit === undefined ? images : images.slice(0, limit);
  if (picked.length === 0) throw new InputError(`${dir} holds no images with same-named .txt captions (PNG, JPEG or WebP + .txt)`);
  const rgb = new Uint8Array(picked.length * size * size * 3);
  const captions: string[][] = [];
  for (const [i, f] of picked.entries()) {
    rgb.set(await decodeRgbSquare(await readBytes(join(dir, f)), size), i * size * size * 3);
    const text = await readTextFile(join(dir, `${basename(f, extname(f))}.txt`));
    const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
    captions.push(lines.length > 0 ? lines : [""]);
  }
  return { size, rgb, captions, names: picked.map((f) => basename(f, extname(f))) };
}
