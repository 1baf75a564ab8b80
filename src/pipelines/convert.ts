/**
 * Writing a single-file checkpoint in the original (CompVis/A1111) layout from a diffusers
 * folder — the key maps read right to left. SD 1.x layout (`cond_stage_model.transformer.*`).
 */
import { join } from "node:path";
import { CheckpointError } from "../errors.js";
import { type TensorInput, openSafetensors, writeSafetensors } from "../io/safetensors.js";
import { parseClipTextConfig } from "../models/clip/config.js";
import { clipTextKeyPairs } from "../models/clip/keys.js";
import { parseUNetConfig } from "../models/unet/config.js";
import { unetKeyPairs } from "../models/unet/keys.js";
import { parseVaeConfig } from "../models/vae/config.js";
import { vaeKeyPairs } from "../models/vae/keys.js";
import { componentWeights, readJsonIfExists } from "./sources.js";

interface Pair {
  readonly canonical: string;
  readonly source: string;
  readonly sourceShape?: readonly number[];
}

async function copyComponent(file: string, pairs: readonly Pair[], out: Map<string, TensorInput>): Promise<void> {
  const f = await openSafetensors(file);
  try {
    for (const p of pairs) {
      const info = f.tensors.get(p.canonical);
      if (info === undefined) throw new CheckpointError(`${file}: tensor '${p.canonical}' is missing`);
      const t = await f.read(p.canonical);
      out.set(p.source, { dtype: t.dtype, shape: p.sourceShape ?? info.shape, data: t.data });
    }
  } finally {
    await f.close();
  }
}

/** Converts a diffusers SD 1.x folder to one `.safetensors` file in the original layout (tensors keep their dtypes). */
export async function diffusersToSingleFile(dir: string, outPath: string): Promise<void> {
  const cfg = (sub: string) => {
    const j = readJsonIfExists(join(dir, sub, "config.json"));
    if (j === undefined) throw new CheckpointError(`${join(dir, sub)}: config.json is missing`);
    return j;
  };
  const out = new Map<string, TensorInput>();
  await copyComponent(componentWeights(join(dir, "unet"), "diffusion_pytorch_model"), unetKeyPairs(parseUNetConfig(cfg("unet"))), out);
  await copyComponent(componentWeights(join(dir, "vae"), "diffusion_pytorch_model"), vaeKeyPairs(parseVaeConfig(cfg("vae"))), out);
  await copyComponent(componentWeights(join(dir, "text_encoder"), "model"), clipTextKeyPairs(parseClipTextConfig(cfg("text_encoder")), "sd1"), out);
  await writeSafetensors(outPath, out, { format: "pt" });
}
