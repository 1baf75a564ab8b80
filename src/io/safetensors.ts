/** Safetensors checkpoints: lazy, validated reading and atomic writing (see safetensors-read/-write). */

export {
  DTYPE_SIZE,
  MAX_HEADER_BYTES,
  bf16ToF32,
  decodeSafetensors,
  f16ToF32,
  isDtype,
  openSafetensors,
  readSafetensorsHeader,
  tensorToFloat32,
  type Dtype,
  type DtypeArrays,
  type HeaderOptions,
  type SafetensorsFile,
  type SafetensorsHeader,
  type TensorData,
  type TensorInfo,
  type TypedTensor,
} from "./safetensors-read.js";
export {
  encodeSafetensors,
  f32ToBf16,
  f32ToF16,
  writeSafetensors,
  type TensorInput,
  type TensorsInput,
} from "./safetensors-write.js";
