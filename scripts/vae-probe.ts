/**
 * How much of an image a VAE run's round trip keeps: for 200 images of its dataset (every
 * 7,919th, wrapping), whether decode(encode(x)) (the posterior mean) is nearest to x itself
 * among all the dataset's images (L2 over 64×64 RGB, as bench:default scores), whether x's
 * emoji (any skin tone, either style) is among its 5 nearest, and the RMSE in 0–255 units.
 *
 *   npx tsx scripts/vae-probe.ts <vae-run>
 */
import { baseCode, top5Match } from "../bench/emoji-match.js";
import { readImageCaptionFolder } from "../src/io/image-folder.js";
import { imageBatch, tensorImageRgb } from "../src/train/data.js";
import { readVaeRun, vaeDecoderGraph, vaeEncoderGraph } from "../src/train/frozen.js";
import { readRunConfig } from "../src/train/run.js";

const dir = process.argv[2];
if (!dir) throw new Error("usage: npx tsx scripts/vae-probe.ts <vae-run>");
const run = await readRunConfig(dir);
const vae = await readVaeRun(dir);
const size = vae.imageSize;
const data = await readImageCaptionFolder(String(run.data), size);
const codes = data.names.map(baseCode);
const per = size * size * 3;
const BATCH = 20;
const picks = Array.from({ length: 200 }, (_, i) => (i * 7919) % data.names.length);
const [enc, dec] = [await vaeEncoderGraph(vae, BATCH, size), await vaeDecoderGraph(vae, BATCH, size)];
let [self, top5, sq] = [0, 0, 0];
try {
  for (let s = 0; s < picks.length; s += BATCH) {
    const batch = picks.slice(s, s + BATCH);
    const { mean } = await enc.run({ image: imageBatch(data, batch) });
    const { image } = await dec.run({ latent: mean as NonNullable<typeof mean> });
    const out = image?.data as Float32Array;
    batch.forEach((j, k) => {
      const rgb = tensorImageRgb(out, size, k);
      for (let q = 0; q < per; q++) sq += ((rgb[q] ?? 0) - (data.rgb[j * per + q] ?? 0)) ** 2;
      const { top, hit } = top5Match(rgb, data.rgb, per, codes, codes[j] as string);
      if (top[0] === j) self += 1;
      if (hit) top5 += 1;
    });
  }
} finally {
  await enc.dispose();
  await dec.dispose();
}
const pct = (n: number) => `${((100 * n) / picks.length).toFixed(1)}%`;
console.log(`${dir}: decode(encode(x)) nearest to x itself ${pct(self)}, x's emoji among its 5 nearest ${pct(top5)}, RMSE ${Math.sqrt(sq / picks.length / per).toFixed(1)} (0–255), ${picks.length} images`);
