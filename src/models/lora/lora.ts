/**
 * Reading LoRA files into per-module factors, and planning the graph-side branches for a set of
 * active LoRAs (nn/lora.ts): which modules get a branch with what total rank (the compile
 * signature), and the stacked, scaled factors to feed.
 *
 * Scale, as kohya and AUTOMATIC1111 apply it: ΔW = weight · (alpha / rank) · up · down, with
 * alpha = rank when the file has none (PEFT files keep alpha in their adapter config instead).
 */
import { CheckpointError } from "../../errors.js";
import type { SafetensorsFile } from "../../io/safetensors.js";
import { loraFeedNames, loraFeedShapes } from "../../nn/lora.js";
import type { AdaptableModule } from "../../nn/scope.js";
import { type LoraComponent, type LoraKey, type LoraTargets, resolveLoraKey } from "./keys.js";

/** One module's LoRA factors, shaped for the module they target. */
export interface LoraModule {
  readonly component: LoraComponent;
  /** Canonical module path. */
  readonly path: string;
  readonly rank: number;
  /** alpha / rank. */
  readonly scale: number;
  /** Down factor [rank, in·k·k], row-major. */
  readonly down: Float32Array;
  /** Up factor [out, rank], row-major. */
  readonly up: Float32Array;
}

interface Group {
  down?: string;
  up?: string;
  alpha?: string;
}

function listSome(names: readonly string[]): string {
  return names.slice(0, 5).join(", ") + (names.length > 5 ? `, … (${names.length} in all)` : "");
}

/** Groups a file's tensors by target module; throws naming unknown and unsupported tensors. */
function groupTensors(file: SafetensorsFile, targets: LoraTargets): Map<string, { key: Omit<LoraKey, "role">; names: Group }> {
  const groups = new Map<string, { key: Omit<LoraKey, "role">; names: Group }>();
  const unknown: string[] = [];
  const unsupported = new Set<string>();
  for (const name of file.tensors.keys()) {
    const r = resolveLoraKey(name, targets);
    if (r.kind === "ignored") continue;
    if (r.kind === "unknown") unknown.push(name);
    else if (r.kind === "unsupported") unsupported.add(r.what);
    else {
      const id = `${r.key.component}:${r.key.path}`;
      const g = groups.get(id) ?? { key: { component: r.key.component, path: r.key.path }, names: {} };
      g.names[r.key.role] = name;
      groups.set(id, g);
    }
  }
  if (unsupported.size > 0) {
    throw new CheckpointError(`${file.path}: holds ${[...unsupported].join(", ")} modules; sdts applies plain LoRA and LoCon files only (lora_down / lora_up / alpha, or PEFT lora_A / lora_B)`);
  }
  if (unknown.length > 0) {
    throw new CheckpointError(`${file.path}: ${unknown.length} tensors match no module of this model (${listSome(unknown)}); is the LoRA made for this kind of model (SD 1.x vs 2.x vs SDXL)?`);
  }
  if (groups.size === 0) throw new CheckpointError(`${file.path}: no LoRA tensors found; is this a LoRA file?`);
  return groups;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** The rank of a module's factors after checking their shapes against the module. */
function checkShapes(file: SafetensorsFile, m: AdaptableModule, down: readonly number[], up: readonly number[], what: string): number {
  const r = down[0] ?? 0;
  const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);
  // A linear module takes [r, in] or a 1×1 conv's [r, in, 1, 1]; a conv its exact kernel, or [r, in] when 1×1.
  const { inFeatures: cin, outFeatures: cout, kernel: k } = m;
  const downs = m.kind === "linear" || k === 1 ? [[r, cin], [r, cin, 1, 1]] : [[r, cin, k, k]];
  const ups = [[cout, r], [cout, r, 1, 1]];
  if (r < 1 || !downs.some((d) => same(down, d)) || !ups.some((u) => same(up, u))) {
    const want = loraFeedShapes(m.kind, cin, cout, k, Math.max(r, 1));
    throw new CheckpointError(
      `${file.path}: LoRA tensor '${what}' does not fit the model's ${m.kind} '${m.path}' (in ${cin}, out ${cout}${m.kind === "conv" ? `, kernel ${k}` : ""}): ` +
        `down [${down.join(", ")}], up [${up.join(", ")}], expected down [${want.down.join(", ")}] and up [${want.up.join(", ")}]; is the LoRA made for this model?`,
    );
  }
  return r;
}

/** Reads every module of a LoRA file. Strict: unknown names, unpaired factors and wrong shapes throw CheckpointError. */
export async function readLora(file: SafetensorsFile, targets: LoraTargets): Promise<LoraModule[]> {
  const out: LoraModule[] = [];
  for (const { key, names } of groupTensors(file, targets).values()) {
    if (names.down === undefined || names.up === undefined) {
      const has = [names.down, names.up, names.alpha].filter(Boolean).join(", ");
      const lacks = names.down === undefined ? "down" : "up";
      throw new CheckpointError(`${file.path}: LoRA module '${key.path}' has no ${lacks} factor (only ${has}); the file is incomplete`);
    }
    const m = targets.modules[key.component].get(key.path);
    if (m === undefined) throw new CheckpointError(`${file.path}: no module '${key.path}' in the model`);
    const shape = (n: string) => file.tensors.get(n)?.shape ?? [];
    const rank = checkShapes(file, m, shape(names.down), shape(names.up), names.down);
    let alpha = rank;
    if (names.alpha !== undefined) {
      const a = (await file.readAsFloat32(names.alpha))[0];
      if (a === undefined || !Number.isFinite(a)) throw new CheckpointError(`${file.path}: '${names.alpha}' must hold one finite number (alpha)`);
      alpha = a;
    }
    out.push({ ...key, rank, scale: alpha / rank, down: await file.readAsFloat32(names.down), up: await file.readAsFloat32(names.up) });
  }
  return out;
}

/** A LoRA in use: its modules and A1111's two multipliers. */
export interface ActiveLora {
  readonly modules: readonly LoraModule[];
  /** Multiplier on the text encoder's modules. */
  readonly textWeight: number;
  /** Multiplier on the U-Net's modules. */
  readonly unetWeight: number;
}

/** Branches to build into one component's graph, and what to feed them. */
export interface LoraPlan {
  /** Module path → total rank over the active LoRAs. */
  readonly ranks: ReadonlyMap<string, number>;
  /** `ranks` as a string: equal signatures share one compiled graph. */
  readonly signature: string;
  /** Graph input name → data (float32, row-major). */
  readonly feeds: ReadonlyMap<string, { readonly shape: number[]; readonly data: Float32Array }>;
}

/**
 * Stacks the factors of every active LoRA on each module of `component`: D = [down₁; down₂; …]
 * [R, in·k·k] and U = [s₁·up₁, s₂·up₂, …] [out, R] with sᵢ = weightᵢ·alphaᵢ/rankᵢ, so that
 * U·D = Σ sᵢ·upᵢ·downᵢ. Undefined when no active LoRA touches the component.
 */
export function planLoras(active: readonly ActiveLora[], component: LoraComponent, targets: LoraTargets): LoraPlan | undefined {
  const parts = new Map<string, { m: LoraModule; s: number }[]>();
  for (const a of active) {
    const w = component === "unet" ? a.unetWeight : a.textWeight;
    for (const m of a.modules) {
      if (m.component !== component) continue;
      const list = parts.get(m.path) ?? [];
      list.push({ m, s: w * m.scale });
      parts.set(m.path, list);
    }
  }
  if (parts.size === 0) return undefined;
  const ranks = new Map<string, number>();
  const feeds = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const path of [...parts.keys()].sort()) {
    const list = parts.get(path) ?? [];
    const mod = targets.modules[component].get(path);
    if (mod === undefined) throw new CheckpointError(`LoRA module '${path}' is not in the model`);
    const rank = list.reduce((n, p) => n + p.m.rank, 0);
    const shapes = loraFeedShapes(mod.kind, mod.inFeatures, mod.outFeatures, mod.kernel, rank);
    const down = new Float32Array(numel(shapes.down));
    const up = new Float32Array(numel(shapes.up));
    let at = 0;
    for (const { m, s } of list) {
      down.set(m.down, at * (down.length / rank));
      for (let o = 0; o < mod.outFeatures; o++) for (let j = 0; j < m.rank; j++) up[o * rank + at + j] = s * (m.up[o * m.rank + j] ?? 0);
      at += m.rank;
    }
    ranks.set(path, rank);
    const names = loraFeedNames(path);
    feeds.set(names.down, { shape: shapes.down, data: down });
    feeds.set(names.up, { shape: shapes.up, data: up });
  }
  const signature = [...ranks].map(([p, r]) => `${p}=${r}`).join(";");
  return { ranks, signature, feeds };
}

/** ΔW = scale·up·down of one module, [out, in·k·k] (a conv's [out, in, k, k] flattened): the weights a merge would add at weight 1. */
export function loraDelta(m: LoraModule, outFeatures: number): Float32Array {
  const cols = m.down.length / m.rank;
  const d = new Float32Array(outFeatures * cols);
  for (let o = 0; o < outFeatures; o++) {
    for (let j = 0; j < m.rank; j++) {
      const u = m.scale * (m.up[o * m.rank + j] ?? 0);
      if (u === 0) continue;
      for (let c = 0; c < cols; c++) d[o * cols + c] = (d[o * cols + c] ?? 0) + u * (m.down[j * cols + c] ?? 0);
    }
  }
  return d;
}
