/**
 * The CLIP text encoder (transformers `CLIPTextModel`, the text tower of OpenAI CLIP and of
 * OpenCLIP): its configuration, named presets, the transformers `config.json` parser and
 * detection from checkpoint tensor shapes.
 */
import { ConfigError } from "../../errors.js";
import { type ClipLayout, clipLayoutPrefix, detectClipLayout } from "./keys.js";

/** The MLP activation: CLIP's sigmoid approximation (OpenAI CLIP, SD 1.x) or exact erf GELU (OpenCLIP, SD 2.x). */
export type ClipActivation = "quick_gelu" | "gelu";

/** A CLIP text transformer's shape. */
export interface ClipTextConfig {
  /** Rows of the token embedding (49408 for CLIP's BPE). */
  readonly vocabSize: number;
  /** Width D of the residual stream. */
  readonly hiddenSize: number;
  /**
   * Encoder layers the model has and runs (before `clipSkip`). SD 2.x uses 23 of OpenCLIP's 24
   * blocks (the penultimate block's output); its config says 23 and the 24th block is unused.
   */
  readonly numLayers: number;
  /** Attention heads per layer (hiddenSize / numHeads is the head dim). */
  readonly numHeads: number;
  /** Hidden width of each layer's MLP. */
  readonly intermediateSize: number;
  /** Rows of the position embedding: the longest token sequence (77). */
  readonly maxPositions: number;
  /** MLP activation. */
  readonly activation: ClipActivation;
  /** LayerNorm ε everywhere. */
  readonly layerNormEps: number;
  /**
   * Picks the pooled row, as transformers 4.38 does: 2 (the legacy value every SD config has)
   * means "the position of the largest id" (CLIP's EOS 49407 is the largest); any other value
   * means "the first position holding this id".
   */
  readonly eosTokenId: number;
}

/** OpenAI CLIP ViT-L/14's text tower, SD 1.x's text encoder (runwayml/stable-diffusion-v1-5 `text_encoder/`). */
export const SD15_CLIP: ClipTextConfig = Object.freeze({
  vocabSize: 49408,
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  intermediateSize: 3072,
  maxPositions: 77,
  activation: "quick_gelu",
  layerNormEps: 1e-5,
  eosTokenId: 2,
});

/** OpenCLIP ViT-H/14's text tower as SD 2.x runs it: 23 of its 24 layers (stabilityai/stable-diffusion-2-1 `text_encoder/`). */
export const SD21_CLIP: ClipTextConfig = Object.freeze({
  vocabSize: 49408,
  hiddenSize: 1024,
  numLayers: 23,
  numHeads: 16,
  intermediateSize: 4096,
  maxPositions: 77,
  activation: "gelu",
  layerNormEps: 1e-5,
  eosTokenId: 2,
});

/** Learned parameters of a text encoder with this config (embeddings, layers, final LayerNorm). */
export function clipTextParamCount(c: ClipTextConfig): number {
  const d = c.hiddenSize;
  const f = c.intermediateSize;
  const layer = 4 * (d * d + d) + 2 * 2 * d + (d * f + f) + (f * d + d);
  return c.vocabSize * d + c.maxPositions * d + c.numLayers * layer + 2 * d;
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ConfigError(`CLIP text config: ${field} must be a positive integer (got ${JSON.stringify(v)})`);
  }
  return v;
}

function activation(v: unknown): ClipActivation {
  if (v === "quick_gelu" || v === "gelu") return v;
  throw new ConfigError(`CLIP text config: hidden_act ${JSON.stringify(v)} is not supported; use "quick_gelu" (SD 1.x) or "gelu" (SD 2.x)`);
}

/** Checks the config's internal consistency; throws ConfigError naming the field. */
export function validateClipTextConfig(c: ClipTextConfig): ClipTextConfig {
  positiveInt(c.vocabSize, "vocab_size");
  positiveInt(c.hiddenSize, "hidden_size");
  positiveInt(c.numLayers, "num_hidden_layers");
  positiveInt(c.numHeads, "num_attention_heads");
  positiveInt(c.intermediateSize, "intermediate_size");
  positiveInt(c.maxPositions, "max_position_embeddings");
  activation(c.activation);
  if (c.hiddenSize % c.numHeads !== 0) {
    throw new ConfigError(`CLIP text config: hidden_size ${c.hiddenSize} must divide by num_attention_heads ${c.numHeads}`);
  }
  if (!(c.layerNormEps > 0)) throw new ConfigError(`CLIP text config: layer_norm_eps must be > 0 (got ${c.layerNormEps})`);
  if (!Number.isInteger(c.eosTokenId) || c.eosTokenId < 0) {
    throw new ConfigError(`CLIP text config: eos_token_id must be a token id ≥ 0 (got ${c.eosTokenId})`);
  }
  return c;
}

function field(json: Record<string, unknown>, key: string, dflt: unknown): unknown {
  return key in json && json[key] !== null ? json[key] : dflt;
}

/**
 * Parses a transformers `CLIPTextConfig` `config.json` (a diffusers `text_encoder/` folder);
 * absent keys take transformers' defaults.
 */
export function parseClipTextConfig(json: unknown): ClipTextConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`CLIP text config must be a JSON object (got ${Array.isArray(json) ? "an array" : typeof json})`);
  }
  const j = json as Record<string, unknown>;
  const type = j.model_type;
  if (type !== undefined && type !== "clip_text_model") {
    throw new ConfigError(`CLIP text config: model_type "${String(type)}" is not supported; expected "clip_text_model"`);
  }
  const eps = field(j, "layer_norm_eps", 1e-5);
  if (typeof eps !== "number") throw new ConfigError(`CLIP text config: layer_norm_eps must be a number (got ${JSON.stringify(eps)})`);
  const eos = field(j, "eos_token_id", 49407);
  if (typeof eos !== "number") throw new ConfigError(`CLIP text config: eos_token_id must be an integer (got ${JSON.stringify(eos)})`);
  return validateClipTextConfig(
    Object.freeze({
      vocabSize: positiveInt(field(j, "vocab_size", 49408), "vocab_size"),
      hiddenSize: positiveInt(field(j, "hidden_size", 512), "hidden_size"),
      numLayers: positiveInt(field(j, "num_hidden_layers", 12), "num_hidden_layers"),
      numHeads: positiveInt(field(j, "num_attention_heads", 8), "num_attention_heads"),
      intermediateSize: positiveInt(field(j, "intermediate_size", 2048), "intermediate_size"),
      maxPositions: positiveInt(field(j, "max_position_embeddings", 77), "max_position_embeddings"),
      activation: activation(field(j, "hidden_act", "quick_gelu")),
      layerNormEps: eps,
      eosTokenId: eos,
    }),
  );
}

/** What `detectClipTextConfig` cannot read off tensor shapes. */
export interface ClipDetectOptions {
  /** Default hiddenSize / 64 (12 for ViT-L/14, 16 for ViT-H/14). */
  readonly numHeads?: number;
  /** Default "gelu" for the OpenCLIP layout or width 1024, else "quick_gelu". */
  readonly activation?: ClipActivation;
  /** Default: every layer in the file, but one fewer for the OpenCLIP layout (SD 2.x's penultimate-layer rule). */
  readonly numLayers?: number;
  /** Default 2 (the legacy value of the SD configs: pool at the largest id). */
  readonly eosTokenId?: number;
}

function shapeOf(shapes: ReadonlyMap<string, readonly number[]>, key: string): readonly number[] {
  const s = shapes.get(key);
  if (s === undefined) throw new ConfigError(`cannot detect the CLIP text config: tensor '${key}' is missing; is this a CLIP text encoder checkpoint?`);
  return s;
}

function countLayers(keys: readonly string[], head: string): number {
  let n = 0;
  while (keys.some((k) => k.startsWith(`${head}${n}.`))) n++;
  return n;
}

/**
 * Infers the config from tensor shapes, in any layout `detectClipLayout` knows: a diffusers
 * `text_encoder/` file (`text_model.*`), an SD 1.x single file (`cond_stage_model.transformer.*`)
 * or an SD 2.x single file (`cond_stage_model.model.*`, OpenCLIP).
 */
export function detectClipTextConfig(shapes: ReadonlyMap<string, readonly number[]>, opts: ClipDetectOptions = {}): ClipTextConfig {
  const keys = [...shapes.keys()];
  const layout: ClipLayout | undefined = detectClipLayout(keys);
  if (layout === undefined) {
    throw new ConfigError("cannot detect the CLIP text config: no 'text_model.embeddings.token_embedding.weight' or 'cond_stage_model.model.token_embedding.weight' tensor; is this a Stable Diffusion checkpoint?");
  }
  const p = clipLayoutPrefix(layout);
  const openclip = layout === "openclip";
  const tok = shapeOf(shapes, openclip ? `${p}token_embedding.weight` : `${p}text_model.embeddings.token_embedding.weight`); // [V, D]
  const pos = shapeOf(shapes, openclip ? `${p}positional_embedding` : `${p}text_model.embeddings.position_embedding.weight`); // [77, D]
  const layerHead = openclip ? `${p}transformer.resblocks.` : `${p}text_model.encoder.layers.`;
  const inFile = countLayers(keys, layerHead);
  const fc1 = shapeOf(shapes, openclip ? `${layerHead}0.mlp.c_fc.weight` : `${layerHead}0.mlp.fc1.weight`); // [F, D]
  const d = tok[1] as number;
  const numHeads = opts.numHeads ?? d / 64;
  if (!Number.isInteger(numHeads)) {
    throw new ConfigError(`cannot detect the CLIP text config: width ${d} is not a multiple of 64, so the head count is unknown; pass numHeads (or use the model's config.json)`);
  }
  const numLayers = opts.numLayers ?? (openclip ? inFile - 1 : inFile);
  if (numLayers > inFile) throw new ConfigError(`CLIP text config: numLayers ${numLayers} is more than the ${inFile} layers in the checkpoint`);
  return validateClipTextConfig(
    Object.freeze({
      vocabSize: tok[0] as number,
      hiddenSize: d,
      numLayers,
      numHeads,
      intermediateSize: fc1[0] as number,
      maxPositions: pos[0] as number,
      activation: opts.activation ?? (openclip || d === 1024 ? "gelu" : "quick_gelu"),
      layerNormEps: 1e-5,
      eosTokenId: opts.eosTokenId ?? 2,
    }),
  );
}
