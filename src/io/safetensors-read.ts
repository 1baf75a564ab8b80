/** Safetensors reading: header validation, lazy per-tensor reads and half-float decoding. */

import { open, type FileHandle } from "node:fs/promises";
import { CheckpointError, assert } from "../errors.js";

// Format: https://github.com/huggingface/safetensors/blob/v0.4.5/README.md#format

/** Element types a safetensors file may hold (the subset sdts reads and writes). */
export type Dtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Typed-array class holding each dtype's elements; F16/BF16 keep their raw 16-bit patterns. */
export interface DtypeArrays {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

/** Any array a tensor's elements may be held in. */
export type TensorData = DtypeArrays[Dtype];

/** A tensor read into memory; narrowing on `dtype` narrows `data`. */
export type TypedTensor = { [D in Dtype]: { dtype: D; shape: number[]; data: DtypeArrays[D] } }[Dtype];

/** Where one tensor lies in a file; `byteOffset` counts from the file's first byte. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: Dtype;
  readonly shape: readonly number[];
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** A parsed, validated header. */
export interface SafetensorsHeader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  /** Bytes from the file's start to the first data byte (8 + header length). */
  readonly dataOffset: number;
}

/** An open safetensors file: the header is in memory, tensor data is read on demand. */
export interface SafetensorsFile extends SafetensorsHeader {
  readonly path: string;
  /** Reads one tensor's bytes into a fresh, aligned typed array. */
  read(name: string): Promise<TypedTensor>;
  /** Reads an F16/BF16/F32/F64 tensor as float32 (F64 is rounded to nearest). */
  readAsFloat32(name: string): Promise<Float32Array>;
  /** Closes the file; later reads throw. Calling it twice is harmless. */
  close(): Promise<void>;
}

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

type ArrayCtor = new (buffer: ArrayBuffer, byteOffset?: number, length?: number) => TensorData;

/** The typed-array class that holds each dtype's elements. */
export const DTYPE_ARRAY: Readonly<Record<Dtype, ArrayCtor>> = {
  F64: Float64Array, F32: Float32Array, F16: Uint16Array, BF16: Uint16Array, I64: BigInt64Array,
  I32: Int32Array, I16: Int16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array,
};

/** The reference implementation's limit; bigger headers are refused before allocating. */
export const MAX_HEADER_BYTES = 100_000_000;

const BAD_FILE = "the file is truncated or not a safetensors file; re-download it";

/** Throws unless the host is little-endian: typed arrays use the host's byte order, safetensors is little-endian. */
export function checkLittleEndianHost(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new CheckpointError("safetensors data is little-endian and this host is big-endian; sdts cannot read it here");
  }
}

/** True when `s` names a dtype sdts knows. */
export function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_SIZE, s);
}

/** Options for `readSafetensorsHeader`. */
export interface HeaderOptions {
  /** Name used in error messages. */
  source?: string;
  /** Size of the whole file, when `buffer` holds only its first bytes (e.g. an HTTP range). */
  fileSize?: number;
}

/** Parses and validates the header of an in-memory safetensors file (or its first 8 + N bytes). */
export function readSafetensorsHeader(buffer: Uint8Array, opts: HeaderOptions = {}): SafetensorsHeader {
  const source = opts.source ?? "safetensors buffer";
  const fileSize = opts.fileSize ?? buffer.length;
  if (fileSize < 8 || buffer.length < 8) throw tooShort(source, fileSize);
  const n = checkHeaderLength(buffer.subarray(0, 8), fileSize, source);
  if (buffer.length < 8 + n) {
    throw new CheckpointError(`${source}: header needs ${8 + n} bytes, the buffer has ${buffer.length}; pass the whole header`);
  }
  return parseHeader(buffer.subarray(8, 8 + n), fileSize, source);
}

/** Decodes every tensor of an in-memory safetensors file (copies, so the arrays are aligned). */
export function decodeSafetensors(buffer: Uint8Array, source?: string): {
  metadata: Readonly<Record<string, string>>;
  tensors: Map<string, TypedTensor>;
} {
  const header = readSafetensorsHeader(buffer, source === undefined ? {} : { source });
  const tensors = new Map<string, TypedTensor>();
  for (const [name, info] of header.tensors) {
    const bytes = buffer.slice(info.byteOffset, info.byteOffset + info.byteLength);
    tensors.set(name, toTyped(info, bytes.buffer));
  }
  return { metadata: header.metadata, tensors };
}

/** Opens a safetensors file, reading and validating only its header. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const fh = await open(path, "r").catch((e: unknown) => {
    throw new CheckpointError(`${path}: cannot open (${errText(e)}); check the path`, { cause: e });
  });
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new CheckpointError(`${path}: not a regular file; pass a .safetensors file`);
    if (stat.size < 8) throw tooShort(path, stat.size);
    const n = checkHeaderLength(await readAt(fh, 0, 8, path), stat.size, path);
    const header = parseHeader(await readAt(fh, 8, n, path), stat.size, path);
    return new OpenFile(path, fh, header);
  } catch (e) {
    await fh.close();
    throw e;
  }
}

class OpenFile implements SafetensorsFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly dataOffset: number;
  #fh: FileHandle | undefined;

  constructor(readonly path: string, fh: FileHandle, header: SafetensorsHeader) {
    this.#fh = fh;
    this.tensors = header.tensors;
    this.metadata = header.metadata;
    this.dataOffset = header.dataOffset;
  }

  async read(name: string): Promise<TypedTensor> {
    const info = this.tensors.get(name);
    if (info === undefined) throw missingTensor(this.path, name, this.tensors);
    assert(this.#fh !== undefined, () => `${this.path}: read("${name}") after close()`);
    const bytes = await readAt(this.#fh, info.byteOffset, info.byteLength, this.path);
    return toTyped(info, bytes.buffer);
  }

  async readAsFloat32(name: string): Promise<Float32Array> {
    return tensorToFloat32(await this.read(name), `${this.path}: tensor "${name}"`);
  }

  async close(): Promise<void> {
    const fh = this.#fh;
    this.#fh = undefined;
    await fh?.close();
  }
}

/** Converts an F16/BF16/F32/F64 tensor to float32; other dtypes throw, naming `what`. */
export function tensorToFloat32(t: TypedTensor, what = "tensor"): Float32Array {
  switch (t.dtype) {
    case "F32": return t.data;
    case "F16": return f16ToF32(t.data);
    case "BF16": return bf16ToF32(t.data);
    case "F64": return Float32Array.from(t.data);
    default:
      throw new CheckpointError(`${what} is ${t.dtype}, expected F16, BF16, F32 or F64; use read() for integer tensors`);
  }
}

let f16Table: Uint32Array | undefined;

/** float32 bit patterns of all 65536 halves; built once, 256 KiB. */
function halfTable(): Uint32Array {
  if (f16Table !== undefined) return f16Table;
  const table = new Uint32Array(65536);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) table[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf, nan (payload kept)
    else if (exp !== 0) table[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    else {
      f[0] = mant * 2 ** -24; // zero or subnormal: exact in float32
      table[h] = (sign | u[0]!) >>> 0;
    }
  }
  f16Table = table;
  return table;
}

/** Widens IEEE half-precision bit patterns to float32, exactly (NaN payloads kept); into `into` when given. */
export function f16ToF32(bits: Uint16Array, into?: Float32Array): Float32Array {
  const table = halfTable();
  if (into !== undefined && into.length !== bits.length) throw new CheckpointError(`f16ToF32: output holds ${into.length} values, input ${bits.length}`);
  const out = into === undefined ? new Uint32Array(bits.length) : new Uint32Array(into.buffer, into.byteOffset, into.length);
  // Copying bit patterns, never float values, so no NaN is canonicalised on the way.
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]!]!;
  return into ?? new Float32Array(out.buffer);
}

/** Widens bfloat16 bit patterns to float32, exactly. */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

function toTyped(info: TensorInfo, buffer: ArrayBuffer): TypedTensor {
  checkLittleEndianHost();
  const data = new DTYPE_ARRAY[info.dtype](buffer, 0, info.byteLength / DTYPE_SIZE[info.dtype]);
  // The constructor table pairs each dtype with its array class, which TS cannot see.
  return { dtype: info.dtype, shape: [...info.shape], data } as TypedTensor;
}

/** Reads exactly `length` bytes at `position` into a fresh buffer; short files throw. */
async function readAt(fh: FileHandle, position: number, length: number, path: string): Promise<Uint8Array<ArrayBuffer>> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const chunk = Math.min(length - done, 1 << 30); // one read() call is limited to 2 GiB
    const { bytesRead } = await fh.read(out, done, chunk, position + done);
    if (bytesRead === 0) {
      throw new CheckpointError(`${path}: ended at byte ${position + done}, expected ${position + length}; ${BAD_FILE}`);
    }
    done += bytesRead;
  }
  return out;
}

/** Validates the 8-byte length prefix against the limit and the file size, before allocating. */
function checkHeaderLength(prefix: Uint8Array, fileSize: number, source: string): number {
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new CheckpointError(`${source}: header length ${n} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit; ${BAD_FILE}`);
  }
  if (n > BigInt(fileSize - 8)) {
    throw new CheckpointError(`${source}: header length ${n} bytes but only ${fileSize - 8} bytes follow; ${BAD_FILE}`);
  }
  return Number(n);
}

function parseHeader(json: Uint8Array, fileSize: number, source: string): SafetensorsHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(json));
  } catch (e) {
    throw new CheckpointError(`${source}: header is not valid UTF-8 JSON (${errText(e)}); ${BAD_FILE}`, { cause: e });
  }
  if (!isRecord(parsed)) throw new CheckpointError(`${source}: header is not a JSON object; ${BAD_FILE}`);
  const dataOffset = 8 + json.length;
  const dataSize = fileSize - dataOffset;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === "__metadata__") metadata = parseMetadata(entry, source);
    else tensors.set(name, parseEntry(name, entry, dataOffset, dataSize, source));
  }
  checkOverlaps(tensors, dataOffset, source);
  return { tensors, metadata, dataOffset };
}

function parseMetadata(entry: unknown, source: string): Record<string, string> {
  if (!isRecord(entry)) throw new CheckpointError(`${source}: "__metadata__" must be an object of strings`);
  for (const [k, v] of Object.entries(entry)) {
    if (typeof v !== "string") {
      throw new CheckpointError(`${source}: "__metadata__"."${k}" is ${typeof v}, expected a string`);
    }
  }
  // fromEntries defines own properties, so a "__proto__" key stays a plain key.
  return Object.fromEntries(Object.entries(entry)) as Record<string, string>;
}

function parseEntry(name: string, e: unknown, dataOffset: number, dataSize: number, source: string): TensorInfo {
  const bad = (what: string): CheckpointError => new CheckpointError(`${source}: tensor "${name}": ${what}; ${BAD_FILE}`);
  if (!isRecord(e)) throw bad("entry is not an object");
  const { dtype, shape, data_offsets: offsets } = e;
  if (dtype === undefined || shape === undefined || offsets === undefined) {
    throw bad("entry needs dtype, shape and data_offsets");
  }
  if (!isDtype(dtype)) {
    throw new CheckpointError(
      `${source}: tensor "${name}" has dtype ${JSON.stringify(dtype)}, expected one of ${Object.keys(DTYPE_SIZE).join(", ")}`,
    );
  }
  if (!isCountArray(shape)) throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  if (!isCountArray(offsets) || offsets.length !== 2) {
    throw bad(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] has begin after end`);
  if (end > dataSize) throw bad(`data ends at byte ${end} but the data section has only ${dataSize} bytes`);
  // A zero dim makes the tensor empty even if the other dims' product overflows.
  const count = shape.includes(0) ? 0 : shape.reduce((a, b) => a * b, 1);
  const byteLength = count * DTYPE_SIZE[dtype];
  if (byteLength !== end - begin) {
    throw bad(`${dtype} [${shape.join(", ")}] needs ${byteLength} bytes, data_offsets span ${end - begin}`);
  }
  return { name, dtype, shape, byteOffset: dataOffset + begin, byteLength };
}

/** Throws when two non-empty tensors share bytes; gaps between tensors are allowed. */
function checkOverlaps(tensors: ReadonlyMap<string, TensorInfo>, dataOffset: number, source: string): void {
  const spans = [...tensors.values()].filter((t) => t.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  let prev: TensorInfo | undefined;
  for (const t of spans) {
    if (prev !== undefined && t.byteOffset < prev.byteOffset + prev.byteLength) {
      const at = (x: TensorInfo): string => `[${x.byteOffset - dataOffset}, ${x.byteOffset - dataOffset + x.byteLength}]`;
      throw new CheckpointError(
        `${source}: tensors "${prev.name}" ${at(prev)} and "${t.name}" ${at(t)} overlap; ${BAD_FILE}`,
      );
    }
    if (prev === undefined || t.byteOffset + t.byteLength > prev.byteOffset + prev.byteLength) prev = t;
  }
}

function missingTensor(path: string, name: string, tensors: ReadonlyMap<string, TensorInfo>): CheckpointError {
  const some = [...tensors.keys()].slice(0, 5).map((k) => `"${k}"`).join(", ");
  return new CheckpointError(
    `${path}: no tensor "${name}" (the file has ${tensors.size}${tensors.size > 0 ? `, e.g. ${some}` : ""}); check the key`,
  );
}

function tooShort(source: string, size: number): CheckpointError {
  return new CheckpointError(`${source}: ${size} bytes, shorter than the 8-byte header length; ${BAD_FILE}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCountArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0);
}

/** The message of an unknown thrown value. */
export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
