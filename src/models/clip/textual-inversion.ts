/**
 * Textual-inversion embeddings (Gal et al. 2022): k learned vectors that stand in for a word.
 * Safetensors layouts read: kohya's `emb_params` [k, D]; AUTOMATIC1111's `string_to_param.*`
 * [k, D] (its .pt layout saved as safetensors); SDXL files' `clip_l` [k, 768] (the CLIP ViT-L
 * half, SD 1.x's width); diffusers' single `<token>` tensor [D] or [k, D]. Pickled .pt / .bin
 * files are refused by the caller: they are never unpickled.
 */
import { CheckpointError } from "../../errors.js";
import type { SafetensorsFile } from "../../io/safetensors.js";

/** An embedding's vectors, row-major [count, dim]. */
export interface EmbeddingVectors {
  readonly vectors: Float32Array;
  readonly count: number;
  readonly dim: number;
}

/** The tensor holding the vectors, by layout preference. */
function vectorTensor(file: SafetensorsFile): string {
  const names = [...file.tensors.keys()];
  const pick = names.find((n) => n === "emb_params") ?? names.find((n) => n.startsWith("string_to_param.")) ?? names.find((n) => n === "clip_l");
  if (pick !== undefined) return pick;
  const floats = names.filter((n) => ["F32", "F16", "BF16", "F64"].includes(file.tensors.get(n)?.dtype ?? ""));
  if (floats.length === 1 && floats[0] !== undefined) return floats[0];
  throw new CheckpointError(`${file.path}: not a textual-inversion embedding (expected an 'emb_params', 'string_to_param.*' or 'clip_l' tensor, or a single tensor; found ${names.slice(0, 5).join(", ") || "none"})`);
}

/** Reads an embedding's vectors and checks their width against the text encoder's (`hiddenSize`). */
export async function readEmbedding(file: SafetensorsFile, hiddenSize: number): Promise<EmbeddingVectors> {
  const name = vectorTensor(file);
  const shape = file.tensors.get(name)?.shape ?? [];
  const dim = shape[shape.length - 1] ?? 0;
  if (shape.length < 1 || shape.length > 2 || dim === 0 || (shape.length === 2 && (shape[0] ?? 0) === 0)) {
    throw new CheckpointError(`${file.path}: embedding tensor '${name}' has shape [${shape.join(", ")}]; expected [vectors, width] or [width]`);
  }
  if (dim !== hiddenSize) {
    throw new CheckpointError(`${file.path}: embedding vectors are ${dim} wide but this model's text encoder is ${hiddenSize} wide (768: SD 1.x, 1024: SD 2.x); use an embedding made for this model`);
  }
  const vectors = await file.readAsFloat32(name);
  return { vectors, count: vectors.length / dim, dim };
}
