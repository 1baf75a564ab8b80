/**
 * Shared by the tests of the tiny diffusers U-Net fixtures (test/fixtures/unet-*-embed, made by
 * scripts/make-unet-*-fixture.py): compiling a graph on a fixture's weights, its tensor shapes,
 * and the reference inputs its io.safetensors holds.
 */
import type { CompiledGraph } from "../../../src/graph/compile.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import type { SafetensorsFile } from "../../../src/io/safetensors.js";
import { loadComponent } from "../../../src/models/component.js";
import { identityWeights } from "../../../src/models/weights.js";
import type { Scope } from "../../../src/nn/scope.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";

export function f32(shape: number[], data: Float32Array): HostTensor {
  return { dtype: "float32", shape, data };
}

/** Compiles `build` with the parameters read from the safetensors file at `weights`. */
export async function fixtureGraph(name: string, weights: string, build: (root: Scope) => Record<string, Tensor>): Promise<CompiledGraph> {
  const { file, weights: map } = await identityWeights(weights);
  try {
    return await loadComponent(name, build, map);
  } finally {
    await file.close();
  }
}

/** Every tensor's shape in the safetensors file at `weights`. */
export async function fixtureShapes(weights: string): Promise<Map<string, readonly number[]>> {
  const { file } = await identityWeights(weights);
  const shapes = new Map([...file.tensors].map(([k, t]) => [k, t.shape as readonly number[]]));
  await file.close();
  return shapes;
}

/** The U-Net inputs of a fixture's io.safetensors: sample [2,4,8,8], timestep [2], encoder_hidden_states [2,16,32] (and class_labels [2,32] when asked). */
export async function unetFeeds(io: SafetensorsFile, classLabels = false): Promise<Record<string, HostTensor>> {
  const feeds: Record<string, HostTensor> = {
    sample: f32([2, 4, 8, 8], await io.readAsFloat32("sample")),
    timestep: f32([2], await io.readAsFloat32("timestep")),
    encoder_hidden_states: f32([2, 16, 32], await io.readAsFloat32("encoder_hidden_states")),
  };
  if (classLabels) feeds["class_labels"] = f32([2, 32], await io.readAsFloat32("class_labels"));
  return feeds;
}
