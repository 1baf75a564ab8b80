/** Only-masked inpainting and outpainting keep what they should and change what they should. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeImage } from "../../../src/io/image.js";
import { loadModel } from "../../../src/pipelines/load-model.js";
import type { Model } from "../../../src/pipelines/model.js";
import { loadMask } from "../../../src/pipelines/mask.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const G = GOLDEN_DIR;
const png = new Uint8Array(readFileSync(join(G, "edit/inputs/test_pattern.png")));
const mask = new Uint8Array(readFileSync(join(G, "edit/inputs/mask.png")));
let model: Model;
before(async () => {
  model = await loadModel(join(G, "tiny-pipeline"));
});
after(async () => {
  await model.dispose();
});

test("outpaint: the canvas grows by the requested border and the result has the new size", async () => {
  const res = await model.inpaint({ image: png, outpaint: { left: 16, right: 16 }, prompt: "sky", steps: 3, seed: 1, maskBlur: 0 });
  const out = await decodeImage(res.images[0] ?? new Uint8Array());
  assert.deepEqual([out.width, out.height], [96, 64]);
  assert.deepEqual([res.info.width, res.info.height], [96, 64]);
});

test("only-masked: output has the input's size; far from the mask the pixels are the input's exactly", async () => {
  const res = await model.inpaint({ image: png, mask, onlyMasked: true, onlyMaskedPadding: 4, width: 64, height: 64, prompt: "a flower", steps: 3, seed: 2, maskBlur: 2 });
  const out = await decodeImage(res.images[0] ?? new Uint8Array());
  const src = await decodeImage(png);
  assert.deepEqual([out.width, out.height], [64, 64]);
  // pixel (60, 2): far outside both mask shapes, so the soft mask is 0 there
  const i = (2 * 64 + 60) * 3;
  assert.deepEqual([...out.rgb.subarray(i, i + 3)], [...src.rgb.subarray(i, i + 3)]);
});

test("an empty mask is refused in only-masked mode", async () => {
  await assert.rejects(model.inpaint({ image: png, mask: { data: new Float32Array(64 * 64), shape: [1, 1, 64, 64] }, onlyMasked: true, prompt: "x", steps: 2 }), /mask is empty/);
});

test("#7 regression: a blurred mask keeps one value per pixel and its place (sharp's blur returned 3 channels, garbling it)", async () => {
  const sharp = await loadMask(mask, 64, 64, 0, false);
  const soft = await loadMask(mask, 64, 64, 4, false);
  assert.equal(soft.length, 64 * 64);
  // The mask is a rectangle (rows 8–27, columns 12–35) and a disc (right of it, lower down).
  const at = (m: Float32Array, y: number, x: number) => m[y * 64 + x] ?? -1;
  assert.deepEqual([at(sharp, 16, 24), at(sharp, 60, 4)], [1, 0]);
  assert.ok(at(soft, 16, 24) > 0.95, "inside the rectangle stays masked");
  assert.ok(at(soft, 60, 4) < 0.01, "far outside stays unmasked");
  assert.ok(at(soft, 8, 24) > 0.3 && at(soft, 8, 24) < 0.7, "the edge is soft");
});
