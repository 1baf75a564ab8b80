/** Hires fix and latent resizing. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { join } from "node:path";
import { decodeImage } from "../../../src/io/image.js";
import { readPngText } from "../../../src/io/png-text.js";
import { resizeLatents } from "../../../src/pipelines/latent-resize.js";
import { loadModel } from "../../../src/pipelines/load-model.js";
import type { Model } from "../../../src/pipelines/model.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

test("latent resize: nearest repeats, bilinear matches torch's align_corners=False values by hand", () => {
  const x = { data: Float32Array.of(1, 2, 3, 4), shape: [1, 1, 2, 2] };
  assert.deepEqual([...resizeLatents(x, 4, 4, "nearest").data], [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  // torch.nn.functional.interpolate([[1,2],[3,4]], size=4, mode="bilinear") first row: 1, 1.25, 1.75, 2
  assert.deepEqual([...resizeLatents(x, 4, 4, "bilinear").data.subarray(0, 4)], [1, 1.25, 1.75, 2]);
  // bicubic keeps constants constant
  const c = { data: new Float32Array(9).fill(3), shape: [1, 1, 3, 3] };
  assert.ok(resizeLatents(c, 6, 6, "bicubic").data.every((v) => Math.abs(v - 3) < 1e-6));
});

const DIR = join(GOLDEN_DIR, "tiny-pipeline");
let model: Model;
before(async () => {
  model = await loadModel(DIR);
});
after(async () => {
  await model.dispose();
});

for (const upscaler of ["Latent", "Lanczos"]) {
  test(`hires fix (${upscaler}): 64² → 128², infotext records the hires settings`, async () => {
    const r = await model.txt2img({ prompt: "a castle", steps: 3, seed: 9, width: 64, height: 64, hires: { scale: 2, upscaler, steps: 2, denoisingStrength: 0.5 } });
    const img = await decodeImage(r.images[0] ?? new Uint8Array());
    assert.deepEqual([img.width, img.height], [128, 128]);
    assert.deepEqual(r.latents.shape, [1, 4, 64, 64]);
    assert.match(r.info.infotexts[0] ?? "", new RegExp(`Denoising strength: 0.5.*Hires upscale: 2, Hires steps: 2, Hires upscaler: ${upscaler}`));
    // #7: the PNG's own infotext lacked the hires settings that info.infotexts had.
    assert.equal(readPngText(r.images[0] ?? new Uint8Array())["parameters"], r.info.infotexts[0]);
  });
}
