/**
 * Writes sdts's final latents for every golden txt2img case (tiny-pipeline) and editing case
 * (edit/img2img, edit/inpaint) to /tmp/floatfloor/<case>.sdts.safetensors (tensor `final_latent`,
 * F32), run exactly as test/unit/pipelines/{txt2img,img2img,inpaint}-golden.test.ts run them.
 * scripts/float-floor.py compares them with the golden latents and with a float64 PyTorch run.
 *
 *   node --import tsx scripts/float-floor.ts [outDir] [--sets=txt2img,img2img,inpaint]
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../src/io/safetensors.js";
import { loadModel } from "../src/pipelines/load-model.js";
import type { Model } from "../src/pipelines/model.js";
import { caseParams } from "../test/unit/pipelines/golden-util.js";
import { GOLDEN_DIR } from "../test/golden-dir.js";

const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
const out = process.argv.slice(2).find((a) => !a.startsWith("--")) ?? "/tmp/floatfloor";
const setsFlag = flags.find((f) => f.startsWith("--sets="));
const sets = setsFlag ? setsFlag.slice("--sets=".length).split(",") : ["txt2img", "img2img", "inpaint"];
mkdirSync(out, { recursive: true });
const EDIT = join(GOLDEN_DIR, "edit");
const CASE_DIRS: Record<string, string> = {
  txt2img: join(GOLDEN_DIR, "tiny-pipeline", "cases"),
  img2img: join(EDIT, "img2img"),
  inpaint: join(EDIT, "inpaint"),
};
const FOLDERS: Record<string, string> = { "tiny-pipeline": join(GOLDEN_DIR, "tiny-pipeline"), "tiny-inpaint": join(EDIT, "tiny-inpaint") };
const readJson = (p: string) => JSON.parse(readFileSync(p, "utf8"));
const png = new Uint8Array(readFileSync(join(EDIT, "inputs/test_pattern.png")));
const mask = new Uint8Array(readFileSync(join(EDIT, "inputs/mask.png")));

const models = new Map<string, Model>();
const modelFor = async (folder: string) => {
  let m = models.get(folder);
  if (!m) {
    const dir = FOLDERS[folder];
    if (!dir) throw new Error(`unknown pipeline folder ${folder}`);
    m = await loadModel(dir);
    models.set(folder, m);
  }
  return m;
};

try {
  for (const kind of sets) {
    const cdir = CASE_DIRS[kind];
    if (!cdir) throw new Error(`unknown case set ${kind}`);
    const index = readJson(join(cdir, "index.json")) as { cases: { name: string }[] };
    for (const { name } of index.cases) {
      const j = readJson(join(cdir, `${name}.json`));
      const model = await modelFor(j.pipeline_folder ?? "tiny-pipeline");
      const common = caseParams(j);
      const res =
        kind === "txt2img"
          ? await model.txt2img({ ...common, width: j.width, height: j.height, batchSize: j.num_images_per_prompt, noise: "batch" })
          : kind === "img2img"
            ? await model.img2img({ ...common, image: png, strength: j.strength })
            : await model.inpaint({ ...common, image: png, mask, strength: j.strength });
      const shape = [...res.latents.shape];
      await writeSafetensors(join(out, `${name}.sdts.safetensors`), {
        final_latent: { dtype: "F32", shape, data: Float32Array.from(res.latents.data) },
      });
      console.log(`${kind}/${name}: wrote ${shape.join("x")}`);
    }
  }
} finally {
  for (const m of models.values()) await m.dispose();
}
