/**
 * The SD 1.5 U-Net at 512×512 with CFG (batch 2), sdts against PyTorch on this machine: seconds
 * per U-Net step, achieved GFLOP/s, load time and peak RSS. PyTorch is the torch-peer tool
 * (../shared/tools/torch-peer: diffusers on Debian's python3-torch), run after sdts, never at
 * the same time. Each side runs in its own process, so its peak RSS is its own. sdts loads twice,
 * from an empty cache folder (cold: hard link, fp16 → fp32 widening, graph optimization, saved)
 * and again from that folder (warm: the saved optimized graph), which then runs the steps.
 *
 * Run: npm run bench:sd [-- CHECKPOINT.safetensors]. Without a checkpoint, a random-weight fp16
 * SD 1.5 one is made once with scripts/make-sd15-random.ts under the cache root
 * ($SDTS_CACHE or ~/.cache/sdts). Env: SDTS_BENCH_RUNS (timed steps per side, default 3),
 * SDTS_BENCH_SIZE (image size, default 512). The last line is `unet step ratio vs torch: R`.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Op } from "../src/graph/op.js";
import type { Tensor } from "../src/graph/tensor.js";
import { topoNodes } from "../src/graph/tensor.js";
import { openSafetensors } from "../src/io/safetensors.js";
import { loadComponent } from "../src/models/component.js";
import { SD15_UNET } from "../src/models/unet/config.js";
import { SD_UNET_PREFIX, detectOriginalUNetConfig, unetWeights } from "../src/models/unet/keys.js";
import { buildUNetGraph } from "../src/models/unet/unet.js";
import { ParamRegistry, Scope } from "../src/nn/scope.js";
import { defaultCacheRoot } from "../src/runtime/model-cache.js";
import { fmt, median, randomF32 } from "./util.js";

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const PEER = join(ROOT, "..", "shared", "tools", "torch-peer", "peer.py");
/** 3×3 conv 320→320 at 64×64 through sdts, as bench/engine.ts measured it on this machine. */
const CONV_PEAK_GFLOPS = 135;
const BATCH = 2;

/** What one side reports. */
interface SideResult {
  readonly loadS: number;
  readonly stepsS: readonly number[];
  readonly peakRssMiB: number;
  readonly note: string;
}

function vmHwmMiB(): number {
  const m = /VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

/** FLOPs of one SD 1.5 U-Net forward for one sample: 2·MACs of every Conv, MatMul and attention product in the sdts graph. */
function unetFlops(latent: number): number {
  const outs = buildUNetGraph(Scope.root(new ParamRegistry()), SD15_UNET, { batch: 1, height: latent, width: latent });
  let flops = 0;
  const numel = (t: Tensor) => (t.shape as number[]).reduce((a, b) => a * b, 1);
  for (const n of topoNodes(Object.values(outs))) {
    const out = n.outputs[0] as Tensor;
    if (n.op === Op.Conv || n.op === Op.ConvTranspose) {
      const w = n.inputs[1] as Tensor;
      flops += 2 * numel(out) * (numel(w) / (w.shape[0] as number)); // each output: Cin/g·kh·kw MACs
    } else if (n.op === Op.MatMul) {
      const a = n.inputs[0] as Tensor;
      flops += 2 * numel(out) * (a.shape[a.rank - 1] as number);
    } else if (n.op === Op.MultiHeadAttention) {
      const [q, k] = n.inputs as [Tensor, Tensor];
      const lk = k.shape[1] as number;
      flops += 2 * numel(q) * lk + 2 * numel(out) * lk; // q·kᵀ, then probabilities·v
    }
  }
  return flops;
}

/** The sdts side, in this (child) process: open, build, bind and compile the U-Net; then time `runs` steps. */
async function sdtsWorker(ckpt: string, size: number, runs: number, cacheDir: string): Promise<void> {
  const t0 = performance.now();
  const file = await openSafetensors(ckpt);
  const shapes = new Map([...file.tensors].map(([k, t]) => [k, t.shape] as const));
  const config = detectOriginalUNetConfig(shapes, SD_UNET_PREFIX);
  const h = size / 8;
  const unet = await loadComponent(`unet[bench-${BATCH}x${h}]`, (root) => buildUNetGraph(root, config, { batch: BATCH, height: h, width: h }), unetWeights(file, config), { cacheDir });
  const loadS = (performance.now() - t0) / 1000;
  const rssAfterLoad = vmHwmMiB();
  const feeds = {
    sample: { dtype: "float32", shape: [BATCH, 4, h, h], data: randomF32(BATCH * 4 * h * h, 1) },
    timestep: { dtype: "float32", shape: [BATCH], data: new Float32Array(BATCH).fill(500) },
    encoder_hidden_states: { dtype: "float32", shape: [BATCH, 77, config.crossAttentionDim], data: randomF32(BATCH * 77 * config.crossAttentionDim, 2) },
  } as const;
  const stepsS: number[] = [];
  let warmupS = 0;
  for (let i = 0; i <= runs && runs > 0; i++) {
    const t = performance.now();
    const out = await unet.run(feeds);
    const s = (performance.now() - t) / 1000;
    if (!(out["out"]?.data as Float32Array).every(Number.isFinite)) throw new Error("sdts U-Net output is not finite");
    if (i === 0) warmupS = s;
    else stepsS.push(s);
  }
  await unet.dispose();
  await file.close();
  const note = `warm-up step ${fmt(warmupS, 2)} s, peak RSS after load ${fmt(rssAfterLoad / 1024, 2)} GiB`;
  const result: SideResult = { loadS, stepsS, peakRssMiB: vmHwmMiB(), note };
  console.log(JSON.stringify(result));
}

/** Runs the sdts side in a fresh process (its own peak RSS); returns its report. */
function runSdts(ckpt: string, size: number, runs: number, cacheDir: string): SideResult {
  const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--sdts-worker", ckpt, String(size), String(runs), cacheDir], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 16 << 20,
  });
  if (r.status !== 0) throw new Error(`sdts worker failed (exit ${r.status})`);
  return JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as SideResult;
}

/** Runs torch-peer; returns its report, or the reason it could not run. */
function runTorch(ckpt: string, size: number, runs: number): SideResult | string {
  if (!existsSync(PEER)) return `torch-peer not found at ${PEER}`;
  const r = spawnSync("/usr/bin/python3", [PEER, ckpt, "--unet", String(size), "--batch", String(BATCH), "--repeat", String(runs), "--threads", String(os.availableParallelism()), "--json"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 16 << 20,
  });
  if (r.error) return `could not start /usr/bin/python3 (${r.error.message}); install python3-torch and run ../shared/tools/torch-peer/setup.sh`;
  if (r.status !== 0) {
    const tail = (r.stderr ?? "").trim().split("\n").slice(-3).join(" | ");
    return `torch-peer exited ${r.status}: ${tail}; run ../shared/tools/torch-peer/setup.sh (see its README)`;
  }
  // One JSON object on the last line of stdout (see the peer's README).
  const ref = JSON.parse(r.stdout.trim().split("\n").pop() ?? "") as {
    import_s: number;
    load_s: number;
    peak_rss_mib: number;
    torch: string;
    blas: string;
    threads: number;
    results: { unet: { median_s: number; runs_s: number[]; warmup_s: number } };
  };
  const u = ref.results.unet;
  return {
    loadS: ref.import_s + ref.load_s,
    stepsS: u.runs_s,
    peakRssMiB: ref.peak_rss_mib,
    note: `imports ${fmt(ref.import_s, 1)} s + load/convert ${fmt(ref.load_s, 1)} s, warm-up ${fmt(u.warmup_s, 2)} s, torch ${ref.torch}, ${ref.blas}, ${ref.threads} threads`,
  };
}

/** The default checkpoint: made once under the cache root. */
function defaultCheckpoint(): string {
  const path = join(defaultCacheRoot(), "bench", "sd15-random-fp16.safetensors");
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    console.log(`making ${path} (random SD 1.5 weights, fp16, ~2 GB; once)`);
    execFileSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "make-sd15-random.ts"), path], { cwd: ROOT, stdio: "inherit" });
  }
  return path;
}

function line(name: string, r: SideResult, flopsPerStep: number): string {
  const step = median(r.stepsS);
  const gflops = flopsPerStep / step / 1e9;
  return (
    `${name}: step ${fmt(step, 2)} s (median of ${r.stepsS.map((s) => fmt(s, 2)).join(", ")}), ${fmt(gflops, 1)} GFLOP/s ` +
    `(${fmt((100 * gflops) / CONV_PEAK_GFLOPS, 0)}% of the conv peak), load ${fmt(r.loadS, 1)} s${name === "sdts " ? " (warm cache)" : ""}, peak RSS ${fmt(r.peakRssMiB / 1024, 2)} GiB; ${r.note}`
  );
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--sdts-worker") return sdtsWorker(args[1] as string, Number(args[2]), Number(args[3]), args[4] as string);
  const size = Number(process.env.SDTS_BENCH_SIZE ?? 512);
  const runs = Number(process.env.SDTS_BENCH_RUNS ?? 3);
  const ckpt = args[0] ?? defaultCheckpoint();
  const file = await openSafetensors(ckpt);
  const dtypes = [...new Set([...file.tensors.values()].filter((t) => t.name.startsWith(SD_UNET_PREFIX)).map((t) => t.dtype))].join("+");
  await file.close();
  const perSample = unetFlops(size / 8);
  const flopsPerStep = BATCH * perSample;
  console.log(`sd bench: ${ckpt} (U-Net ${dtypes}, ${fmt(statSync(ckpt).size / 2 ** 30, 2)} GiB file), ${size}×${size}, CFG batch ${BATCH}, ${os.availableParallelism()} threads, ${os.cpus()[0]?.model ?? "cpu"}`);
  console.log(`U-Net forward: ${fmt(perSample / 1e12, 3)} TFLOP per sample (2 × MACs of every Conv, MatMul and attention product in the sdts graph; norms and pointwise ops not counted), ${fmt(flopsPerStep / 1e12, 3)} TFLOP per CFG step`);
  console.log(`conv peak: ~${CONV_PEAK_GFLOPS} GFLOP/s (bench/engine.ts, 3×3 conv 320→320 at 64×64 through sdts, this machine)`);
  const loadAvg = () => os.loadavg().map((x) => fmt(x, 2)).join(" ");
  console.log(`load average before: ${loadAvg()} (other processes on these cores slow both sides)`);
  mkdirSync(defaultCacheRoot(), { recursive: true });
  const cache = mkdtempSync(join(defaultCacheRoot(), "bench-cache-"));
  let sdts: SideResult;
  try {
    const cold = runSdts(ckpt, size, 0, cache);
    console.log(`sdts cold load (empty cache folder): ${fmt(cold.loadS, 1)} s, peak RSS ${fmt(cold.peakRssMiB / 1024, 2)} GiB`);
    sdts = runSdts(ckpt, size, runs, cache);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
  console.log(line("sdts ", sdts, flopsPerStep));
  const torch = runTorch(ckpt, size, runs);
  if (typeof torch === "string") {
    console.log(`torch: not run: ${torch}`);
    console.log(`load average after: ${loadAvg()}`);
    console.log(`unet step ratio vs torch: n/a (${torch})`);
    return;
  }
  console.log(line("torch", torch, flopsPerStep));
  console.log(`load average after: ${loadAvg()}`);
  console.log(`unet step ratio vs torch: ${fmt(median(sdts.stepsS) / median(torch.stepsS), 3)}`);
}

await main();
