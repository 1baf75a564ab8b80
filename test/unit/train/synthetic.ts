/** A handful of synthetic training images made in the test: coloured shapes on white, with captions. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { encodePng } from "../../../src/io/image.js";

const COLOURS: Readonly<Record<string, readonly [number, number, number]>> = { red: [220, 30, 30], green: [30, 170, 60], blue: [40, 60, 220], yellow: [240, 200, 20] };
const SHAPES = ["circle", "square", "triangle"] as const;

function inside(shape: (typeof SHAPES)[number], x: number, y: number): boolean {
  const [u, v] = [(x - 32) / 20, (y - 32) / 20];
  if (shape === "circle") return u * u + v * v <= 1;
  if (shape === "square") return Math.abs(u) <= 0.8 && Math.abs(v) <= 0.8;
  return v <= 0.9 && v >= -0.9 && Math.abs(u) <= (v + 0.9) / 1.8;
}

/** Writes 12 images (4 colours × 3 shapes) of 64×64 with two captions each into `dir`. */
export async function writeShapes(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, rgb] of Object.entries(COLOURS)) {
    for (const shape of SHAPES) {
      const px = new Uint8Array(64 * 64 * 3).fill(255);
      for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) if (inside(shape, x, y)) px.set(rgb, (y * 64 + x) * 3);
      await writeFile(join(dir, `${name}-${shape}.png`), await encodePng(px, 64, 64));
      await writeFile(join(dir, `${name}-${shape}.txt`), `a ${name} ${shape}\n${shape}, ${name}\n`);
    }
  }
}
