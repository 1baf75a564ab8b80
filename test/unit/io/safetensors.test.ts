import assert from "node:assert/strict";
import { mkdir, mkdtemp, open, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CheckpointError, InputError } from "../../../src/errors.js";
import {
  bf16ToF32,
  decodeSafetensors,
  encodeSafetensors,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  openSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type TensorData,
  type TensorInput,
} from "../../../src/io/safetensors.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const GOLDEN = `${GOLDEN_DIR}/`;
const TINY_UNET = join(GOLDEN, "tiny/unet/diffusion_pytorch_model.safetensors");
const TINY_UNET_F16 = join(GOLDEN, "tiny-pipeline/unet/diffusion_pytorch_model.safetensors");
const TEXT_IO = join(GOLDEN, "tiny/io/text_encoder_io.safetensors");

let dir = "";
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sdts-safetensors-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Float32 from raw bits, without going through a JS number (keeps NaN payloads). */
const f32 = (bits: number[]): Float32Array => new Float32Array(new Uint32Array(bits).buffer);
const bytesOf = (d: TensorData): Uint8Array => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
const isNanHalf = (h: number): boolean => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe("fp16 conversion", () => {
  it("widens hand-computed half bit patterns", () => {
    const got = f16ToF32(new Uint16Array([0x3c00, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0xb07c]));
    const want = [1, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, -0.14013671875];
    assert.deepEqual([...got], want);
    assert.ok(Object.is(got[5], -0));
    assert.ok(Number.isNaN(f16ToF32(new Uint16Array([0x7e00]))[0]));
  });

  it("narrows hand-computed float32 values, rounding to nearest even", () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-1e6, 0xfc00],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [0, 0x0000], [-0, 0x8000],
      [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25 * 2, 0x0002], [3 * 2 ** -26, 0x0001],
      [2 ** -14, 0x0400], [2 ** -14 - 2 ** -25, 0x0400], [2 ** -14 - 2 ** -24, 0x03ff], [1e-10, 0x0000],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -20, 0x3c01], [0.1, 0x2e66],
    ];
    const got = f32ToF16(new Float32Array(cases.map(([x]) => x)));
    cases.forEach(([x, h], i) => assert.equal(got[i], h, `f32ToF16(${x}) = 0x${got[i]!.toString(16)}, want 0x${h.toString(16)}`));
  });

  it("keeps NaN a NaN, even when the kept payload bits are zero", () => {
    const got = f32ToF16(f32([0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000]));
    assert.ok([...got].every(isNanHalf), [...got].map((h) => h.toString(16)).join(" "));
    assert.equal(got[1]! & 0x8000, 0x8000);
  });

  it("round-trips all 65536 half bit patterns f16 → f32 → f16 exactly", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    for (let i = 0; i < 65536; i++) assert.equal(back[i], i, `0x${i.toString(16)} came back as 0x${back[i]!.toString(16)}`);
  });

  it("matches an independent float64 nearest-even reference on a sweep of float32 values", () => {
    const bits: number[] = [];
    for (let b = 0; b < 0x7f800000; b += 4099) bits.push(b, (b | 0x80000000) >>> 0);
    const x = f32(bits);
    const got = f16ToF32(f32ToF16(x));
    for (let i = 0; i < x.length; i++) {
      const want = nearestHalf(x[i]!);
      assert.ok(Object.is(got[i], want), `x = ${x[i]}: got ${got[i]}, want ${want}`);
    }
  });

  it("agrees with PyTorch's .half() on every tensor of the tiny UNet", async () => {
    const [a, b] = await Promise.all([openSafetensors(TINY_UNET), openSafetensors(TINY_UNET_F16)]);
    try {
      assert.deepEqual([...a.tensors.keys()].sort(), [...b.tensors.keys()].sort());
      for (const name of a.tensors.keys()) {
        const [t32, t16] = await Promise.all([a.read(name), b.read(name)]);
        assert.ok(t32.dtype === "F32" && t16.dtype === "F16");
        assert.deepEqual(f32ToF16(t32.data), t16.data, name);
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("bf16 conversion", () => {
  it("widens and narrows hand-computed values", () => {
    assert.deepEqual([...bf16ToF32(new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x0001]))], [1, -2, Infinity, 2 ** -133]);
    const got = f32ToBf16(new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, -(2 ** -133) * 1.5]));
    assert.deepEqual([...got], [0x3f80, 0x3f80, 0x3f82, 0x7f80, 0x8002]);
    const nan = f32ToBf16(f32([0x7fc00000, 0x7f800001, 0xff810000]));
    assert.deepEqual([...nan], [0x7fc0, 0x7fc0, 0xff81]);
  });

  it("round-trips all 65536 bf16 bit patterns", () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    assert.deepEqual(f32ToBf16(bf16ToF32(all)), all);
  });
});

/** One tensor of every dtype, with edge values. */
function everyDtype(): Map<string, TensorInput> {
  return new Map<string, TensorInput>([
    ["f32", { dtype: "F32", shape: [2, 3], data: f32([0x3f800000, 0x80000000, 0x7f800000, 0x7fc00001, 1, 0xff7fffff]) }],
    ["f16", { dtype: "F16", shape: [3], data: new Uint16Array([0x3c00, 0x7e01, 0x8001]) }],
    ["bf16", { dtype: "BF16", shape: [2], data: new Uint16Array([0x3f80, 0xff81]) }],
    ["f64", { dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -Number.MIN_VALUE]) }],
    ["i64", { dtype: "I64", shape: [3], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 49406n]) }],
    ["i32", { dtype: "I32", shape: [2], data: new Int32Array([-(2 ** 31), 2 ** 31 - 1]) }],
    ["i16", { dtype: "I16", shape: [2], data: new Int16Array([-32768, 32767]) }],
    ["i8", { dtype: "I8", shape: [3], data: new Int8Array([-128, 0, 127]) }],
    ["u8", { dtype: "U8", shape: [1, 3], data: new Uint8Array([0, 128, 255]) }],
    ["bool", { dtype: "BOOL", shape: [3], data: new Uint8Array([1, 0, 1]) }],
    ["scalar", { dtype: "F32", shape: [], data: new Float32Array([42]) }],
    ["empty", { dtype: "F32", shape: [0, 3], data: new Float32Array(0) }],
  ]);
}

describe("round trip", () => {
  it("writes and reads every dtype bit-exactly, with metadata and the reference layout", async () => {
    const path = join(dir, "every.safetensors");
    const tensors = everyDtype();
    await writeSafetensors(path, tensors, { format: "pt", note: "ü" });
    const raw = await readFile(path);
    const n = Number(raw.readBigUInt64LE(0));
    assert.equal(n % 8, 0, "header padded to a multiple of 8");
    const file = await openSafetensors(path);
    try {
      assert.deepEqual(file.metadata, { format: "pt", note: "ü" });
      assert.deepEqual([...file.tensors.keys()], [...tensors.keys()]);
      let end = 8 + n;
      for (const [name, t] of tensors) {
        const info = file.tensors.get(name)!;
        assert.equal(info.byteOffset, end, `${name} follows the previous tensor`);
        end += info.byteLength;
        const got = await file.read(name);
        assert.equal(got.dtype, t.dtype);
        assert.deepEqual(got.shape, t.shape);
        assert.equal(got.data.constructor, t.data.constructor);
        assert.deepEqual(bytesOf(got.data), bytesOf(t.data), name);
      }
      assert.equal(end, raw.length);
    } finally {
      await file.close();
    }
  });

  it("encodes and decodes in memory to the same bytes as the file", async () => {
    const path = join(dir, "mem.safetensors");
    await writeSafetensors(path, everyDtype());
    const bytes = encodeSafetensors(everyDtype());
    assert.deepEqual(bytes, new Uint8Array(await readFile(path)));
    const { metadata, tensors } = decodeSafetensors(bytes);
    assert.deepEqual(metadata, {});
    for (const [name, t] of everyDtype()) assert.deepEqual(bytesOf(tensors.get(name)!.data), bytesOf(t.data), name);
  });

  it("accepts a plain object, keeping its order, and Float32Array for F16 and BF16 targets", async () => {
    const x = new Float32Array([1, 1 + 2 ** -11, 65520, 2 ** -24, -0.1]);
    const bytes = encodeSafetensors({ z: { dtype: "F16", shape: [5], data: x }, a: { dtype: "BF16", shape: [5], data: x } });
    const { tensors } = decodeSafetensors(bytes);
    assert.deepEqual([...tensors.keys()], ["z", "a"]);
    assert.deepEqual(tensors.get("z")!.data, f32ToF16(x));
    assert.deepEqual(tensors.get("a")!.data, f32ToBf16(x));
  });

  it("reads tensors whose data is not aligned in the file into aligned arrays", () => {
    const bytes = encodeSafetensors(new Map<string, TensorInput>([
      ["odd", { dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) }],
      ["w", { dtype: "F32", shape: [2], data: new Float32Array([0.5, -8]) }],
    ]));
    const header = readSafetensorsHeader(bytes);
    assert.equal(header.tensors.get("w")!.byteOffset % 4, 3);
    const w = decodeSafetensors(bytes).tensors.get("w")!;
    assert.deepEqual([...(w.data as Float32Array)], [0.5, -8]);
  });

  it("rejects tensors whose data does not fit their dtype or shape", () => {
    const bad: [Record<string, TensorInput>, RegExp][] = [
      [{ w: { dtype: "F32", shape: [2], data: new Float64Array(2) } }, /F32 data must be a Float32Array, got Float64Array/],
      [{ w: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }, /holds 4 elements, data has 3/],
      [{ w: { dtype: "F32", shape: [-1], data: new Float32Array(0) } }, /must be non-negative integers/],
      [{ b: { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 2]) } }, /BOOL data must hold only 0 and 1/],
      [{ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array(0) } }, /reserved for metadata/],
    ];
    for (const [t, re] of bad) assert.throws(() => encodeSafetensors(t), (e) => e instanceof InputError && re.test(e.message));
  });
});

describe("golden files", () => {
  it("lists the tiny UNet's F32 header and reads finite values", async () => {
    const file = await openSafetensors(TINY_UNET);
    try {
      assert.equal(file.tensors.size, 304);
      assert.deepEqual(file.metadata, { format: "pt" });
      const w = file.tensors.get("conv_in.weight")!;
      assert.deepEqual({ dtype: w.dtype, shape: w.shape, byteLength: w.byteLength }, {
        dtype: "F32", shape: [32, 4, 3, 3], byteLength: 32 * 4 * 9 * 4,
      });
      const x = await file.readAsFloat32("conv_in.weight");
      assert.equal(x.length, 32 * 4 * 9);
      assert.ok(x.every(Number.isFinite) && x.some((v) => v !== 0));
      assert.equal((await file.readAsFloat32("conv_in.bias"))[0], Math.fround(-0.14009446));
    } finally {
      await file.close();
    }
  });

  it("reads the fp16 pipeline UNet as raw bits and as float32", async () => {
    const file = await openSafetensors(TINY_UNET_F16);
    try {
      const t = await file.read("conv_in.bias");
      assert.equal(t.dtype, "F16");
      assert.deepEqual([...t.data.subarray(0, 3)], [45180, 6408, 12340]);
      const x = await file.readAsFloat32("conv_in.bias");
      assert.equal(x[0], -0.14013671875);
      assert.ok(x.every(Number.isFinite));
    } finally {
      await file.close();
    }
  });

  it("reads I64 token ids and F64 timesteps", async () => {
    const file = await openSafetensors(TEXT_IO);
    try {
      const ids = await file.read("input_ids");
      assert.ok(ids.dtype === "I64");
      assert.deepEqual(ids.shape, [2, 77]);
      assert.deepEqual([...ids.data.subarray(0, 3)], [998n, 895n, 373n]);
      await assert.rejects(file.readAsFloat32("input_ids"), /is I64.*use read\(\)/);
      await assert.rejects(file.read("nope"), /no tensor "nope" \(the file has 6, e\.g\. /);
    } finally {
      await file.close();
    }
    const cases = await openSafetensors(join(GOLDEN, "tiny-pipeline/cases/euler.safetensors"));
    try {
      const f64 = [...cases.tensors.values()].filter((t) => t.dtype === "F64");
      assert.ok(f64.length > 0);
      const v = await cases.readAsFloat32(f64[0]!.name);
      assert.ok(v.length > 0 && v.every(Number.isFinite));
    } finally {
      await cases.close();
    }
  });
});

/** A file: 8-byte length (or `length` if given), then `header`, then `data` zero bytes. */
function rawFile(header: string | Uint8Array, data = 0, length?: bigint): Uint8Array {
  const h = typeof header === "string" ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  out.set(h, 8);
  return out;
}

const entry = (dtype: unknown, shape: unknown, offsets: unknown): string => JSON.stringify({ dtype, shape, data_offsets: offsets });

const MALFORMED: [string, Uint8Array, RegExp][] = [
  ["empty file", new Uint8Array(0), /0 bytes, shorter than the 8-byte header length; .*re-download it/],
  ["5-byte file", new Uint8Array(5), /5 bytes, shorter than/],
  ["header length 2^62", rawFile("{}", 0, 2n ** 62n), /header length 4611686018427387904 bytes exceeds the 100000000-byte limit/],
  ["header length 100 MB + 1", rawFile("{}", 0, 100_000_001n), /exceeds the 100000000-byte limit/],
  ["header longer than the file", rawFile("{}", 0, 50n), /header length 50 bytes but only 2 bytes follow; the file is truncated/],
  ["invalid UTF-8", rawFile(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /header is not valid UTF-8 JSON/],
  ["invalid JSON", rawFile('{"a": '), /header is not valid UTF-8 JSON/],
  ["JSON array", rawFile("[1, 2]"), /header is not a JSON object/],
  ["JSON null", rawFile("null"), /header is not a JSON object/],
  ["entry not an object", rawFile('{"a": 3}'), /tensor "a": entry is not an object/],
  ["entry without dtype", rawFile('{"a": {"shape": [1], "data_offsets": [0, 4]}}', 4), /"a": entry needs dtype, shape and data_offsets/],
  ["unknown dtype", rawFile(`{"a": ${entry("Q4", [1], [0, 4])}}`, 4), /"a" has dtype "Q4", expected one of F64, F32/],
  ["dtype not a string", rawFile(`{"a": ${entry(4, [1], [0, 4])}}`, 4), /has dtype 4, expected one of/],
  ["shape a string", rawFile(`{"a": ${entry("F32", "1", [0, 4])}}`, 4), /shape "1" is not a list of non-negative integers/],
  ["negative dim", rawFile(`{"a": ${entry("F32", [-1], [0, 4])}}`, 4), /shape \[-1\] is not a list/],
  ["fractional dim", rawFile(`{"a": ${entry("F32", [1.5], [0, 4])}}`, 4), /shape \[1.5\] is not a list/],
  ["one offset", rawFile(`{"a": ${entry("F32", [1], [4])}}`, 4), /data_offsets \[4\] is not \[begin, end\]/],
  ["string offsets", rawFile(`{"a": ${entry("F32", [1], ["0", "4"])}}`, 4), /data_offsets \["0","4"\] is not/],
  ["size mismatch", rawFile(`{"a": ${entry("F32", [2], [0, 4])}}`, 8), /F32 \[2\] needs 8 bytes, data_offsets span 4/],
  ["begin after end", rawFile(`{"a": ${entry("F32", [1], [8, 4])}}`, 8), /data_offsets \[8, 4\] has begin after end/],
  ["end past the data", rawFile(`{"a": ${entry("F32", [4], [0, 16])}}`, 12), /data ends at byte 16 but the data section has only 12 bytes/],
  [
    "overlapping tensors",
    rawFile(`{"a": ${entry("F32", [2], [0, 8])}, "b": ${entry("F32", [2], [4, 12])}}`, 12),
    /tensors "a" \[0, 8\] and "b" \[4, 12\] overlap/,
  ],
  ["metadata not strings", rawFile('{"__metadata__": {"epoch": 3}}'), /"__metadata__"."epoch" is number, expected a string/],
  ["metadata not an object", rawFile('{"__metadata__": "x"}'), /"__metadata__" must be an object of strings/],
];

describe("malformed files", () => {
  for (const [what, bytes, re] of MALFORMED) {
    it(`rejects ${what}`, async () => {
      const path = join(dir, `bad-${what.replace(/\W+/g, "-")}.safetensors`);
      await writeFile(path, bytes);
      const named = (e: unknown): boolean =>
        e instanceof CheckpointError && e.message.startsWith(`${path}: `) && re.test(e.message);
      await assert.rejects(openSafetensors(path), named);
      assert.throws(() => readSafetensorsHeader(bytes), (e) => e instanceof CheckpointError && re.test(e.message));
    });
  }

  it("accepts gaps between tensors and a zero-length tensor inside another's span", async () => {
    const bytes = rawFile(`{"a": ${entry("U8", [2], [0, 2])}, "b": ${entry("U8", [2], [6, 8])}, "e": ${entry("F32", [0], [1, 1])}}`, 8);
    bytes.set([5, 6], bytes.length - 2);
    const { tensors } = decodeSafetensors(bytes);
    assert.deepEqual([...tensors.get("b")!.data], [5, 6]);
    assert.equal(tensors.get("e")!.data.length, 0);
  });

  it("rejects a missing path and a folder", async () => {
    await assert.rejects(openSafetensors(join(dir, "missing.safetensors")), /missing\.safetensors: cannot open .*check the path/);
    await assert.rejects(openSafetensors(dir), /not a regular file/);
  });

  it("reads a header from the first bytes only, given the file size", () => {
    const bytes = encodeSafetensors({ w: { dtype: "F32", shape: [4], data: new Float32Array(4) } });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = readSafetensorsHeader(bytes.subarray(0, 8 + n), { fileSize: bytes.length });
    assert.equal(header.tensors.get("w")!.byteOffset, 8 + n);
    assert.throws(() => readSafetensorsHeader(bytes.subarray(0, 8 + n), { fileSize: 8 + n + 15 }), /data section has only 15 bytes/);
  });
});

describe("large files", () => {
  it("reads the header and a tensor past 4 GiB of a sparse file without reading the rest", async (t) => {
    const big = 2 ** 32 + 8;
    const header = new TextEncoder().encode(`{"big": ${entry("U8", [big], [0, big])}, "tail": ${entry("F32", [2], [big, big + 8])}}`);
    const path = join(dir, "sparse.safetensors");
    const fh = await open(path, "w");
    try {
      await fh.write(rawFile(header));
      await fh.truncate(8 + header.length + big);
      await fh.write(new Uint8Array(new Float32Array([1.5, -3]).buffer), 0, 8, 8 + header.length + big);
    } catch (e) {
      t.skip(`this filesystem cannot hold a sparse 4 GiB file (${String(e)})`);
      return;
    } finally {
      await fh.close();
    }
    const file = await openSafetensors(path);
    try {
      assert.equal(file.tensors.get("big")!.byteLength, big);
      assert.equal(file.tensors.get("tail")!.byteOffset, 8 + header.length + big);
      assert.deepEqual([...(await file.readAsFloat32("tail"))], [1.5, -3]);
    } finally {
      await file.close();
      await rm(path);
    }
  });
});

describe("atomic write", () => {
  const one = { w: { dtype: "F32", shape: [1], data: new Float32Array([7]) } } as const;

  it("fails into a missing folder and leaves nothing behind", async () => {
    const parent = join(dir, "atomic-missing");
    await mkdir(parent);
    await assert.rejects(writeSafetensors(join(parent, "no/such/x.safetensors"), one), /cannot write .*create the folder/);
    assert.deepEqual(await readdir(parent), []);
  });

  it("replaces an existing file only after a successful write", async () => {
    const folder = join(dir, "atomic-replace");
    await mkdir(folder);
    const path = join(folder, "m.safetensors");
    await writeFile(path, "old");
    await assert.rejects(writeSafetensors(path, { w: { dtype: "F32", shape: [2], data: new Float32Array(1) } }), InputError);
    assert.equal(await readFile(path, "utf8"), "old");
    await writeSafetensors(path, one);
    assert.deepEqual(await readdir(folder), ["m.safetensors"]);
    const { tensors } = decodeSafetensors(new Uint8Array(await readFile(path)));
    assert.deepEqual([...(tensors.get("w")!.data as Float32Array)], [7]);
  });

  it("removes its temp file when the final rename fails", async () => {
    const folder = join(dir, "atomic-rename");
    await mkdir(join(folder, "taken.safetensors"), { recursive: true });
    await writeFile(join(folder, "taken.safetensors", "keep"), "x");
    await assert.rejects(writeSafetensors(join(folder, "taken.safetensors"), one), CheckpointError);
    assert.deepEqual(await readdir(folder), ["taken.safetensors"]);
    assert.deepEqual(await readdir(join(folder, "taken.safetensors")), ["keep"]);
  });
});

/** The float32 value of the half nearest to `x` (ties to even), computed in float64. */
function nearestHalf(x: number): number {
  const a = Math.abs(x);
  if (a >= 65520) return Math.sign(x) * Infinity;
  let e = Math.max(Math.floor(Math.log2(a)), -14);
  if (2 ** e > a && e > -14) e--;
  if (2 ** (e + 1) <= a) e++;
  const q = a / 2 ** (e - 10); // in [1024, 2048) units of the half's last place (or below for subnormals)
  const f = Math.floor(q);
  const r = q - f > 0.5 || (q - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  const v = r * 2 ** (e - 10);
  return x < 0 || Object.is(x, -0) ? -v : v;
}
