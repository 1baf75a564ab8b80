/**
 * GPU checks for the lent device machine (bench/gpu.sh runs them there, each under a timeout):
 *
 *   node --import tsx bench/gpu.ts golden TINY_PIPELINE_DIR PROVIDER
 *     every tiny-pipeline golden case through loadModel(folder, { provider }) and txt2img with
 *     the case's recorded initial noise (and its seed, for samplers that draw): max abs
 *     difference of the final latents against the recorded ones (the README's tolerance: 1e-4;
 *     the CPU golden test allows 2.5e-4).
 *   node --import tsx bench/gpu.ts speed CHECKPOINT PROVIDER STEPS [RUNS]
 *     loadModel time, then RUNS (default 2) 512×512 txt2img runs (Euler, CFG 7.5, batch 1),
 *     each end to end, with the per-step time from the progress callback (one U-Net call of
 *     batch 2 per step) and the time after the last step (VAE decode + PNG).
 *
 * Every line goes to stdout with the seconds since the process started, and is appended to
 * $OUT/gpu.txt when OUT is set (SDTS_GPU_REPORT overrides the file). SDTS_GPU_SIZE changes the
 * speed runs' image size (default 512), for trying the script out on a CPU.
 */
import { appendFileSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { loadModel } from "../src/pipelines/load-model.js";
import type { Model } from "../src/pipelines/model.js";
import { ortVersion, parseProvider } from "../src/runtime/providers.js";
import { type GoldenCase, caseParams, readCase } from "../test/unit/pipelines/golden-util.js";
import { fmt, median } from "./util.js";

const T0 = performance.now();
/** Image size of the speed runs (512; smaller only for trying the script out on a CPU). */
const SIZE = Number(process.env.SDTS_GPU_SIZE ?? 512);
const REPORT = process.env.SDTS_GPU_REPORT ?? (process.env.OUT ? join(process.env.OUT, "gpu.txt") : undefined);

function say(msg: string): void {
  const line = `[${fmt((performance.now() - T0) / 1000, 1).padStart(6)} s] ${msg}`;
  console.log(line);
  if (REPORT) appendFileSync(REPORT, line + "\n");
}

/** The error's message and first stack frames, verbatim. */
function errText(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? "\n" + e.stack.split("\n").slice(1, 6).join("\n") : ""}`;
  return String(e);
}

interface CaseJson extends GoldenCase {
  num_images_per_prompt: number;
  height: number;
  width: number;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Number.NaN;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (!(d <= m)) m = d; // NaN propagates
  }
  return m;
}

async function golden(dir: string, providerName: string): Promise<void> {
  const provider = parseProvider(providerName);
  const index = JSON.parse(readFileSync(join(dir, "cases", "index.json"), "utf8")) as { cases: { name: string; file: string }[] };
  say(`golden ${provider}: ${index.cases.length} tiny-pipeline cases, onnxruntime-node ${ortVersion()}`);
  let model: Model;
  const t = performance.now();
  try {
    model = await loadModel(dir, { provider });
  } catch (e) {
    say(`golden ${provider}: loadModel FAILED: ${errText(e)}`);
    process.exitCode = 1;
    return;
  }
  say(`golden ${provider}: loadModel ${fmt((performance.now() - t) / 1000, 2)} s`);
  const worst: number[] = [];
  try {
    for (const c of index.cases) {
      const j = JSON.parse(readFileSync(join(dir, "cases", `${c.name}.json`), "utf8")) as CaseJson;
      const file = join(dir, "cases", c.file);
      const tensors = await readCase(file);
      const [noise, final] = [tensors.get("noise"), tensors.get("final_latent")];
      if (!noise || !final) throw new Error(`${file} lacks noise or final_latent`);
      const t1 = performance.now();
      try {
        const res = await model.txt2img({
          ...caseParams(j),
          width: j.width,
          height: j.height,
          batchSize: j.num_images_per_prompt,
          noise: "batch",
          latents: noise,
        });
        const d = maxAbsDiff(res.latents.data, final.data);
        let ref = 0;
        for (const v of final.data) ref = Math.max(ref, Math.abs(v));
        worst.push(d);
        say(
          `golden ${provider}: ${c.name.padEnd(16)} max|Δ| ${d.toExponential(3)} (max|ref| ${fmt(ref, 2)}, ${d <= 1e-4 ? "≤ 1e-4" : d <= 2.5e-4 ? "≤ 2.5e-4 (test's bound)" : "OVER 2.5e-4"}), ` +
            `${j.num_inference_steps} steps, batch ${j.num_images_per_prompt}, ${fmt((performance.now() - t1) / 1000, 2)} s`,
        );
      } catch (e) {
        worst.push(Number.NaN);
        say(`golden ${provider}: ${c.name} FAILED: ${errText(e)}`);
        process.exitCode = 1;
        if (/adapter|vulkan|dawn/i.test(String(e))) break; // no GPU: the other cases would say the same
      }
    }
  } finally {
    await model.dispose();
  }
  say(`golden ${provider}: worst max|Δ| over cases ${Math.max(...worst).toExponential(3)}`);
}

async function speed(ckpt: string, providerName: string, steps: number, runs: number): Promise<void> {
  const provider = parseProvider(providerName);
  say(`speed ${provider}: ${ckpt}, ${SIZE}×${SIZE}, Euler, CFG 7.5, batch 1, ${steps} steps, ${runs} run(s), ${os.availableParallelism()} CPU threads`);
  let t = performance.now();
  let model: Model;
  try {
    model = await loadModel(ckpt, { provider });
  } catch (e) {
    say(`speed ${provider}: loadModel FAILED: ${errText(e)}`);
    process.exitCode = 1;
    return;
  }
  say(`speed ${provider}: loadModel ${fmt((performance.now() - t) / 1000, 2)} s (headers and configs; sessions are made on first use)`);
  try {
    for (let r = 0; r < runs; r++) {
      const marks: number[] = [];
      t = performance.now();
      const res = await model.txt2img({
        prompt: "a lighthouse at dawn, oil painting",
        negativePrompt: "blurry",
        steps,
        cfgScale: 7.5,
        sampler: "Euler",
        seed: 1234,
        width: SIZE,
        height: SIZE,
        batchSize: 1,
        onProgress: () => {
          marks.push(performance.now());
        },
      });
      const end = performance.now();
      const total = (end - t) / 1000;
      const first = ((marks[0] ?? end) - t) / 1000;
      const deltas = marks.slice(1).map((m, i) => (m - (marks[i] as number)) / 1000);
      const tail = (end - (marks[marks.length - 1] ?? t)) / 1000;
      const finite = res.latents.data.every(Number.isFinite);
      const label = r === 0 ? "run 1 (cold: builds and opens the U-Net, text encoder and VAE sessions)" : `run ${r + 1} (warm)`;
      say(`speed ${provider}: ${label}: end to end ${fmt(total, 2)} s; latents finite: ${finite}`);
      say(
        `speed ${provider}:   until step 1 done ${fmt(first, 3)} s (prompt encoding + first U-Net call)` +
          (deltas.length ? `; steps 2..${steps}: median ${fmt(median(deltas), 4)} s, min ${fmt(Math.min(...deltas), 4)}, max ${fmt(Math.max(...deltas), 4)} s per step (one U-Net call, batch 2)` : "") +
          `; after last step ${fmt(tail, 3)} s (VAE decode + PNG)`,
      );
      if (deltas.length) say(`speed ${provider}:   per-step s: ${deltas.map((d) => fmt(d, 3)).join(" ")}`);
    }
  } catch (e) {
    say(`speed ${provider}: txt2img FAILED: ${errText(e)}`);
    process.exitCode = 1;
  } finally {
    t = performance.now();
    await model.dispose();
    say(`speed ${provider}: dispose ${fmt((performance.now() - t) / 1000, 2)} s`);
  }
}

async function main(): Promise<void> {
  const [cmd, a, b, c, d] = process.argv.slice(2);
  if (cmd === "golden" && a && b) return golden(a, b);
  if (cmd === "speed" && a && b) return speed(a, b, Number(c ?? 20), Number(d ?? 2));
  console.error("usage: node --import tsx bench/gpu.ts golden DIR PROVIDER | speed CHECKPOINT PROVIDER [STEPS] [RUNS]");
  process.exitCode = 2;
}

await main();
