/**
 * Binding checkpoint tensors to a model's declared parameters: strict matching (missing,
 * unexpected, mis-shaped keys are named) and conversion into ONNX initializers, either inline
 * (bytes inside the model) or external (byte ranges of the checkpoint file, read by onnxruntime).
 */
import { createHash } from "node:crypto";
import { CheckpointError } from "../errors.js";
import type { DType } from "../graph/dtype.js";
import type { InitializerData } from "../graph/onnx/export.js";
import type { Tensor } from "../graph/tensor.js";
import { type SafetensorsFile, bf16ToF32, f16ToF32, f32ToF16, openSafetensors } from "../io/safetensors.js";
import type { DataPart, ModelDir } from "../runtime/model-cache.js";

/** Where one canonical parameter's data lives: a tensor of an open safetensors file, optionally a row range of it. */
export interface WeightRef {
  readonly file: SafetensorsFile;
  /** Tensor name inside the file. */
  readonly name: string;
  /** Rows [start, end) along dim 0 (e.g. q, k or v of a fused in_proj), or the whole tensor. */
  readonly rows?: readonly [number, number];
}

/** Canonical key → where its data is. */
export type WeightMap = Map<string, WeightRef>;

/** The dtype a stored tensor enters the graph in (bf16 and f64 are converted to f32 on load). */
export function storageDtype(ref: WeightRef): DType {
  const d = ref.file.tensors.get(ref.name)?.dtype;
  return d === "F16" ? "float16" : "float32";
}

/** Shape of the referenced data (after taking the row range). */
export function refShape(ref: WeightRef): number[] {
  const info = ref.file.tensors.get(ref.name);
  if (info === undefined) throw new CheckpointError(`tensor '${ref.name}' is not in ${ref.file.path}`);
  const shape = [...info.shape];
  if (ref.rows) shape[0] = ref.rows[1] - ref.rows[0];
  return shape;
}

function listSome(keys: readonly string[]): string {
  const head = keys.slice(0, 10).join(", ");
  return keys.length > 10 ? `${head} … and ${keys.length - 10} more` : head;
}

/**
 * Checks that every parameter has data of the right size and that no tensor is left over.
 * Shapes may differ only where the element count is equal (e.g. a 1×1 conv [C, C, 1, 1]
 * stored for a linear [C, C]); the bytes are the same.
 */
export function checkWeights(what: string, params: ReadonlyMap<string, Tensor>, weights: ReadonlyMap<string, WeightRef>): void {
  const missing = [...params.keys()].filter((k) => !weights.has(k));
  const unexpected = [...weights.keys()].filter((k) => !params.has(k));
  const mis: string[] = [];
  for (const [k, t] of params) {
    const ref = weights.get(k);
    if (ref === undefined) continue;
    const s = refShape(ref);
    const want = t.shape as number[];
    if (s.reduce((a, b) => a * b, 1) !== want.reduce((a, b) => a * b, 1)) mis.push(`${k} (model [${want}], file [${s}])`);
  }
  const parts: string[] = [];
  if (missing.length) parts.push(`missing ${missing.length}: ${listSome(missing)}`);
  if (unexpected.length) parts.push(`unexpected ${unexpected.length}: ${listSome(unexpected)}`);
  if (mis.length) parts.push(`wrong shape ${mis.length}: ${listSome(mis)}`);
  if (parts.length) {
    throw new CheckpointError(`${what}: the checkpoint does not fit the model — ${parts.join("; ")}. Is it the right file (or config) for this model?`);
  }
}

/** Reads a referenced tensor as raw bytes in its storage dtype (F16 stays F16; others become F32). */
export async function readWeightBytes(ref: WeightRef): Promise<Uint8Array> {
  const t = await ref.file.read(ref.name);
  let bytes: Uint8Array;
  if (t.dtype === "F16" || t.dtype === "F32") bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  else if (t.dtype === "BF16") bytes = new Uint8Array(bf16ToF32(t.data).buffer);
  else if (t.dtype === "F64") bytes = new Uint8Array(Float32Array.from(t.data).buffer);
  else throw new CheckpointError(`tensor '${ref.name}' in ${ref.file.path} is ${t.dtype}; weights must be F32, F16, BF16 or F64`);
  if (!ref.rows) return bytes;
  const shape = ref.file.tensors.get(ref.name)?.shape ?? [];
  const rowBytes = bytes.length / (shape[0] ?? 1);
  return bytes.slice(ref.rows[0] * rowBytes, ref.rows[1] * rowBytes);
}

/** Initializers holding every parameter's data inline (read into memory now). */
export async function inlineInitializers(params: ReadonlyMap<string, Tensor>, weights: ReadonlyMap<string, WeightRef>): Promise<Map<string, InitializerData>> {
  const out = new Map<string, InitializerData>();
  for (const [k, t] of params) {
    const ref = weights.get(k);
    if (ref === undefined) throw new CheckpointError(`no data for parameter '${k}'`);
    out.set(k, { kind: "inline", bytes: await weightBytesAs(ref, t.dtype, k) });
  }
  return out;
}

/** Bytes of all referenced data as stored (a row range counts its rows). */
export function weightBytes(weights: ReadonlyMap<string, WeightRef>): number {
  let n = 0;
  for (const ref of weights.values()) {
    const info = ref.file.tensors.get(ref.name);
    if (info !== undefined) n += ref.rows ? (info.byteLength / (info.shape[0] ?? 1)) * (ref.rows[1] - ref.rows[0]) : info.byteLength;
  }
  return n;
}

/**
 * The byte range of a parameter's data inside its file when the graph can read it as stored:
 * F16 or F32 data in the parameter's dtype. A row range of dim 0 is contiguous too.
 */
export function storedRange(ref: WeightRef, want: DType): { path: string; offset: number; length: number } | undefined {
  const info = ref.file.tensors.get(ref.name);
  if (info === undefined || storageDtype(ref) !== want || (info.dtype !== "F16" && info.dtype !== "F32")) return undefined;
  if (!ref.rows) return { path: ref.file.path, offset: info.byteOffset, length: info.byteLength };
  const rowBytes = info.byteLength / (info.shape[0] ?? 1);
  return { path: ref.file.path, offset: info.byteOffset + ref.rows[0] * rowBytes, length: (ref.rows[1] - ref.rows[0]) * rowBytes };
}

/**
 * Initializers that onnxruntime reads from files of the cache folder `dir`: each parameter's
 * byte range in its (hard-linked) checkpoint, or, where that cannot be used (BF16/F64 data, a
 * file that could not be linked), its converted bytes in the data file `<dataName>-<hash>.bin`.
 */
export async function externalInitializers(
  params: ReadonlyMap<string, Tensor>,
  weights: ReadonlyMap<string, WeightRef>,
  dir: ModelDir,
  dataName: string,
): Promise<Map<string, InitializerData>> {
  const out = new Map<string, InitializerData>();
  const rest: DataPart[] = [];
  const scratch = { buffer: new Float32Array(0) };
  for (const [k, t] of params) {
    const ref = weights.get(k);
    if (ref === undefined) throw new CheckpointError(`no data for parameter '${k}'`);
    const range = storedRange(ref, t.dtype);
    const location = range && dir.location(range.path);
    if (range && location !== undefined) {
      out.set(k, { kind: "external", location, offset: range.offset, length: range.length });
      continue;
    }
    const length = (t.shape as number[]).reduce((a, b) => a * b, 1) * (t.dtype === "float16" ? 2 : 4);
    rest.push({ key: k, length, read: () => (storageDtype(ref) === "float16" && t.dtype === "float32" ? widen(ref, scratch) : weightBytesAs(ref, t.dtype, k)) });
  }
  if (rest.length === 0) return out;
  const id = createHash("sha256").update(JSON.stringify(rest.map((p) => [p.key, p.length]))).digest("hex").slice(0, 12);
  for (const [k, r] of await dir.writeData(`${dataName}-${id}`, rest)) out.set(k, { kind: "external", ...r });
  return out;
}

/**
 * F16 data as float32 bytes in `scratch`, reused by the next call: writeData writes each part
 * before reading the next, and fresh multi-GB allocations cost more than the conversion here.
 */
async function widen(ref: WeightRef, scratch: { buffer: Float32Array }): Promise<Uint8Array> {
  const bits = halfView(await readWeightBytes(ref));
  if (scratch.buffer.length < bits.length) scratch.buffer = new Float32Array(bits.length);
  const out = f16ToF32(bits, scratch.buffer.subarray(0, bits.length));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** The bytes as 16-bit values (a view when aligned). */
function halfView(bytes: Uint8Array): Uint16Array {
  const b = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  return new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
}

/** A parameter's bytes in dtype `want`, converting from the stored dtype where they differ. */
async function weightBytesAs(ref: WeightRef, want: DType, key: string): Promise<Uint8Array> {
  const bytes = await readWeightBytes(ref);
  const stored = storageDtype(ref);
  return stored === want ? bytes : convert(bytes, stored, want, key);
}

function convert(bytes: Uint8Array, from: DType, to: DType, key: string): Uint8Array {
  if (from === "float16" && to === "float32") return new Uint8Array(f16ToF32(halfView(bytes)).buffer);
  if (from === "float32" && to === "float16") return new Uint8Array(f32ToF16(new Float32Array(bytes.slice().buffer)).buffer);
  throw new CheckpointError(`parameter '${key}': cannot convert ${from} weights to ${to}`);
}

/** Every tensor of a safetensors file under its own name (e.g. a diffusers-layout component file). */
export async function identityWeights(path: string, prefix = ""): Promise<{ file: SafetensorsFile; weights: WeightMap }> {
  const file = await openSafetensors(path);
  const weights: WeightMap = new Map();
  for (const name of file.tensors.keys()) {
    if (name.startsWith(prefix)) weights.set(name.slice(prefix.length), { file, name });
  }
  return { file, weights };
}
