/** Tensors in host memory: the only tensor type that crosses the runtime boundary (no ORT types). */
import { ShapeError } from "../errors.js";

/** Element types a session accepts and returns. */
export type HostDType = "float32" | "float16" | "int64" | "int32" | "bool" | "float64" | "uint8";

/** The typed array behind each dtype; float16 is raw IEEE half bits, bool is one byte per element. */
export interface HostArrays {
  float32: Float32Array;
  float16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  bool: Uint8Array;
  float64: Float64Array;
  uint8: Uint8Array;
}

/** A dense row-major tensor in host memory; `dtype` decides the type of `data`. */
export type HostTensor = {
  [K in HostDType]: { readonly dtype: K; readonly shape: readonly number[]; readonly data: HostArrays[K] };
}[HostDType];

/** All dtypes, in a fixed order. */
export const HOST_DTYPES: readonly HostDType[] = [
  "float32",
  "float16",
  "int64",
  "int32",
  "bool",
  "float64",
  "uint8",
];

const CONSTRUCTORS: { readonly [K in HostDType]: new (n: number) => HostArrays[K] } = {
  float32: Float32Array,
  float16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  bool: Uint8Array,
  float64: Float64Array,
  uint8: Uint8Array,
};

/** Number of elements of a shape (1 for a scalar `[]`). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True when `s` names a HostDType. */
export function isHostDType(s: string): s is HostDType {
  return (HOST_DTYPES as readonly string[]).includes(s);
}

/** Builds a HostTensor, checking that `data` holds exactly the elements `shape` asks for. */
export function hostTensor<K extends HostDType>(
  dtype: K,
  shape: readonly number[],
  data: HostArrays[K],
): HostTensor {
  checkShape(shape, `${dtype} tensor`);
  const want = elementCount(shape);
  if (data.length !== want) {
    throw new ShapeError(
      `${dtype} tensor of shape [${shape.join(", ")}] needs ${want} elements (got ${data.length})`,
    );
  }
  return { dtype, shape, data } as HostTensor;
}

/** A zero-filled HostTensor, e.g. a preallocated output buffer for `Session.runInto`. */
export function zerosTensor(dtype: HostDType, shape: readonly number[]): HostTensor {
  checkShape(shape, `${dtype} tensor`);
  return { dtype, shape, data: new CONSTRUCTORS[dtype](elementCount(shape)) } as HostTensor;
}

/** Throws ShapeError unless every dim is a non-negative integer; `what` names the tensor. */
export function checkShape(shape: readonly number[], what: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${what}: dims must be non-negative integers (got [${shape.join(", ")}])`);
    }
  }
}
