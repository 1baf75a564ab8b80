/**
 * Training checkpoints: one safetensors file per run holding the parameters, both AdamW
 * moments and any extra tensors (EMA weights), with the step and generator state in its metadata,
 * so `--resume` continues at the same step with the same batches.
 */
import { CheckpointError } from "../errors.js";
import { type SafetensorsFile, openSafetensors, tensorToFloat32, writeSafetensors, type TensorInput } from "../io/safetensors.js";
import type { HostTensor } from "../runtime/host-tensor.js";

/** What a checkpoint holds. */
export interface RunState {
  readonly kind: string;
  readonly step: number;
  readonly rngState: number;
  readonly params: ReadonlyMap<string, HostTensor>;
  readonly m: ReadonlyMap<string, HostTensor>;
  readonly v: ReadonlyMap<string, HostTensor>;
  /** e.g. EMA weights, by parameter key. */
  readonly extra: ReadonlyMap<string, HostTensor>;
}

const GROUPS = ["params", "m", "v", "extra"] as const;

function f32(t: HostTensor, key: string): TensorInput {
  if (t.dtype !== "float32") throw new CheckpointError(`checkpoint tensor '${key}' is ${t.dtype}; training state is float32`);
  return { dtype: "F32", shape: t.shape, data: t.data };
}

/** Writes the state atomically (temp file + rename). */
export async function saveCheckpoint(path: string, s: RunState): Promise<void> {
  const tensors = new Map<string, TensorInput>();
  for (const group of GROUPS) for (const [k, t] of s[group]) tensors.set(`${group}/${k}`, f32(t, k));
  await writeSafetensors(path, tensors, { kind: s.kind, step: String(s.step), rng: String(s.rngState), format: "sdts-train-1" });
}

/** Every tensor of an open safetensors file, widened to float32 where stored narrower (fp16 weights). */
export async function readFloat32Tensors(file: SafetensorsFile): Promise<Map<string, HostTensor>> {
  const out = new Map<string, HostTensor>();
  for (const name of file.tensors.keys()) {
    const t = await file.read(name);
    out.set(name, { dtype: "float32", shape: t.shape, data: tensorToFloat32(t, name) });
  }
  return out;
}

/** Reads a checkpoint written by `saveCheckpoint`; `kind` must match the stage resuming it. */
export async function loadCheckpoint(path: string, kind: string): Promise<RunState> {
  const file = await openSafetensors(path);
  try {
    const meta = file.metadata ?? {};
    if (meta["format"] !== "sdts-train-1") throw new CheckpointError(`${path} is not an sdts training checkpoint`);
    if (meta["kind"] !== kind) throw new CheckpointError(`${path} is a '${meta["kind"] ?? "?"}' checkpoint; this run trains '${kind}' (use the run folder of the same stage)`);
    const groups = { params: new Map<string, HostTensor>(), m: new Map<string, HostTensor>(), v: new Map<string, HostTensor>(), extra: new Map<string, HostTensor>() };
    for (const [name, t] of await readFloat32Tensors(file)) {
      const cut = name.indexOf("/");
      const group = name.slice(0, cut) as (typeof GROUPS)[number];
      groups[group].set(name.slice(cut + 1), t);
    }
    return { kind, step: Number(meta["step"]), rngState: Number(meta["rng"]), ...groups };
  } finally {
    await file.close();
  }
}
