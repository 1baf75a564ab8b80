/** Safetensors writing: in-memory encoding, atomic file writes, float32 → fp16/bf16 narrowing. */

import { randomBytes } from "node:crypto";
import { open, rename, rm, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { CheckpointError, InputError } from "../errors.js";
import {
  DTYPE_ARRAY, checkLittleEndianHost, errText, isDtype, type Dtype, type TensorData,
} from "./safetensors-read.js";

/** A tensor to write; F16 and BF16 also take a Float32Array, rounded to nearest even. */
export interface TensorInput {
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** Tensors to write, in file order. */
export type TensorsInput = Readonly<Record<string, TensorInput>> | ReadonlyMap<string, TensorInput>;

/** Encodes tensors (and optional string metadata) as one in-memory safetensors file. */
export function encodeSafetensors(tensors: TensorsInput, metadata?: Readonly<Record<string, string>>): Uint8Array {
  const { header, chunks } = plan(tensors, metadata);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, header.length));
  out.set(header, 0);
  let at = header.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Writes a safetensors file via a temp file and rename: on error no file is left and none replaced. */
export async function writeSafetensors(
  path: string,
  tensors: TensorsInput,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const { header, chunks } = plan(tensors, metadata); // bad input throws before any file exists
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  let fh: FileHandle | undefined;
  let created = false;
  try {
    fh = await open(tmp, "wx");
    created = true;
    let at = await writeAll(fh, header, 0);
    for (const c of chunks) at = await writeAll(fh, c, at);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => undefined);
    if (created) await rm(tmp, { force: true }).catch(() => undefined);
    const hint = (e as NodeJS.ErrnoException).code === "ENOENT" ? `; create the folder ${dirname(path)} first` : "";
    throw new CheckpointError(`cannot write ${path}: ${errText(e)}${hint}`, { cause: e });
  }
}

/** Narrows float32 to IEEE half bit patterns: round to nearest even, overflow to ±inf, subnormals kept. */
export function f32ToF16(x: Float32Array): Uint16Array {
  // Reading bit patterns, not float values, so NaN payloads survive.
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBits(bits[i]!);
  return out;
}

/** Narrows float32 to bfloat16 bit patterns, rounding to nearest even; NaN stays NaN (payload kept). */
export function f32ToBf16(x: Float32Array): Uint16Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = new Uint16Array(x.length);
  for (let i = 0; i < bits.length; i++) {
    const b = bits[i]!;
    const hi = b >>> 16;
    if ((b & 0x7fffffff) <= 0x7f800000) out[i] = (b + 0x7fff + (hi & 1)) >>> 16;
    else out[i] = (hi & 0x7f) === 0 ? hi | 0x40 : hi; // NaN: keep the payload, but never let it become inf
  }
  return out;
}

/** One float32 bit pattern → half bit pattern. */
function halfBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {
    if (abs === 0x7f800000) return sign | 0x7c00;
    const payload = (abs >>> 13) & 0x3ff;
    return sign | 0x7c00 | (payload === 0 ? 0x200 : payload); // a NaN whose kept bits are 0 must not become inf
  }
  if (abs >= 0x477ff000) return sign | 0x7c00; // ≥ 65520 = halfway past 65504 rounds (to even) to inf
  if (abs >= 0x38800000) {
    // ≥ 2^-14, a normal half: rebias the exponent (127 → 15) and drop 13 mantissa bits.
    const h = (abs - 0x38000000) >>> 13;
    const rest = abs & 0x1fff;
    return sign | (h + (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? 1 : 0));
  }
  const e = abs >>> 23;
  if (e < 102) return sign; // < 2^-25: at or below half the smallest subnormal, rounds to ±0
  // Subnormal half m·2^-24 with m = mant24·2^(e-126); a carry into 0x400 gives the smallest normal.
  const shift = 126 - e; // 14 … 24
  const mant = (abs & 0x7fffff) | 0x800000;
  const h = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (h + (rest > half || (rest === half && (h & 1) === 1) ? 1 : 0));
}

interface Plan {
  header: Uint8Array; // length prefix + padded JSON
  chunks: Uint8Array[]; // tensor bytes, contiguous in order
}

/** Validates every tensor and lays out the file; copies nothing but fp32 → fp16/bf16 conversions. */
function plan(tensors: TensorsInput, metadata: Readonly<Record<string, string>> | undefined): Plan {
  checkLittleEndianHost();
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors as Record<string, TensorInput>);
  // The JSON is built by hand to keep the given key order (objects put integer-like keys first).
  const parts: string[] = [];
  if (metadata !== undefined) parts.push(`"__metadata__":${JSON.stringify(checkMetadata(metadata))}`);
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = tensorBytes(name, t);
    const entry = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  // Pad with spaces to a multiple of 8, as the reference writer does, so data starts 8-aligned.
  const n = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + n).fill(0x20, 8 + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, 8);
  return { header, chunks };
}

function checkMetadata(metadata: Readonly<Record<string, string>>): Record<string, string> {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") throw new InputError(`safetensors metadata "${k}" is ${typeof v}, expected a string`);
  }
  return Object.fromEntries(Object.entries(metadata));
}

/** The little-endian bytes of one tensor, after checking dtype, shape and data agree. */
function tensorBytes(name: string, t: TensorInput): Uint8Array {
  const what = `tensor "${name}"`;
  if (name === "__metadata__") throw new InputError(`${what}: the name is reserved for metadata; rename the tensor`);
  if (!isDtype(t.dtype)) throw new InputError(`${what}: unknown dtype ${JSON.stringify(t.dtype)}`);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new InputError(`${what}: shape [${t.shape.join(", ")}] must be non-negative integers`);
  }
  const count = t.shape.reduce((a, b) => a * b, 1);
  const narrow = (t.dtype === "F16" || t.dtype === "BF16") && t.data instanceof Float32Array;
  if (!narrow && !(t.data instanceof DTYPE_ARRAY[t.dtype])) {
    const want = DTYPE_ARRAY[t.dtype].name + (t.dtype === "F16" || t.dtype === "BF16" ? " or Float32Array" : "");
    throw new InputError(`${what}: ${t.dtype} data must be a ${want}, got ${t.data.constructor.name}`);
  }
  if (t.data.length !== count) {
    throw new InputError(`${what}: shape [${t.shape.join(", ")}] holds ${count} elements, data has ${t.data.length}`);
  }
  if (t.dtype === "BOOL" && (t.data as Uint8Array).some((v) => v > 1)) {
    throw new InputError(`${what}: BOOL data must hold only 0 and 1`);
  }
  let data = t.data;
  if (narrow) data = t.dtype === "F16" ? f32ToF16(t.data as Float32Array) : f32ToBf16(t.data as Float32Array);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Writes all of `bytes` at `position`; returns the position after them. */
async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.length) {
    const chunk = Math.min(bytes.length - done, 1 << 30); // one write() call is limited to 2 GiB
    const { bytesWritten } = await fh.write(bytes, done, chunk, position + done);
    done += bytesWritten;
  }
  return position + done;
}
