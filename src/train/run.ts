/**
 * The training loop shared by the three stages: learning-rate schedule, loss log, checkpoints,
 * sample grids and progress; a stage supplies its trainer, batches and samples.
 */
import { join } from "node:path";
import { InputError } from "../errors.js";
import { appendLine, ensureDir, pathExists, readJsonFile, readTextFile, writeFileAtomic, writeJsonFile } from "../io/run-files.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Provider } from "../runtime/providers.js";
import { type RunState, loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { type CaptionAugment, CaptionDistractors, CaptionNoise } from "./data.js";
import { Rng } from "./rng.js";
import type { Trainer } from "./train-step.js";

/** Options every stage takes (the CLI's --steps, --batch, --lr, --resume, --sample-every, --save-every). */
export interface TrainOptions {
  readonly steps: number;
  readonly batch: number;
  readonly lr: number;
  /** Continue from the run folder's checkpoint at its step. */
  readonly resume?: boolean;
  readonly saveEvery?: number;
  readonly sampleEvery?: number;
  /** Linear warm-up steps before the cosine decay (default min(200, steps / 10)). */
  readonly warmup?: number;
  readonly seed?: number;
  readonly provider?: Provider;
  /** Called after every step. */
  readonly onProgress?: (p: TrainProgress) => void;
  /** Only the first N images of the data folder (tests, quick checks). */
  readonly limit?: number;
}

/** One step's report. */
export interface TrainProgress {
  readonly step: number;
  readonly total: number;
  readonly loss: number;
  readonly lr: number;
  /** The step the run (re)started at, for a rate that counts only this session's steps. */
  readonly startStep: number;
}

/** What a finished (or stopped) run reports. */
export interface TrainResult {
  readonly runDir: string;
  readonly step: number;
  readonly startStep: number;
  readonly losses: readonly number[];
  readonly seconds: number;
  readonly checkpoint: string;
}

/** What a stage gives the loop. */
export interface Stage {
  readonly kind: string;
  readonly trainer: Trainer;
  /** The feeds of one step, drawn with `rng`. */
  batch(rng: Rng): Record<string, HostTensor>;
  /** After each optimizer step (e.g. the EMA update). */
  afterStep?(step: number): void;
  /** Extra tensors to checkpoint (EMA weights). */
  extraState?(): ReadonlyMap<string, HostTensor>;
  /** A PNG sample grid of the current weights. */
  sample?(step: number): Promise<Uint8Array>;
  dispose(): Promise<void>;
}

/** File names inside a run folder. */
export const RUN_FILES = { config: "config.json", checkpoint: "checkpoint.safetensors", log: "loss.jsonl", samples: "samples" } as const;

/** Checks the shared numeric options; an InputError names the bad one. */
export function checkTrainOptions(o: TrainOptions): void {
  const int = (v: number | undefined, name: string, min: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new InputError(`--${name} must be a whole number ≥ ${min} (got ${v})`);
  };
  int(o.steps, "steps", 1);
  int(o.batch, "batch", 1);
  int(o.saveEvery, "save-every", 1);
  int(o.sampleEvery, "sample-every", 1);
  int(o.warmup, "warmup", 0);
  if (!(o.lr > 0 && o.lr < 1)) throw new InputError(`--lr must be a number in (0, 1) (got ${o.lr})`);
}

/** Warm-up then cosine decay to 10% of `lr`. */
export function learningRate(step: number, o: TrainOptions): number {
  const warm = o.warmup ?? Math.min(200, Math.floor(o.steps / 10));
  if (step < warm) return (o.lr * (step + 1)) / warm;
  const p = Math.min(1, (step - warm) / Math.max(1, o.steps - warm));
  return o.lr * (0.1 + 0.45 * (1 + Math.cos(Math.PI * p)));
}

/** The run's saved state when resuming (checking it exists), or undefined for a fresh run (refusing to overwrite one). */
export async function openRun(runDir: string, kind: string, o: TrainOptions): Promise<RunState | undefined> {
  const ckpt = join(runDir, RUN_FILES.checkpoint);
  if (o.resume === true) {
    if (!pathExists(ckpt)) throw new InputError(`--resume: ${ckpt} does not exist; start the run without --resume`);
    return loadCheckpoint(ckpt, kind);
  }
  if (pathExists(ckpt)) throw new InputError(`${runDir} already holds a ${kind} run; pass --resume to continue it or choose another --out`);
  await ensureDir(join(runDir, RUN_FILES.samples));
  return undefined;
}

/** Reads a run folder's config.json (written at its start). */
export async function readRunConfig(runDir: string): Promise<Record<string, unknown>> {
  const p = join(runDir, RUN_FILES.config);
  if (!pathExists(p)) throw new InputError(`${runDir} is not a training run folder (no ${RUN_FILES.config}); pass the --out folder of an sdts train run`);
  return readJsonFile(p);
}

/**
 * A number in [0, max] that a run config records (e.g. the U-Net stage's contextNoise): 0 when
 * absent, as runs from before the option trained without it.
 */
export function runNumber(run: Readonly<Record<string, unknown>>, key: string, max: number): number {
  const v = run[key] ?? 0;
  if (typeof v !== "number" || !(v >= 0 && v <= max)) throw new InputError(`run config: ${key} must be a number from 0 to ${max} (got ${JSON.stringify(v)})`);
  return v;
}

/** A share in [0, 1] that a run config records (captionWrap, captionNoise, timestepHighShare); see runNumber. */
export function runShare(run: Readonly<Record<string, unknown>>, key: string): number {
  return runNumber(run, key, 1);
}

/** Refuses a share option (`--<flag>`) outside [0, 1]; undefined (not given) passes. */
export function checkShare(flag: string, v: number | undefined): void {
  if (v !== undefined && !(v >= 0 && v <= 1)) throw new InputError(`--${flag} must be a share from 0 to 1 (got ${v})`);
}

/** The caption augmentations a CLIP or U-Net run config records (captionWrap, captionNoise, captionDistract), over the folder's captions. */
export function runCaptionAugment(run: Readonly<Record<string, unknown>>, captions: readonly (readonly string[])[]): CaptionAugment {
  return {
    wrap: runShare(run, "captionWrap"),
    noise: new CaptionNoise(captions),
    noiseShare: runShare(run, "captionNoise"),
    distractors: new CaptionDistractors(captions),
    distractShare: runShare(run, "captionDistract"),
  };
}

/** Writes a run folder's config.json. */
export async function writeRunConfig(runDir: string, config: Record<string, unknown>): Promise<void> {
  await writeJsonFile(join(runDir, RUN_FILES.config), config);
}

// A resumed run drops log lines past the checkpoint's step (written after the last save).
async function trimLog(path: string, step: number): Promise<void> {
  if (!pathExists(path)) return;
  const keep = (await readTextFile(path)).split("\n").filter((l) => l !== "" && (JSON.parse(l) as { step: number }).step <= step);
  await writeFileAtomic(path, keep.map((l) => `${l}\n`).join(""));
}

async function save(runDir: string, stage: Stage, rng: Rng): Promise<string> {
  const path = join(runDir, RUN_FILES.checkpoint);
  const t = stage.trainer;
  await saveCheckpoint(path, { kind: stage.kind, step: t.state.step, rngState: rng.state, params: t.params, m: t.state.m, v: t.state.v, extra: stage.extraState?.() ?? new Map() });
  return path;
}

/** Runs steps until `o.steps`, saving every `saveEvery` and sampling every `sampleEvery` steps (and at the end). */
export async function runStage(runDir: string, stage: Stage, o: TrainOptions, rngState: number): Promise<TrainResult> {
  const rng = new Rng(rngState);
  const t = stage.trainer;
  const startStep = t.state.step;
  const logPath = join(runDir, RUN_FILES.log);
  await trimLog(logPath, startStep);
  const started = Date.now();
  const losses: number[] = [];
  const saveEvery = o.saveEvery ?? 500;
  const sampleEvery = o.sampleEvery ?? 500;
  let checkpoint = join(runDir, RUN_FILES.checkpoint);
  try {
    while (t.state.step < o.steps) {
      const lr = learningRate(t.state.step, o);
      const r = await t.step(stage.batch(rng), lr);
      const step = t.state.step;
      if (!Number.isFinite(r.loss)) throw new InputError(`${stage.kind} training diverged at step ${step} (loss ${r.loss}); lower --lr and resume from the last checkpoint`);
      stage.afterStep?.(step);
      losses.push(r.loss);
      await appendLine(logPath, JSON.stringify({ step, loss: r.loss, lr, gradNorm: r.gradNorm, seconds: (Date.now() - started) / 1000 }));
      o.onProgress?.({ step, total: o.steps, loss: r.loss, lr, startStep });
      const last = step === o.steps;
      if (step % saveEvery === 0 || last) checkpoint = await save(runDir, stage, rng);
      if (stage.sample && (step % sampleEvery === 0 || last)) {
        await writeFileAtomic(join(runDir, RUN_FILES.samples, `step-${String(step).padStart(6, "0")}.png`), await stage.sample(step));
      }
    }
    if (startStep === o.steps) checkpoint = await save(runDir, stage, rng);
  } finally {
    await stage.dispose();
  }
  return { runDir, step: t.state.step, startStep, losses, seconds: (Date.now() - started) / 1000, checkpoint };
}
