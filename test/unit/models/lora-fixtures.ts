/**
 * Small LoRA files for the tiny models (../shared/golden/tiny-pipeline), in kohya (diffusers or
 * CompVis module names) and PEFT layouts, and merged copies of the model: W + w·(alpha/rank)·up·down
 * computed here from the factors, independently of the LoRA reader under test.
 */
import { mkdir, symlink, copyFile } from "node:fs/promises";
import { join } from "node:path";
import { f16ToF32, f32ToF16, openSafetensors, writeSafetensors, type TensorInput } from "../../../src/io/safetensors.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

/** The tiny-pipeline diffusers folder. */
export const TINY = join(GOLDEN_DIR, "tiny-pipeline");

/** One module's factors as a test writes them. */
export interface Factor {
  readonly component: "unet" | "textEncoder";
  readonly path: string;
  /** CompVis module path (U-Net only), for kohya files in the original layout. */
  readonly compvis?: string;
  readonly rank: number;
  readonly alpha?: number;
  /** [r, in] or [r, in, k, k]. */
  readonly downShape: readonly number[];
  /** [out, r] or [out, r, 1, 1]. */
  readonly upShape: readonly number[];
  readonly down: Float32Array;
  readonly up: Float32Array;
}

/** mulberry32: a small seeded generator, uniform in [−a, a). */
export function uniform(seed: number, n: number, a: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 * a - a;
  }
  // Round to fp16 so that files written as F16 hold exactly these values.
  return f16ToF32(f32ToF16(out));
}

/** A factor for a module with `inF` inputs, `outF` outputs and kernel `k` (conv when `conv`). */
export function factor(seed: number, component: Factor["component"], path: string, inF: number, outF: number, o: { rank?: number; alpha?: number; k?: number; conv?: boolean; compvis?: string } = {}): Factor {
  const r = o.rank ?? 4;
  const k = o.k ?? 1;
  const downShape = o.conv ? [r, inF, k, k] : [r, inF];
  const upShape = o.conv ? [outF, r, 1, 1] : [outF, r];
  return {
    component,
    path,
    rank: r,
    ...(o.alpha === undefined ? {} : { alpha: o.alpha }),
    ...(o.compvis === undefined ? {} : { compvis: o.compvis }),
    downShape,
    upShape,
    down: uniform(seed, r * inF * k * k, 0.3),
    up: uniform(seed + 1, outF * r, 0.3),
  };
}

/** Tensors of a LoRA file in a layout. */
export function loraTensors(factors: readonly Factor[], layout: "kohya" | "kohya-compvis" | "peft"): Map<string, TensorInput> {
  const out = new Map<string, TensorInput>();
  for (const f of factors) {
    if (layout === "peft") {
      const base = `${f.component === "unet" ? "unet" : "text_encoder"}.${f.path}`;
      out.set(`${base}.lora_A.weight`, { dtype: "F16", shape: f.downShape, data: f.down });
      out.set(`${base}.lora_B.weight`, { dtype: "F16", shape: f.upShape, data: f.up });
      if (f.alpha !== undefined) out.set(`${base}.alpha`, { dtype: "F32", shape: [], data: Float32Array.of(f.alpha) });
      continue;
    }
    const module = layout === "kohya-compvis" && f.compvis !== undefined ? f.compvis : f.path;
    const base = `${f.component === "unet" ? "lora_unet" : "lora_te"}_${module.replaceAll(".", "_")}`;
    out.set(`${base}.lora_down.weight`, { dtype: "F16", shape: f.downShape, data: f.down });
    out.set(`${base}.lora_up.weight`, { dtype: "F16", shape: f.upShape, data: f.up });
    if (f.alpha !== undefined) out.set(`${base}.alpha`, { dtype: "F32", shape: [], data: Float32Array.of(f.alpha) });
  }
  return out;
}

/** ΔW = (alpha/rank)·up·down of one factor, [out, in·k·k], in float64 then float32. */
export function delta(f: Factor): Float32Array {
  const out = f.upShape[0] ?? 0;
  const cols = f.down.length / f.rank;
  const s = (f.alpha ?? f.rank) / f.rank;
  const d = new Float32Array(out * cols);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < cols; c++) {
      let acc = 0;
      for (let j = 0; j < f.rank; j++) acc += (f.up[o * f.rank + j] ?? 0) * (f.down[j * cols + c] ?? 0);
      d[o * cols + c] = s * acc;
    }
  }
  return d;
}

async function mergeFile(src: string, dst: string, adds: readonly { key: string; delta: Float32Array; weight: number }[]): Promise<void> {
  const file = await openSafetensors(src);
  const tensors = new Map<string, TensorInput>();
  try {
    for (const [name, info] of file.tensors) {
      const data = Float32Array.from(await file.readAsFloat32(name));
      for (const a of adds) {
        if (a.key !== name) continue;
        if (a.delta.length !== data.length) throw new Error(`merge: ${name} has ${data.length} values, delta ${a.delta.length}`);
        for (let i = 0; i < data.length; i++) data[i] = (data[i] ?? 0) + a.weight * (a.delta[i] ?? 0);
      }
      tensors.set(name, { dtype: "F32", shape: info.shape, data });
    }
  } finally {
    await file.close();
  }
  await writeSafetensors(dst, tensors);
}

/** A copy of the tiny pipeline at `dir` with these LoRAs merged into the U-Net and text encoder weights. */
export async function mergedModel(dir: string, loras: readonly { factors: readonly Factor[]; weight: number }[]): Promise<string> {
  await mkdir(join(dir, "unet"), { recursive: true });
  await mkdir(join(dir, "text_encoder"), { recursive: true });
  for (const name of ["model_index.json", "scheduler", "tokenizer", "vae"]) await symlink(join(TINY, name), join(dir, name));
  await copyFile(join(TINY, "unet", "config.json"), join(dir, "unet", "config.json"));
  await copyFile(join(TINY, "text_encoder", "config.json"), join(dir, "text_encoder", "config.json"));
  const adds = (component: Factor["component"]) =>
    loras.flatMap((l) => l.factors.filter((f) => f.component === component).map((f) => ({ key: `${f.path}.weight`, delta: delta(f), weight: l.weight })));
  await mergeFile(join(TINY, "unet", "diffusion_pytorch_model.safetensors"), join(dir, "unet", "diffusion_pytorch_model.safetensors"), adds("unet"));
  await mergeFile(join(TINY, "text_encoder", "model.safetensors"), join(dir, "text_encoder", "model.safetensors"), adds("textEncoder"));
  return dir;
}

/** LoRA A: kohya-style, alpha 2 at rank 4: attention q/k/v/out, GEGLU in and out, proj_in (a 1×1 conv), a 3×3 and a strided conv, and text encoder layer 0. */
export function loraA(): Factor[] {
  const t = "down_blocks.1.attentions.0";
  const tb = `${t}.transformer_blocks.0`;
  const cv = "input_blocks.4.1";
  const cb = `${cv}.transformer_blocks.0`;
  const te = "text_model.encoder.layers.0";
  const o = { alpha: 2 };
  return [
    factor(1, "unet", `${tb}.attn1.to_q`, 64, 64, { ...o, compvis: `${cb}.attn1.to_q` }),
    factor(3, "unet", `${tb}.attn1.to_k`, 64, 64, { ...o, compvis: `${cb}.attn1.to_k` }),
    factor(5, "unet", `${tb}.attn2.to_v`, 32, 64, { ...o, compvis: `${cb}.attn2.to_v` }),
    factor(7, "unet", `${tb}.attn1.to_out.0`, 64, 64, { ...o, compvis: `${cb}.attn1.to_out.0` }),
    factor(9, "unet", `${tb}.ff.net.0.proj`, 64, 512, { ...o, compvis: `${cb}.ff.net.0.proj` }),
    factor(11, "unet", `${tb}.ff.net.2`, 256, 64, { ...o, compvis: `${cb}.ff.net.2` }),
    factor(13, "unet", `${t}.proj_in`, 64, 64, { ...o, conv: true, compvis: `${cv}.proj_in` }),
    factor(15, "unet", "down_blocks.0.resnets.0.conv1", 32, 32, { ...o, conv: true, k: 3, compvis: "input_blocks.1.0.in_layers.2" }),
    factor(17, "unet", "down_blocks.0.downsamplers.0.conv", 32, 32, { ...o, conv: true, k: 3, compvis: "input_blocks.3.0.op" }),
    factor(19, "textEncoder", `${te}.self_attn.q_proj`, 32, 32, o),
    factor(21, "textEncoder", `${te}.self_attn.k_proj`, 32, 32, o),
    factor(23, "textEncoder", `${te}.self_attn.v_proj`, 32, 32, o),
    factor(25, "textEncoder", `${te}.self_attn.out_proj`, 32, 32, o),
    factor(27, "textEncoder", `${te}.mlp.fc1`, 32, 37, o),
    factor(29, "textEncoder", `${te}.mlp.fc2`, 37, 32, o),
  ];
}

/** LoRA B: PEFT-style, rank 2, no alpha; overlaps A on to_q and fc1, adds the up path and a resnet's time projection. */
export function loraB(): Factor[] {
  const tb = "up_blocks.0.attentions.1.transformer_blocks.0";
  return [
    factor(31, "unet", "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 64, 64, { rank: 2 }),
    factor(33, "unet", `${tb}.attn2.to_k`, 32, 64, { rank: 2 }),
    factor(35, "unet", `${tb}.attn1.to_out.0`, 64, 64, { rank: 2 }),
    factor(37, "unet", "up_blocks.1.resnets.0.time_emb_proj", 128, 32, { rank: 2 }),
    factor(39, "unet", "up_blocks.1.resnets.0.conv2", 32, 32, { rank: 2, conv: true, k: 3 }),
    factor(41, "textEncoder", "text_model.encoder.layers.1.mlp.fc1", 32, 37, { rank: 2 }),
    factor(43, "textEncoder", "text_model.encoder.layers.0.mlp.fc1", 32, 37, { rank: 2 }),
  ];
}
