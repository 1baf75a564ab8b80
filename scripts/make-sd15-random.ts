/**
 * Writes an SD 1.5-architecture single-file checkpoint with random weights, in the original
 * CompVis/A1111 key layout (model.diffusion_model.*, first_stage_model.*,
 * cond_stage_model.transformer.*), for benchmarks and full-size load tests.
 *
 * Run: node --import tsx scripts/make-sd15-random.ts OUT.safetensors [--fp32] [--seed N]
 *
 * Values follow PyTorch's default initialisation, so activations stay in range through all
 * layers: Linear/Conv weights and biases U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5),
 * Embedding N(0, 1), norm scales 1 and shifts 0. fp16 by default (2.1 GB), fp32 with --fp32 (4.3 GB).
 */
import { resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { TensorInput } from "../src/io/safetensors.js";
import { f32ToF16, writeSafetensors } from "../src/io/safetensors.js";
import { SD15_CLIP } from "../src/models/clip/config.js";
import { clipTextKeyPairs } from "../src/models/clip/keys.js";
import { ClipTextEncoder } from "../src/models/clip/text-encoder.js";
import { SD15_UNET } from "../src/models/unet/config.js";
import { unetKeyPairs } from "../src/models/unet/keys.js";
import { UNet2DConditionModel } from "../src/models/unet/unet.js";
import { SD15_VAE } from "../src/models/vae/config.js";
import { vaeKeyPairs } from "../src/models/vae/keys.js";
import { VaeDecoder, VaeEncoder } from "../src/models/vae/vae.js";
import { ParamRegistry, Scope } from "../src/nn/scope.js";

/** A seeded xoshiro128** stream of 32-bit uniforms in [0, 1). */
class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  constructor(seed: number) {
    this.s0 = seed >>> 0 || 1;
    this.s1 = 0x9e3779b9;
    this.s2 = 0x243f6a88;
    this.s3 = 0xb7e15162;
    for (let i = 0; i < 16; i++) this.next();
  }
  /** xoshiro128** step: a uniform in [0, 1). */
  next(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return r / 4294967296;
  }
  /** A standard normal (Box–Muller). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Canonical key → shape, as a module declares its parameters. */
function declaredShapes(build: (s: Scope) => void): Map<string, readonly number[]> {
  const reg = new ParamRegistry();
  build(Scope.root(reg));
  return new Map([...reg.params].map(([k, t]) => [k, t.shape as number[]]));
}

/** PyTorch's default init for one parameter; `shapes` gives the sibling weight's fan-in for biases. */
function initValues(key: string, shape: readonly number[], shapes: ReadonlyMap<string, readonly number[]>, rng: Rng): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const isWeight = key.endsWith(".weight");
  const weightShape = isWeight ? shape : shapes.get(key.replace(/\.bias$/, ".weight"));
  if (/embedding\.weight$/.test(key)) {
    for (let i = 0; i < n; i++) out[i] = rng.normal();
    return out;
  }
  if (weightShape === undefined || weightShape.length === 1) {
    // GroupNorm / LayerNorm: scale 1, shift 0 (or a bias without a weight, left at 0)
    if (isWeight) out.fill(1);
    return out;
  }
  const fanIn = weightShape.slice(1).reduce((a, b) => a * b, 1);
  const bound = 1 / Math.sqrt(fanIn);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * bound;
  return out;
}

interface Pair {
  readonly canonical: string;
  readonly source: string;
  readonly sourceShape?: readonly number[];
}

function addComponent(
  out: Map<string, TensorInput>,
  pairs: readonly Pair[],
  shapes: ReadonlyMap<string, readonly number[]>,
  rng: Rng,
  fp32: boolean,
): number {
  let count = 0;
  for (const p of pairs) {
    const shape = shapes.get(p.canonical);
    if (shape === undefined) throw new Error(`key map names '${p.canonical}', which the model does not declare`);
    const values = initValues(p.canonical, shape, shapes, rng);
    count += values.length;
    const stored = p.sourceShape ?? shape;
    out.set(p.source, fp32 ? { dtype: "F32", shape: stored, data: values } : { dtype: "F16", shape: stored, data: f32ToF16(values) });
  }
  return count;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const fp32 = args.includes("--fp32");
  const seedAt = args.indexOf("--seed");
  const seed = seedAt >= 0 ? Number(args[seedAt + 1]) : 0;
  const positional = args.filter((a, i) => !a.startsWith("--") && (seedAt < 0 || i !== seedAt + 1));
  if (positional.length !== 1 || !Number.isInteger(seed)) {
    console.error("usage: node --import tsx scripts/make-sd15-random.ts OUT.safetensors [--fp32] [--seed N]");
    process.exitCode = 2;
    return;
  }
  const path = resolve(positional[0] as string);
  const repo = resolve(fileURLToPath(new URL("..", import.meta.url)));
  if (path.startsWith(repo + sep)) {
    console.error(`refusing to write a multi-GB checkpoint inside the repository (${path}); pick a path outside ${repo}`);
    process.exitCode = 2;
    return;
  }
  const t0 = performance.now();
  const rng = new Rng(seed);
  const tensors = new Map<string, TensorInput>();
  const unet = addComponent(tensors, unetKeyPairs(SD15_UNET), declaredShapes((s) => new UNet2DConditionModel(s, SD15_UNET)), rng, fp32);
  const vaeShapes = declaredShapes((s) => {
    new VaeEncoder(s, SD15_VAE);
    new VaeDecoder(s, SD15_VAE);
  });
  const vae = addComponent(tensors, vaeKeyPairs(SD15_VAE), vaeShapes, rng, fp32);
  const clip = addComponent(tensors, clipTextKeyPairs(SD15_CLIP, "sd1"), declaredShapes((s) => new ClipTextEncoder(s, SD15_CLIP)), rng, fp32);
  await writeSafetensors(path, tensors, { format: "pt", sdts: `random SD1.5 architecture, seed ${seed}` });
  const m = (n: number) => `${(n / 1e6).toFixed(1)}M`;
  console.log(
    `wrote ${path}: ${tensors.size} tensors (${fp32 ? "F32" : "F16"}), U-Net ${m(unet)}, VAE ${m(vae)}, CLIP ${m(clip)} parameters, ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}

await main();
