/** sdts: Stable Diffusion in TypeScript. The public API. */
export { VERSION } from "./version.js";
export { BackendError, CheckpointError, ConfigError, InputError, InternalError, SdtsError, ShapeError } from "./errors.js";

// Engine: graph IR, autodiff, export, runtime.
export * as graph from "./graph/ops.js";
export { constant, input, scalar } from "./graph/apply.js";
export { Tensor as GraphTensor } from "./graph/tensor.js";
export type { DType } from "./graph/dtype.js";
export type { Dim, Shape } from "./graph/shape.js";
export { evaluate } from "./graph/eval.js";
export { grad } from "./graph/grad.js";
export { printGraph } from "./graph/print.js";
export { exportOnnx, type ExportOptions, type InitializerData } from "./graph/onnx/export.js";
export { compile, type CompiledGraph, type CompileOptions } from "./graph/compile.js";
export type { HostTensor } from "./runtime/host-tensor.js";
export type { Provider } from "./runtime/providers.js";
export { availableProviders } from "./runtime/providers.js";

// Training.
export { ADAMW_DEFAULTS, adamwUpdate, type AdamWConfig } from "./train/adamw.js";
export { Trainer, buildTrainStep, type TrainStepOptions } from "./train/train-step.js";
export { trainVae, type VaeTrainOptions } from "./train/vae.js";
export { trainClip, type ClipTrainOptions } from "./train/clip.js";
export { DEFAULT_MIN_SNR_GAMMA, DEFAULT_PREDICTION, trainUNet, type TrainPrediction, type UNetTrainOptions } from "./train/unet.js";
export { exportModel, DEFAULT_EXPORT_CFG, DEFAULT_EXPORT_SAMPLER, MAX_MODEL_BYTES, type ExportRuns, type ExportResult } from "./train/export.js";
export type { TrainOptions, TrainProgress, TrainResult } from "./train/run.js";
export { isPreset, type PresetName } from "./train/presets.js";
export { buildEmojiDataset, type EmojiDatasetOptions, type EmojiDatasetResult } from "./train/datasets/build-emoji.js";
export { learnBpe, type LearntBpe } from "./train/bpe.js";

// Stable Diffusion.
export { loadModel, inspectModel, type LoadModelOptions } from "./pipelines/load-model.js";
export { Model, type ModelInfo, type LoraParams } from "./pipelines/model.js";
export type { EmbeddingInfo, EmbeddingList, LoraInfo, LoraRequest } from "./pipelines/adapters.js";
export { extractLoraTags, type LoraTag } from "./pipelines/lora-tags.js";
export type { Tensor, ProgressInfo } from "./pipelines/types.js";
export type { Txt2ImgParams, Txt2ImgResult, Txt2ImgInfo } from "./pipelines/txt2img.js";
export type { Img2ImgParams } from "./pipelines/img2img.js";
export type { InpaintParams, InpaintFill } from "./pipelines/inpaint.js";
export type { InpaintModeParams } from "./pipelines/inpaint-modes.js";
export type { Outpaint } from "./pipelines/outpaint.js";
export { HIRES_UPSCALERS, type HiresParams } from "./pipelines/hires.js";
export { resizeLatents } from "./pipelines/latent-resize.js";
export { loadTokenizer } from "./pipelines/load-tokenizer.js";
export { ClipTokenizer } from "./models/clip/tokenizer.js";
export { randn, TorchGenerator } from "./schedulers/torch-random.js";
export { SAMPLERS } from "./schedulers/samplers.js";
export { formatInfotext, parseInfotext } from "./pipelines/infotext.js";
export { parsePromptAttention, promptSchedules, multicondSubprompts, tokenizeWeighted, applyEmphasis } from "./pipelines/prompt-syntax/index.js";
export type { PromptSyntax } from "./pipelines/conditioning.js";
export { previewPng, latentToRgb } from "./pipelines/preview.js";
export type { Explanation, TokenHeatmap } from "./pipelines/explain.js";

// Files.
export { encodeSafetensors, openSafetensors, writeSafetensors } from "./io/safetensors.js";
export { addPngText, readPngText } from "./io/png-text.js";
export { writeNumbered } from "./io/output-files.js";
