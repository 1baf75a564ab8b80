/**
 * A minimal, dependency-free protobuf encoder for ONNX `ModelProto`.
 *
 * Field numbers follow onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto).
 * Encoding is two-pass: the message tree is built first (payloads are referenced, never
 * copied), its sizes are computed once bottom-up, and then everything is written into one
 * preallocated Uint8Array. Large initializers are therefore copied exactly once.
 */
import { assert, ShapeError } from "../../errors.js";

/** ONNX TensorProto.DataType codes: FLOAT=1 UINT8=2 INT8=3 UINT16=4 INT16=5 INT32=6 INT64=7 BOOL=9 FLOAT16=10 DOUBLE=11 BFLOAT16=16. */
export type OnnxElemType = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 9 | 10 | 11 | 16;

/** A graph input or output: element type and shape; a string dim is a symbolic `dim_param`. */
export interface OnnxValueInfo {
  name: string;
  elemType: OnnxElemType;
  dims: readonly (number | string)[];
}

/** A node attribute. Ints are int64: the double 2^63 (nearest to INT64_MAX) encodes as INT64_MAX. */
export type OnnxAttr =
  | { name: string; type: "int"; value: number }
  | { name: string; type: "float"; value: number }
  | { name: string; type: "ints"; value: readonly number[] }
  | { name: string; type: "floats"; value: readonly number[] }
  | { name: string; type: "string"; value: string }
  | { name: string; type: "tensor"; value: OnnxTensor };

/** One operator application; `domain` defaults to the standard ONNX domain. */
export interface OnnxNode {
  opType: string;
  domain?: string;
  name?: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attrs?: readonly OnnxAttr[];
}

/** A constant tensor: inline little-endian `raw` bytes, or a byte range of a file beside the model. */
export interface OnnxTensor {
  name: string;
  elemType: OnnxElemType;
  dims: readonly number[];
  /** Inline little-endian bytes. */
  raw?: Uint8Array;
  /** data_location=EXTERNAL: `location` is relative to the model file's folder. */
  external?: { location: string; offset: number; length: number };
}

/** A graph: nodes in topological order, typed inputs/outputs and initializers. */
export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  initializers: readonly OnnxTensor[];
}

/** A whole model: the graph plus its opset imports (`irVersion` defaults to 10). */
export interface OnnxModel {
  graph: OnnxGraph;
  opsetVersion: number;
  irVersion?: number;
  producerName?: string;
  extraOpsets?: readonly { domain: string; version: number }[];
}

/** Byte size of one element of each element type, used to check `raw` lengths. */
// prettier-ignore
export const ONNX_ELEM_BYTES: Readonly<Record<OnnxElemType, number>> = {
  1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2,
};

/** protobuf's hard limit on one serialized message (signed 32-bit sizes). */
const PROTOBUF_MAX_BYTES = 2 ** 31 - 1;
const INT64_MAX = (1n << 63n) - 1n;
const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;
const utf8 = new TextEncoder();

/** int64 as the unsigned 64-bit pattern protobuf writes; negative numbers take 10 bytes. */
function toUint64(v: number): bigint {
  assert(Number.isInteger(v), () => `protobuf int64 must be an integer (got ${v})`);
  if (v === 2 ** 63) return INT64_MAX; // the double nearest to INT64_MAX (Slice ends, etc.)
  assert(v >= -(2 ** 63) && v < 2 ** 63, () => `${v} does not fit in int64`);
  return BigInt.asUintN(64, BigInt(v));
}

function varintSize(v: number): number {
  if (v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v)) {
    let n = 1;
    for (let x = v; x >= 128; x = Math.floor(x / 128)) n++;
    return n;
  }
  let n = 1;
  for (let x = toUint64(v); x >= 128n; x >>= 7n) n++;
  return n;
}

function writeVarint(buf: Uint8Array, pos: number, v: number): number {
  if (v >= 0 && v <= Number.MAX_SAFE_INTEGER && Number.isInteger(v)) {
    let x = v;
    while (x >= 128) {
      buf[pos++] = (x % 128) | 0x80;
      x = Math.floor(x / 128);
    }
    buf[pos++] = x;
    return pos;
  }
  let x = toUint64(v);
  while (x >= 128n) {
    buf[pos++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  buf[pos++] = Number(x);
  return pos;
}

type Part =
  | { tag: number; kind: "varint"; v: number }
  | { tag: number; kind: "fixed32"; v: number }
  | { tag: number; kind: "bytes"; v: Uint8Array }
  | { tag: number; kind: "msg"; v: Msg };

/** A message under construction; payloads are referenced until `write`. */
class Msg {
  private readonly parts: Part[] = [];
  private cachedSize = -1;

  int(no: number, v: number): this {
    return this.push({ tag: (no << 3) | WIRE_VARINT, kind: "varint", v });
  }
  float(no: number, v: number): this {
    return this.push({ tag: (no << 3) | WIRE_FIXED32, kind: "fixed32", v });
  }
  bytes(no: number, v: Uint8Array): this {
    return this.push({ tag: (no << 3) | WIRE_BYTES, kind: "bytes", v });
  }
  str(no: number, v: string): this {
    return this.bytes(no, utf8.encode(v));
  }
  msg(no: number, v: Msg): this {
    return this.push({ tag: (no << 3) | WIRE_BYTES, kind: "msg", v });
  }
  private push(p: Part): this {
    this.parts.push(p);
    return this;
  }

  /** Serialized size in bytes, computed once. */
  size(): number {
    if (this.cachedSize >= 0) return this.cachedSize;
    let n = 0;
    for (const p of this.parts) {
      n += varintSize(p.tag);
      if (p.kind === "varint") n += varintSize(p.v);
      else if (p.kind === "fixed32") n += 4;
      else {
        const len = p.kind === "bytes" ? p.v.byteLength : p.v.size();
        n += varintSize(len) + len;
      }
    }
    this.cachedSize = n;
    return n;
  }

  /** Writes the message body at `pos`; returns the position after it. */
  write(buf: Uint8Array, view: DataView, pos: number): number {
    for (const p of this.parts) {
      pos = writeVarint(buf, pos, p.tag);
      if (p.kind === "varint") pos = writeVarint(buf, pos, p.v);
      else if (p.kind === "fixed32") {
        view.setFloat32(pos, p.v, true);
        pos += 4;
      } else if (p.kind === "bytes") {
        pos = writeVarint(buf, pos, p.v.byteLength);
        buf.set(p.v, pos);
        pos += p.v.byteLength;
      } else {
        pos = writeVarint(buf, pos, p.v.size());
        pos = p.v.write(buf, view, pos);
      }
    }
    return pos;
  }
}

function tensorMsg(t: OnnxTensor): Msg {
  assert(!(t.raw && t.external), `initializer "${t.name}" has both raw and external data`);
  let count = 1;
  for (const d of t.dims) {
    assert(Number.isInteger(d) && d >= 0, () => `initializer "${t.name}" has bad dim ${d}`);
    count *= d;
  }
  const want = count * ONNX_ELEM_BYTES[t.elemType];
  const got = t.raw?.byteLength ?? t.external?.length ?? 0;
  if (got !== want) {
    throw new ShapeError(
      `initializer "${t.name}" of shape [${t.dims.join(", ")}] needs ${want} bytes of data (got ${got})`,
    );
  }
  const m = new Msg();
  for (const d of t.dims) m.int(1, d); // TensorProto.dims
  m.int(2, t.elemType).str(8, t.name); // data_type, name
  if (t.raw) m.bytes(9, t.raw); // raw_data
  if (t.external) {
    const { location, offset, length } = t.external;
    // external_data: StringStringEntryProto; offset and length are decimal strings
    m.msg(13, new Msg().str(1, "location").str(2, location));
    m.msg(13, new Msg().str(1, "offset").str(2, String(offset)));
    m.msg(13, new Msg().str(1, "length").str(2, String(length)));
    m.int(14, 1); // data_location = EXTERNAL
  }
  return m;
}

function valueInfoMsg(v: OnnxValueInfo): Msg {
  const shape = new Msg();
  for (const d of v.dims) {
    const dim = typeof d === "string" ? new Msg().str(2, d) : new Msg().int(1, d); // dim_param | dim_value
    shape.msg(1, dim);
  }
  const tensorType = new Msg().int(1, v.elemType).msg(2, shape); // TypeProto.Tensor
  return new Msg().str(1, v.name).msg(2, new Msg().msg(1, tensorType)); // name, type.tensor_type
}

/** AttributeProto.AttributeType codes for the attribute kinds we emit. */
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, floats: 6, ints: 7 } as const;

function attrMsg(a: OnnxAttr): Msg {
  const m = new Msg().str(1, a.name);
  // Repeated scalars are written unpacked, as proto2 declares them (and as onnx's Python does).
  switch (a.type) {
    case "float":
      m.float(2, a.value);
      break;
    case "int":
      m.int(3, a.value);
      break;
    case "string":
      m.str(4, a.value);
      break;
    case "tensor":
      m.msg(5, tensorMsg(a.value));
      break;
    case "floats":
      for (const f of a.value) m.float(7, f);
      break;
    case "ints":
      for (const i of a.value) m.int(8, i);
      break;
  }
  return m.int(20, ATTR_TYPE[a.type]);
}

function nodeMsg(n: OnnxNode): Msg {
  const m = new Msg();
  for (const i of n.inputs) m.str(1, i);
  for (const o of n.outputs) m.str(2, o);
  if (n.name !== undefined) m.str(3, n.name);
  m.str(4, n.opType);
  for (const a of n.attrs ?? []) m.msg(5, attrMsg(a));
  if (n.domain !== undefined) m.str(7, n.domain);
  return m;
}

function graphMsg(g: OnnxGraph): Msg {
  const m = new Msg();
  for (const n of g.nodes) m.msg(1, nodeMsg(n));
  m.str(2, g.name);
  for (const t of g.initializers) m.msg(5, tensorMsg(t));
  for (const v of g.inputs) m.msg(11, valueInfoMsg(v));
  for (const v of g.outputs) m.msg(12, valueInfoMsg(v));
  return m;
}

/** Serializes a model to ONNX protobuf bytes in one preallocated buffer (sizes first, then one copy). */
export function encodeModel(model: OnnxModel): Uint8Array {
  const m = new Msg().int(1, model.irVersion ?? 10); // ir_version
  if (model.producerName !== undefined) m.str(2, model.producerName);
  m.msg(7, graphMsg(model.graph));
  m.msg(8, new Msg().str(1, "").int(2, model.opsetVersion)); // opset_import, default domain
  for (const o of model.extraOpsets ?? []) m.msg(8, new Msg().str(1, o.domain).int(2, o.version));
  const size = m.size();
  assert(
    size <= PROTOBUF_MAX_BYTES,
    () => `ONNX model "${model.graph.name}" is ${size} bytes, over protobuf's 2 GiB limit; store large initializers as external data`,
  );
  const buf = new Uint8Array(size);
  const end = m.write(buf, new DataView(buf.buffer), 0);
  assert(end === size, () => `protobuf size mismatch: wrote ${end} of ${size} bytes`);
  return buf;
}
