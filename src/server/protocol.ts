/** Messages between the HTTP thread and the generation worker (structured-clone safe). */
import type { EmbeddingList, Explanation, LoraInfo, Txt2ImgInfo } from "../index.js";

/** A LoRA to apply to a run, by its name in the LoRA folder (or its alias). */
export interface LoraRun {
  readonly name: string;
  readonly weight: number;
}

/** What every worker run has: one call of the library (a batch of images). */
export interface BaseRun {
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly steps: number;
  readonly cfgScale: number;
  readonly sampler: string;
  readonly seed: number;
  /** The output size (img2img and inpainting resize the input image to it). */
  readonly width: number;
  readonly height: number;
  readonly batchSize: number;
  /** LoRAs besides the prompt's `<lora:name:weight>` tags (which the library reads itself). */
  readonly loras?: readonly LoraRun[];
}

/** The hires fix's second pass, its target size already worked out (HiresParams of the library). */
export interface HiresRun {
  readonly scale: number;
  readonly width: number;
  readonly height: number;
  /** A name from HIRES_UPSCALERS. */
  readonly upscaler: string;
  /** 0 = the first pass's steps. */
  readonly steps: number;
  readonly denoisingStrength: number;
}

/** Text to image, with the hires fix if `hires` is set. */
export interface Txt2ImgRun extends BaseRun {
  readonly kind: "txt2img";
  readonly explain: boolean;
  readonly hires?: HiresRun;
}

/** Image to image: `image` is PNG/JPEG/WebP bytes. */
export interface Img2ImgRun extends BaseRun {
  readonly kind: "img2img";
  readonly image: Uint8Array;
  readonly strength: number;
  /** A1111's resize modes: 0 just resize, 1 crop and resize, 2 resize and fill. */
  readonly resizeMode: 0 | 1 | 2;
}

/** Pixels added on each side when outpainting. */
export interface OutpaintRun {
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
}

/** Inpainting (white = repaint) and outpainting. */
export interface InpaintRun extends Omit<Img2ImgRun, "kind"> {
  readonly kind: "inpaint";
  /** Required unless `outpaint` is set. */
  readonly mask?: Uint8Array;
  readonly maskBlur: number;
  /** A1111's inpainting_fill: 0 fill, 1 original, 2 latent noise, 3 latent nothing. */
  readonly fill: 0 | 1 | 2 | 3;
  readonly invertMask: boolean;
  readonly onlyMasked: boolean;
  readonly onlyMaskedPadding: number;
  readonly outpaint?: OutpaintRun;
}

/** The parameters of one worker run; `kind` picks the library call. */
export type RunParams = Txt2ImgRun | Img2ImgRun | InpaintRun;

/** What the worker reports about a loaded model. */
export interface LoadedModel {
  readonly name: string;
  readonly family: string;
  readonly source: string;
  readonly defaults: { readonly width: number; readonly height: number; readonly sampler: string; readonly cfgScale?: number };
  /** A 9-channel inpainting checkpoint (it only inpaints). */
  readonly inpainting: boolean;
  /** The LoRA folder's files when the model loaded (or last re-listed). */
  readonly loras: readonly LoraInfo[];
  /** Why the LoRA folder could not be listed, if it could not. */
  readonly lorasError?: string;
  /** Textual-inversion embeddings loaded with the model, and those skipped. */
  readonly embeddings: EmbeddingList;
}

/** What requests default to while no model is loaded (SD 1.x's size and A1111's sampler). */
export const NO_MODEL_DEFAULTS: LoadedModel["defaults"] = { width: 512, height: 512, sampler: "Euler a" };

/** loadModel options the server passes on (the `sdts serve` flags). */
export interface LoadOptions {
  readonly provider: string;
  readonly loraDir?: string;
  readonly embeddingsDir?: string;
}

/** Explain data as the library returns it (cross-attention heatmaps and the per-step filmstrip). */
export type ExplainData = Explanation;

/** The outcome of one run. */
export interface RunResult {
  readonly images: Uint8Array[];
  readonly seeds: number[];
  readonly info: Txt2ImgInfo;
  readonly explain?: ExplainData;
}

/**
 * Progress of a run. The hires fix samples more than once (the base pass, then one second pass,
 * or one per image with an image upscaler): `step`/`total` count sampler calls over all passes
 * (`step` never goes back; `total` is an estimate until the last pass starts), `passStep`/`passTotal`
 * within the current pass.
 */
export interface PassProgress {
  readonly step: number;
  readonly total: number;
  readonly pass: number;
  readonly passes: number;
  readonly passStep: number;
  readonly passTotal: number;
}

/** HTTP thread → worker. `seq` numbers each request; the cancel flag in shared memory names the seq to stop. */
export type ToWorker =
  | { readonly type: "load"; readonly seq: number; readonly source: string; readonly options: LoadOptions }
  | { readonly type: "list-loras"; readonly seq: number }
  | { readonly type: "run"; readonly seq: number; readonly params: RunParams; readonly previewEvery: number };

/** Worker → HTTP thread. */
export type FromWorker =
  | { readonly type: "loaded"; readonly seq: number; readonly model: LoadedModel }
  | { readonly type: "loras"; readonly seq: number; readonly loras: LoraInfo[] }
  | { readonly type: "progress"; readonly seq: number; readonly progress: PassProgress; readonly preview?: Uint8Array }
  | { readonly type: "done"; readonly seq: number; readonly result: RunResult }
  | { readonly type: "cancelled"; readonly seq: number }
  | { readonly type: "error"; readonly seq: number; readonly name: string; readonly message: string };

/** The error name the worker reports for a run or listing while it holds no model (a 503, not a bad request). */
export const NO_MODEL = "NoModel";

/** Slots of the shared Int32Array the HTTP thread writes and the worker polls between steps. */
export const CANCEL_SLOT = 0;
