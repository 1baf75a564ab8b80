/**
 * One training step of the embedded model's U-Net stage (the shipped recipe: default presets,
 * batch 64, the default VAE's latents (8×8×4 for 64×64 images), frozen text encoder inside the step, AdamW with clipping), sdts
 * against PyTorch + diffusers running the same networks from the same configs on this machine
 * (bench/torch_train_unet.py under the torch-peer's environment, run after sdts, never at the
 * same time). Random weights and batches: a step's time does not depend on their values.
 *
 * Run: npm run bench:train [-- --provider cpu|webgpu] [--steps N] [--warmup N] [--batch B]
 *      [--torch-device cpu|cuda|auto] [--no-torch]
 * The last line is `train step ratio vs torch: R` (sdts seconds / torch seconds; < 1 = sdts faster).
 * GPU: `--provider webgpu` (onnxruntime's WebGPU provider; on a machine with a GPU, torch picks CUDA).
 * SDTS_TORCH_PYTHON=python3 runs the peer with that interpreter and the caller's PYTHONPATH instead
 * of the torch-peer's environment (bench/gpu.sh does, on the lent GPU machine).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { parseClipTextConfig } from "../src/models/clip/config.js";
import { parseUNetConfig } from "../src/models/unet/config.js";
import { parseVaeConfig, vaeScaleFactor } from "../src/models/vae/config.js";
import type { HostTensor } from "../src/runtime/host-tensor.js";
import { parseProvider } from "../src/runtime/providers.js";
import { BPE_MERGES, CLIP_PRESETS, UNET_PRESETS, VAE_PRESETS } from "../src/train/presets.js";
import { Rng } from "../src/train/rng.js";
import { Trainer } from "../src/train/train-step.js";
import { initParams } from "../src/train/init.js";
import { UNET_OPTIMIZER, initUNetParams, unetLossGraph, unetModelConfig } from "../src/train/unet.js";
import { fmt, median } from "./util.js";

/** The project root: the first folder up from this file with a package.json (this file may run bundled, from .devdata/b). */
function projectRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, "package.json")) && dirname(d) !== d) d = dirname(d);
  return d;
}
const ROOT = projectRoot();
const PEER_ENV = join(ROOT, "..", "shared", "tools", "torch-peer", "env.sh");

const { values: a } = parseArgs({
  options: {
    provider: { type: "string", default: "cpu" },
    steps: { type: "string", default: "10" },
    warmup: { type: "string", default: "3" },
    batch: { type: "string", default: "64" },
    "torch-device": { type: "string", default: "auto" },
    "no-torch": { type: "boolean", default: false },
  },
});
const provider = parseProvider(a.provider ?? "cpu");
const [steps, warmup, batch] = [Number(a.steps), Number(a.warmup), Number(a.batch)];
// The default VAE's latents of the dataset's 64×64 images.
const SIDE = 64 / vaeScaleFactor(parseVaeConfig(VAE_PRESETS.default));
const LATENT = [4, SIDE, SIDE] as const;

// The recipe's configs: the text encoder's vocabulary is 512 byte tokens + the merges + BOS/EOS.
const textJson: Record<string, unknown> = { ...CLIP_PRESETS.default, vocab_size: 512 + BPE_MERGES.default + 2 };
const unetJson = unetModelConfig(UNET_PRESETS.default, LATENT[1], Number(textJson.hidden_size));

async function sdtsSteps(): Promise<{ stepsS: number[]; compileS: number; params: number }> {
  const text = parseClipTextConfig(textJson);
  const { loss, params, trainable } = unetLossGraph(text, parseUNetConfig(unetJson), batch, LATENT);
  const rng = new Rng(1);
  const init = initUNetParams(params, trainable, rng);
  for (const [k, v] of initParams(new Map([...params].filter(([k]) => !trainable.has(k))), rng)) init.set(k, v);
  const t0 = performance.now();
  const trainer = await Trainer.create(loss, params, init, { name: "bench-unet-train", trainable, provider, optimizer: UNET_OPTIMIZER });
  const compileS = (performance.now() - t0) / 1000;
  const per = LATENT[0] * LATENT[1] * LATENT[2];
  const len = text.maxPositions;
  const feeds = (): Record<string, HostTensor> => ({
    sample: { dtype: "float32", shape: [batch, ...LATENT], data: Float32Array.from(rng.normals(batch * per)) },
    target: { dtype: "float32", shape: [batch, ...LATENT], data: Float32Array.from(rng.normals(batch * per)) },
    timestep: { dtype: "float32", shape: [batch], data: Float32Array.from({ length: batch }, () => rng.int(1000)) },
    weight: { dtype: "float32", shape: [batch], data: new Float32Array(batch).fill(1 / batch) },
    input_ids: { dtype: "int64", shape: [batch, len], data: BigInt64Array.from({ length: batch * len }, () => BigInt(3 + rng.int(text.vocabSize - 3))) },
  });
  const stepsS: number[] = [];
  try {
    for (let i = 0; i < warmup + steps; i++) {
      const f = feeds();
      const s = performance.now();
      const r = await trainer.step(f, 1e-3);
      if (!Number.isFinite(r.loss)) throw new Error(`sdts step ${i}: loss ${r.loss}`);
      if (i >= warmup) stepsS.push((performance.now() - s) / 1000);
    }
  } finally {
    await trainer.dispose();
  }
  const count = [...trainable].reduce((n, k) => n + (init.get(k)?.data.length ?? 0), 0);
  return { stepsS, compileS, params: count };
}

/** The PyTorch step, or why it could not run. */
function torchSteps(): { step_s: number; device: string; threads: number; torch: string; params: number } | string {
  const python = process.env.SDTS_TORCH_PYTHON;
  if (python === undefined && !existsSync(PEER_ENV)) return `torch-peer not found at ${PEER_ENV}`;
  const dir = mkdtempSync(join(os.tmpdir(), "sdts-bench-train-"));
  try {
    const cfg = join(dir, "config.json");
    writeFileSync(cfg, JSON.stringify({ unet: unetJson, text: textJson, batch }));
    const args = [join(ROOT, "bench", "torch_train_unet.py"), cfg, "--steps", String(steps), "--warmup", String(warmup), "--device", a["torch-device"] ?? "auto", "--threads", String(os.availableParallelism())];
    const [cmd, argv] = python === undefined ? ["bash", ["-c", `. "${PEER_ENV}" && exec "$PY" "$@"`, "torch", ...args]] : [python, args];
    const r = spawnSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 16 << 20 });
    if (r.error || r.status !== 0) {
      const tail = (r.stderr ?? r.error?.message ?? "").trim().split("\n").slice(-3).join(" | ");
      return `torch exited ${r.status}: ${tail}; run ../shared/tools/torch-peer/setup.sh (see its README)`;
    }
    return JSON.parse(r.stdout.trim().split("\n").pop() ?? "");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const me = await sdtsSteps();
const sdtsS = median(me.stepsS);
console.log(`U-Net stage training step, batch ${batch}, ${LATENT.join("×")} latents, ${(me.params / 1e6).toFixed(2)}M trainable params`);
console.log(`sdts (${provider}, ${os.availableParallelism()} CPUs): ${fmt(sdtsS, 3)} s per step (median of ${steps} after ${warmup} warm-up; compile ${fmt(me.compileS, 1)} s) = ${fmt(1 / sdtsS, 2)} it/s`);
if (a["no-torch"]) process.exit(0);
const t = torchSteps();
if (typeof t === "string") {
  console.log(`torch: not run (${t})`);
  process.exit(0);
}
console.log(`torch ${t.torch} (${t.device}, ${t.threads} threads): ${fmt(t.step_s, 3)} s per step = ${fmt(1 / t.step_s, 2)} it/s (${(t.params / 1e6).toFixed(2)}M params)`);
if (t.params !== me.params) console.log(`WARNING: torch's U-Net has ${t.params} parameters, sdts's ${me.params}: not the same network`);
console.log(`train step ratio vs torch: ${fmt(sdtsS / t.step_s, 3)}`);
