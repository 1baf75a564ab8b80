/** Conversions between reference-evaluator values and the runtime's host tensors. */
import { InputError } from "../errors.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { DType } from "./dtype.js";
import { f16Bits } from "./dtype.js";
import type { Value } from "./rule.js";

const F16_TO_F32 = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return t;
})();

/** A host tensor of the given dtype holding `data` (numbers). */
export function toHost(dtype: DType, shape: readonly number[], data: ArrayLike<number>): HostTensor {
  const n = data.length;
  switch (dtype) {
    case "float32":
      return { dtype, shape, data: Float32Array.from(data) };
    case "float64":
      return { dtype, shape, data: Float64Array.from(data) };
    case "float16":
      return { dtype, shape, data: Uint16Array.from({ length: n }, (_, i) => f16Bits(data[i] ?? 0)) };
    case "int64":
      return { dtype, shape, data: BigInt64Array.from({ length: n }, (_, i) => BigInt(Math.trunc(data[i] ?? 0))) };
    case "int32":
      return { dtype, shape, data: Int32Array.from(data) };
    case "bool":
      return { dtype, shape, data: Uint8Array.from({ length: n }, (_, i) => ((data[i] ?? 0) !== 0 ? 1 : 0)) };
  }
}

/** The numbers of a host tensor as float64. */
export function hostToNumbers(t: HostTensor): Float64Array {
  switch (t.dtype) {
    case "float16":
      return Float64Array.from(t.data, (h) => F16_TO_F32[h] ?? NaN);
    case "int64":
      return Float64Array.from(t.data, (v) => Number(v));
    default:
      return Float64Array.from(t.data as ArrayLike<number>);
  }
}

/** A host tensor as an evaluator value. */
export function hostToValue(t: HostTensor): Value {
  if (t.dtype === "uint8") throw new InputError("uint8 tensors are not graph values; cast them to float32 first");
  return { dtype: t.dtype, shape: t.shape, data: hostToNumbers(t) };
}

/** An evaluator value as a host tensor. */
export function valueToHost(v: Value): HostTensor {
  return toHost(v.dtype, v.shape, v.data);
}
