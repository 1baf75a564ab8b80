import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeModel, type OnnxModel, type OnnxNode } from "../../../src/graph/onnx/proto.js";
import { InternalError, ShapeError } from "../../../src/errors.js";
import { createSession } from "../../../src/runtime/session.js";

/** One decoded protobuf field; `bytes` views the input (no copy). */
interface Field {
  no: number;
  int?: bigint;
  bytes?: Uint8Array;
  f32?: number;
}

/** A minimal protobuf reader, independent of the encoder, to check what it wrote. */
function decode(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const varint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = buf[pos++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (b < 128) return v;
    }
  };
  while (pos < buf.length) {
    const tag = Number(varint());
    const no = tag >> 3;
    const wt = tag & 7;
    if (wt === 0) out.push({ no, int: varint() });
    else if (wt === 5) {
      out.push({ no, f32: view.getFloat32(pos, true) });
      pos += 4;
    } else if (wt === 2) {
      const len = Number(varint());
      out.push({ no, bytes: buf.subarray(pos, pos + len) });
      pos += len;
    } else assert.fail(`unexpected wire type ${wt}`);
  }
  assert.equal(pos, buf.length, "message overran its length");
  return out;
}

const text = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);
const sub = (fs: Field[], no: number): Field[][] => fs.filter((f) => f.no === no).map((f) => decode(f.bytes!));
const one = (fs: Field[], no: number): Field => {
  const hits = fs.filter((f) => f.no === no);
  assert.equal(hits.length, 1, `expected one field ${no}`);
  return hits[0]!;
};

function model(nodes: OnnxNode[], extra: Partial<OnnxModel> = {}): OnnxModel {
  return {
    opsetVersion: 17,
    graph: {
      name: "g",
      nodes,
      inputs: [{ name: "x", elemType: 1, dims: ["batch", 3] }],
      outputs: [{ name: "y", elemType: 1, dims: ["batch", 3] }],
      initializers: [],
    },
    ...extra,
  };
}

test("ints attribute: -1 is a 10-byte varint and 2^63 encodes as INT64_MAX", () => {
  const attrs = [{ name: "axes", type: "ints", value: [-1, 2 ** 63, 0, 300, 2 ** 40] }] as const;
  const bytes = encodeModel(model([{ opType: "Foo", inputs: ["x"], outputs: ["y"], attrs }]));
  const graph = decode(one(decode(bytes), 7).bytes!);
  const attr = sub(sub(graph, 1)[0]!, 5)[0]!;
  assert.equal(text(one(attr, 1).bytes), "axes");
  assert.equal(one(attr, 20).int, 7n); // AttributeType.INTS
  const ints = attr.filter((f) => f.no === 8).map((f) => BigInt.asIntN(64, f.int!));
  assert.deepEqual(ints, [-1n, (1n << 63n) - 1n, 0n, 300n, 1n << 40n]);
  const minusOne = [0x40, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]; // tag 8|0, then -1
  assert.ok(Buffer.from(bytes).includes(Buffer.from(minusOne)), "-1 must be written as 10 bytes");
});

test("int, float, floats, string and tensor attributes carry their type codes", () => {
  const t = { name: "v", elemType: 7, dims: [1], raw: new Uint8Array(new BigInt64Array([-5n]).buffer) } as const;
  const attrs = [
    { name: "i", type: "int", value: -3 },
    { name: "f", type: "float", value: 0.5 },
    { name: "fs", type: "floats", value: [1.5, -2] },
    { name: "s", type: "string", value: "héllo" },
    { name: "t", type: "tensor", value: t },
  ] as const;
  const graph = decode(one(decode(encodeModel(model([{ opType: "Foo", inputs: ["x"], outputs: ["y"], attrs }]))), 7).bytes!);
  const [i, f, fs, s, tensor] = sub(sub(graph, 1)[0]!, 5);
  assert.deepEqual([i, f, fs, s, tensor].map((a) => one(a!, 20).int), [2n, 1n, 6n, 3n, 4n]);
  assert.equal(BigInt.asIntN(64, one(i!, 3).int!), -3n);
  assert.equal(one(f!, 2).f32, 0.5);
  assert.deepEqual(fs!.filter((x) => x.no === 7).map((x) => x.f32), [1.5, -2]);
  assert.equal(text(one(s!, 4).bytes), "héllo");
  const tp = decode(one(tensor!, 5).bytes!);
  assert.equal(one(tp, 2).int, 7n);
  assert.deepEqual([...new BigInt64Array(one(tp, 9).bytes!.slice().buffer)], [-5n]);
});

test("model header, opsets and value infos with dim_value and dim_param", () => {
  const m = model([{ opType: "Relu", inputs: ["x"], outputs: ["y"], name: "r", domain: "" }], {
    producerName: "sdts",
    extraOpsets: [{ domain: "com.microsoft", version: 1 }],
  });
  const top = decode(encodeModel(m));
  assert.equal(one(top, 1).int, 10n); // ir_version default
  assert.equal(text(one(top, 2).bytes), "sdts");
  const opsets = sub(top, 8).map((o) => [text(one(o, 1).bytes), one(o, 2).int]);
  assert.deepEqual(opsets, [["", 17n], ["com.microsoft", 1n]]);
  const graph = decode(one(top, 7).bytes!);
  assert.equal(text(one(graph, 2).bytes), "g");
  const [input] = sub(graph, 11);
  assert.equal(text(one(input!, 1).bytes), "x");
  const tensorType = decode(one(decode(one(input!, 2).bytes!), 1).bytes!);
  assert.equal(one(tensorType, 1).int, 1n);
  const dims = sub(decode(one(tensorType, 2).bytes!), 1);
  assert.equal(text(one(dims[0]!, 2).bytes), "batch");
  assert.equal(one(dims[1]!, 1).int, 3n);
});

test("external initializer has location/offset/length entries and data_location=EXTERNAL", () => {
  const ext = { location: "w.safetensors", offset: 2 ** 33 + 8, length: 24 };
  const m = model([]);
  const bytes = encodeModel({ ...m, graph: { ...m.graph, initializers: [{ name: "w", elemType: 1, dims: [2, 3], external: ext }] } });
  const [init] = sub(decode(one(decode(bytes), 7).bytes!), 5);
  assert.deepEqual(init!.filter((f) => f.no === 1).map((f) => f.int), [2n, 3n]);
  assert.equal(one(init!, 14).int, 1n);
  const entries = sub(init!, 13).map((e) => [text(one(e, 1).bytes), text(one(e, 2).bytes)]);
  assert.deepEqual(entries, [["location", "w.safetensors"], ["offset", String(2 ** 33 + 8)], ["length", "24"]]);
});

test("bad data is refused: raw length mismatch, non-integer int attribute", () => {
  const m = model([]);
  const init = { name: "w", elemType: 1, dims: [2, 2], raw: new Uint8Array(12) } as const;
  assert.throws(() => encodeModel({ ...m, graph: { ...m.graph, initializers: [init] } }), ShapeError);
  const attrs = [{ name: "axis", type: "int", value: 1.5 }] as const;
  assert.throws(() => encodeModel(model([{ opType: "Foo", inputs: [], outputs: [], attrs }])), InternalError);
});

test("large inline initializers are each copied once into one buffer (128 MiB)", () => {
  const n = 16;
  const chunk = 8 << 20; // 8 MiB: a 4-byte length varint
  const initializers = Array.from({ length: n }, (_, i) => ({
    name: `w${i}`,
    elemType: 2,
    dims: [chunk],
    raw: new Uint8Array(chunk).fill(i + 1),
  })) as OnnxModel["graph"]["initializers"];
  const m = model([]);
  const bytes = encodeModel({ ...m, graph: { ...m.graph, initializers } });
  assert.ok(bytes.length > n * chunk && bytes.length < n * chunk + 4096);
  const inits = sub(decode(one(decode(bytes), 7).bytes!), 5);
  inits.forEach((t, i) => {
    const raw = one(t, 9).bytes!;
    assert.equal(raw.length, chunk);
    assert.equal(raw[0], i + 1);
    assert.equal(raw[chunk - 1], i + 1);
    assert.equal(text(one(t, 8).bytes), `w${i}`);
  });
});

test("onnxruntime reads ints attributes -1 (ReduceMean axes) and INT64_MAX (Slice-1 ends)", async () => {
  const x = new Float32Array([1, 2, 3, 4, 5, 6]); // [2, 3]
  const inputs = [{ name: "x", elemType: 1, dims: [2, 3] }] as const;
  const mean = encodeModel({
    opsetVersion: 17,
    graph: {
      name: "reduce-mean", inputs, initializers: [],
      outputs: [{ name: "y", elemType: 1, dims: [2, 1] }],
      nodes: [{ opType: "ReduceMean", inputs: ["x"], outputs: ["y"], attrs: [{ name: "axes", type: "ints", value: [-1] }] }],
    },
  });
  const slice = encodeModel({
    opsetVersion: 9, // Slice-1 takes starts/ends/axes as attributes
    irVersion: 4,
    graph: {
      name: "slice", inputs, initializers: [],
      outputs: [{ name: "y", elemType: 1, dims: [2, 2] }],
      nodes: [{
        opType: "Slice", inputs: ["x"], outputs: ["y"],
        attrs: [
          { name: "starts", type: "ints", value: [1] },
          { name: "ends", type: "ints", value: [2 ** 63] },
          { name: "axes", type: "ints", value: [-1] },
        ],
      }],
    },
  });
  for (const [bytes, name, want] of [[mean, "reduce-mean", [2, 5]], [slice, "slice", [2, 3, 5, 6]]] as const) {
    const s = await createSession(bytes, { provider: "cpu", graphName: name, threads: 1 });
    try {
      const { y } = await s.run({ x: { dtype: "float32", shape: [2, 3], data: x } });
      assert.deepEqual([...y!.data], want, name);
    } finally {
      await s.dispose();
    }
  }
});
