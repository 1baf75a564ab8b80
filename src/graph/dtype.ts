/** Element types of graph tensors and their ONNX codes. */

/** Element type of a graph tensor. */
export type DType = "float32" | "float16" | "float64" | "int64" | "int32" | "bool";

/** ONNX TensorProto.DataType code of each dtype. */
export const ONNX_DTYPE: { readonly [K in DType]: number } = {
  float32: 1,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  float64: 11,
};

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: { readonly [K in DType]: number } = {
  float32: 4,
  float16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  bool: 1,
};

/** True for the floating-point dtypes (the differentiable ones). */
export function isFloat(d: DType): boolean {
  return d === "float32" || d === "float16" || d === "float64";
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Rounds a double to the nearest float16 value (round-to-nearest-even), returned as a double. */
export function roundF16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const ax = Math.abs(x);
  if (ax >= 65520) return Math.sign(x) * Infinity;
  // Spacing of f16 values around |x|: 2^(e-10) for normals, 2^-24 for subnormals.
  const e = Math.max(Math.floor(Math.log2(ax)), -14);
  let ulp = 2 ** (e - 10);
  if (ax / ulp >= 2048) ulp *= 2; // log2 rounding at a power of two
  const q = ax / ulp;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q) - 0.5) === 0 && r % 2 === 1) r -= 1; // ties to even
  return Math.sign(x) * r * ulp;
}

/** Rounds a double to the value the dtype can hold (float32, float16, integer truncation, bool). */
export function roundTo(d: DType, x: number): number {
  switch (d) {
    case "float32":
      return Math.fround(x);
    case "float16":
      return roundF16(x);
    case "float64":
      return x;
    case "int64":
    case "int32":
      return Math.trunc(x);
    case "bool":
      return x !== 0 ? 1 : 0;
  }
}

/** Bit pattern of a float32, for printing and hashing. */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0] ?? 0;
}

/** Float16 bit pattern of a double (rounded to nearest even). */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const r = Math.abs(roundF16(x));
  if (r === Infinity) return sign | 0x7c00;
  if (r === 0) return sign;
  if (r < 2 ** -14) return sign | Math.round(r / 2 ** -24); // subnormal
  const e = Math.floor(Math.log2(r));
  const exp = r / 2 ** e >= 2 ? e + 1 : r / 2 ** e < 1 ? e - 1 : e;
  const mant = Math.round((r / 2 ** exp - 1) * 1024);
  return sign | ((exp + 15) << 10) | mant;
}

/** Little-endian bytes of values stored as the given dtype. */
export function encodeValues(d: DType, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  switch (d) {
    case "float32":
      return new Uint8Array(Float32Array.from(values).buffer);
    case "float64":
      return new Uint8Array(Float64Array.from(values).buffer);
    case "float16":
      return new Uint8Array(Uint16Array.from({ length: n }, (_, i) => f16Bits(values[i] ?? 0)).buffer);
    case "int64":
      return new Uint8Array(BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(values[i] ?? 0))).buffer);
    case "int32":
      return new Uint8Array(Int32Array.from(values).buffer);
    case "bool":
      return Uint8Array.from({ length: n }, (_, i) => ((values[i] ?? 0) !== 0 ? 1 : 0));
  }
}
