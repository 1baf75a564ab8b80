/** Messages between the HTTP thread and the generation worker (structured-clone safe). */
import type { Explanation } from "../index.js";

/** The generation parameters of one worker run: one txt2img call (a batch of images). */
export interface RunParams {
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly steps: number;
  readonly cfgScale: number;
  readonly sampler: string;
  readonly seed: number;
  readonly width: number;
  readonly height: number;
  readonly batchSize: number;
  readonly explain: boolean;
}

/** What the worker reports about a loaded model. */
export interface LoadedModel {
  readonly name: string;
  readonly family: string;
  readonly source: string;
  readonly defaults: { readonly width: number; readonly height: number; readonly sampler: string };
}

/** Explain data as the library returns it (cross-attention heatmaps and the per-step filmstrip). */
export type ExplainData = Explanation;

/** The outcome of one run. */
export interface RunResult {
  readonly images: Uint8Array[];
  readonly seeds: number[];
  readonly info: {
    prompt: string;
    negativePrompt: string;
    steps: number;
    cfgScale: number;
    sampler: string;
    seed: number;
    seeds: number[];
    width: number;
    height: number;
    batchSize: number;
    model: string;
    infotexts: string[];
  };
  readonly explain?: ExplainData;
}

/** HTTP thread → worker. `seq` numbers each request; the cancel flag in shared memory names the seq to stop. */
export type ToWorker =
  | { readonly type: "load"; readonly seq: number; readonly source: string; readonly provider: string }
  | { readonly type: "run"; readonly seq: number; readonly params: RunParams; readonly previewEvery: number };

/** Worker → HTTP thread. */
export type FromWorker =
  | { readonly type: "loaded"; readonly seq: number; readonly model: LoadedModel }
  | { readonly type: "progress"; readonly seq: number; readonly step: number; readonly total: number; readonly preview?: Uint8Array }
  | { readonly type: "done"; readonly seq: number; readonly result: RunResult }
  | { readonly type: "cancelled"; readonly seq: number }
  | { readonly type: "error"; readonly seq: number; readonly name: string; readonly message: string };

/** Slots of the shared Int32Array the HTTP thread writes and the worker polls between steps. */
export const CANCEL_SLOT = 0;
