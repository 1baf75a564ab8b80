/** edit/img2img golden cases through model.img2img, and the strength-0 invariant. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../../../src/pipelines/load-model.js";
import type { Model } from "../../../src/pipelines/model.js";
import { type GoldenCase, assertClose, caseParams, readCase, readJson } from "./golden-util.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const G = GOLDEN_DIR;
const EDIT = join(G, "edit");
let model: Model;
before(async () => {
  model = await loadModel(join(G, "tiny-pipeline"));
});
after(async () => {
  await model.dispose();
});

interface EditCase extends GoldenCase {
  strength: number;
  width: number;
  height: number;
}

const index = readJson<{ cases: { name: string; file: string }[] }>(join(EDIT, "img2img/index.json"));
const png = new Uint8Array(readFileSync(join(EDIT, "inputs/test_pattern.png")));

for (const c of index.cases) {
  test(`img2img golden: ${c.name}`, async () => {
    const j = readJson<EditCase>(join(EDIT, `img2img/${c.name}.json`));
    const t = await readCase(join(EDIT, `img2img/${c.file}`));
    const res = await model.img2img({
      image: png,
      ...caseParams(j),
      strength: j.strength,
    });
    assertClose(`${c.name} final latent`, res.latents.data, t.get("final_latent")?.data ?? new Float32Array(), 1e-4);
    assert.equal(res.info.denoisingStrength, j.strength);
  });
}

test("strength 0 returns the input's VAE round trip (posterior sample, decoded)", async () => {
  const res = await model.img2img({ image: png, prompt: "x", strength: 0, seed: 11, steps: 8, sampler: "Euler" });
  const t = await readCase(join(EDIT, "img2img/euler_s06.safetensors"));
  // same seed → the same posterior draw as the golden's first draw
  assertClose("init latent", res.latents.data, t.get("init_latent")?.data ?? new Float32Array(), 1e-5);
});
