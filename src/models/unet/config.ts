/**
 * U-Net configuration (diffusers `UNet2DConditionModel` as SD 1.x / 2.x use it): presets, parsing
 * of diffusers `config.json`, and detection from checkpoint tensor shapes. Field meanings and
 * defaults follow https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/models/unets/unet_2d_condition.py
 */
import { ConfigError } from "../../errors.js";

/** A U-Net of the SD 1.x / 2.x family. Lists are per resolution level, highest resolution first. */
export interface UNetConfig {
  /** Latent channels in: 4, or 9 for inpainting models (latent + mask + masked-image latent). */
  readonly inChannels: number;
  readonly outChannels: number;
  /** Channels of each level (SD: 320, 640, 1280, 1280). */
  readonly blockOutChannels: readonly number[];
  /** Resnets per down block; up blocks have one more. */
  readonly layersPerBlock: number;
  /** Whether each level's blocks carry cross-attention transformers (up blocks mirror this). */
  readonly crossAttention: readonly boolean[];
  /** Attention heads of each level's transformers; the mid block uses the last level's count. */
  readonly numHeads: readonly number[];
  /** Width of the text context (768 for SD 1.x, 1024 for SD 2.x). */
  readonly crossAttentionDim: number;
  /** BasicTransformerBlocks per transformer (1). */
  readonly transformerDepth: number;
  /** Transformer proj_in / proj_out are linear (SD 2.x) rather than 1×1 convs (SD 1.x). */
  readonly linearProjection: boolean;
  /** diffusers computes attention scores in fp32 under fp16; sdts' fp32 graphs always do. */
  readonly upcastAttention: boolean;
  readonly normGroups: number;
  readonly normEps: number;
  /** Sinusoidal time embedding as [cos, sin] (true in SD) rather than [sin, cos]. */
  readonly flipSinToCos: boolean;
  readonly freqShift: number;
  /** Down-sampler padding: 1 symmetric (SD); 0 pads bottom/right only. */
  readonly downsamplePadding: 0 | 1;
  /** Default latent size the model was trained at (64 for SD 1.5, 96 for SD 2.1-v), if known. */
  readonly sampleSize?: number;
  /** diffusers `addition_embed_type` "text": a pooled context embedding added to the time embedding. Absent in SD. */
  readonly additionEmbed?: AdditionEmbedConfig;
  /** diffusers `class_embed_type: "projection"`: a vector per sample (sdts feeds the prompt's pooled text state) added to the time embedding. Absent in SD. */
  readonly classEmbed?: ClassEmbedConfig;
  /**
   * "pooled": the U-Net was trained on a context whose every row is the prompt's pooled (EOS) text
   * state, and must be fed one (sdts' own config key `_sdts_text_context`; diffusers, which ignores
   * keys that start with "_", would feed it the token rows). Absent: the token rows, as in SD.
   */
  readonly textContext?: "pooled";
}

/**
 * diffusers' `class_embed_type: "projection"` (`class_embedding`, a `TimestepEmbedding`: Linear →
 * SiLU → Linear): the U-Net's `class_labels` [B, inputDim] are mapped to the time-embedding width
 * and added to the time embedding. Which vector goes in is the pipeline's choice (unCLIP feeds an
 * image embedding); sdts feeds the text encoder's pooled (EOS) state of each prompt.
 */
export interface ClassEmbedConfig {
  readonly type: "projection";
  /** Width of `class_labels` (diffusers' `projection_class_embeddings_input_dim`). */
  readonly inputDim: number;
}

/**
 * diffusers' `addition_embed_type: "text"` (`add_embedding`, a `TextTimeEmbedding`): the context
 * [B, L, crossAttentionDim] is attention-pooled to one vector, projected to the time-embedding
 * width and added to the time embedding before the first block.
 */
export interface AdditionEmbedConfig {
  readonly type: "text";
  /** Heads of the attention pooling (diffusers' `addition_embed_type_num_heads`, default 64). */
  readonly numHeads: number;
}

const SD_BASE = {
  inChannels: 4,
  outChannels: 4,
  blockOutChannels: [320, 640, 1280, 1280],
  layersPerBlock: 2,
  crossAttention: [true, true, true, false],
  transformerDepth: 1,
  normGroups: 32,
  normEps: 1e-5,
  flipSinToCos: true,
  freqShift: 0,
  downsamplePadding: 1,
} as const;

/** The SD 1.x U-Net (runwayml/stable-diffusion-v1-5 `unet/config.json`): 8 heads at every level. */
export const SD15_UNET: UNetConfig = Object.freeze({
  ...SD_BASE,
  numHeads: [8, 8, 8, 8],
  crossAttentionDim: 768,
  linearProjection: false,
  upcastAttention: false,
  sampleSize: 64,
});

/** The SD 2.1 (768-v) U-Net: heads of 64 channels, linear projections, OpenCLIP-H context. */
export const SD21_UNET: UNetConfig = Object.freeze({
  ...SD_BASE,
  numHeads: [5, 10, 20, 20],
  crossAttentionDim: 1024,
  linearProjection: true,
  upcastAttention: true,
  sampleSize: 96,
});

type Json = Record<string, unknown>;

function get<T>(j: Json, key: string, dflt: T, ok: (v: unknown) => v is T, want: string): T {
  const v = j[key];
  if (v === undefined) return dflt;
  if (!ok(v)) throw new ConfigError(`unet config: '${key}' must be ${want} (got ${JSON.stringify(v)})`);
  return v;
}

const isPosInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v) && v > 0;
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isStr = (v: unknown): v is string => typeof v === "string";
const isIntList = (v: unknown): v is number[] => Array.isArray(v) && v.every(isPosInt);
const isStrList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isStr);
const isIntOrList = (v: unknown): v is number | number[] => isPosInt(v) || isIntList(v);

/** Options sdts does not implement; each must hold its SD value (or be absent). */
const UNSUPPORTED: ReadonlyArray<[string, unknown]> = [
  ["center_input_sample", false],
  ["mid_block_type", "UNetMidBlock2DCrossAttn"],
  ["mid_block_scale_factor", 1],
  ["act_fn", "silu"],
  ["dual_cross_attention", false],
  ["only_cross_attention", false],
  ["num_class_embeds", null],
  ["class_embeddings_concat", false],
  ["encoder_hid_dim", null],
  ["encoder_hid_dim_type", null],
  ["time_cond_proj_dim", null],
  ["resnet_time_scale_shift", "default"],
  ["resnet_skip_time_act", false],
  ["resnet_out_scale_factor", 1],
  ["time_embedding_type", "positional"],
  ["time_embedding_dim", null],
  ["time_embedding_act_fn", null],
  ["timestep_post_act", null],
  ["conv_in_kernel", 3],
  ["conv_out_kernel", 3],
  ["attention_type", "default"],
  ["cross_attention_norm", null],
  ["reverse_transformer_layers_per_block", null],
];

function checkUnsupported(j: Json): void {
  for (const [key, sd] of UNSUPPORTED) {
    const v = j[key];
    if (v === undefined || v === sd || (Array.isArray(v) && v.every((e) => e === sd))) continue;
    throw new ConfigError(`unet config: '${key}' = ${JSON.stringify(v)} is not supported (sdts runs SD 1.x / 2.x U-Nets, where it is ${JSON.stringify(sd)})`);
  }
}

/** `addition_embed_type` and its head count; undefined when it is null (SD). */
function parseAdditionEmbed(j: Json): AdditionEmbedConfig | undefined {
  const type = j["addition_embed_type"] ?? null;
  if (type === null) return undefined;
  if (type !== "text") {
    throw new ConfigError(`unet config: addition_embed_type ${JSON.stringify(type)} is not supported; sdts implements null (SD 1.x / 2.x) and "text" (a pooled context embedding, as DeepFloyd IF uses)`);
  }
  return { type, numHeads: get(j, "addition_embed_type_num_heads", 64, isPosInt, "a positive integer") };
}

/** `class_embed_type` and its input width; undefined when it is null (SD). */
function parseClassEmbed(j: Json): ClassEmbedConfig | undefined {
  const type = j["class_embed_type"] ?? null;
  if (type === null) return undefined;
  if (type !== "projection") {
    throw new ConfigError(`unet config: class_embed_type ${JSON.stringify(type)} is not supported; sdts implements null (SD 1.x / 2.x) and "projection" (a vector per sample added to the time embedding)`);
  }
  const dim = j["projection_class_embeddings_input_dim"] ?? null;
  if (!isPosInt(dim)) throw new ConfigError(`unet config: class_embed_type "projection" needs projection_class_embeddings_input_dim, a positive integer (got ${JSON.stringify(dim)})`);
  return { type, inputDim: dim };
}

/** Reads a per-level list given as one number or a list of the level count. */
function perLevel(j: Json, key: string, dflt: number | number[], levels: number): number[] {
  const v = get(j, key, dflt, isIntOrList, "a positive integer or a list of them");
  const list = typeof v === "number" ? new Array<number>(levels).fill(v) : v;
  if (list.length !== levels) throw new ConfigError(`unet config: '${key}' has ${list.length} entries for ${levels} levels`);
  return list;
}

/** Which levels have cross-attention, from the block type lists (up types must mirror down types). */
function parseBlockTypes(j: Json, levels: number): boolean[] {
  const down = get(j, "down_block_types", ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"], isStrList, "a list of block names");
  const up = get(j, "up_block_types", ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"], isStrList, "a list of block names");
  if (down.length !== levels || up.length !== levels) {
    throw new ConfigError(`unet config: ${down.length} down and ${up.length} up block types for ${levels} block_out_channels; give one of each per level`);
  }
  const attn = down.map((t) => {
    if (t !== "CrossAttnDownBlock2D" && t !== "DownBlock2D") throw new ConfigError(`unet config: down block type '${t}' is not supported (use DownBlock2D or CrossAttnDownBlock2D)`);
    return t === "CrossAttnDownBlock2D";
  });
  const wantUp = [...attn].reverse().map((a) => (a ? "CrossAttnUpBlock2D" : "UpBlock2D"));
  if (up.some((t, i) => t !== wantUp[i])) {
    throw new ConfigError(`unet config: up_block_types ${JSON.stringify(up)} must mirror down_block_types (expected ${JSON.stringify(wantUp)})`);
  }
  return attn;
}

/** sdts' key in a U-Net `config.json` for what its context rows hold ("tokens", the default, or "pooled"; see `UNetConfig.textContext`). */
export const TEXT_CONTEXT_KEY = "_sdts_text_context";

/** Translates a diffusers `unet/config.json` object, rejecting options sdts does not implement. */
export function parseUNetConfig(json: unknown): UNetConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ConfigError("unet config: expected a JSON object");
  const j = json as Json;
  const cls = j["_class_name"];
  if (cls !== undefined && cls !== "UNet2DConditionModel") throw new ConfigError(`unet config: _class_name '${String(cls)}' is not UNet2DConditionModel`);
  checkUnsupported(j);
  const channels = get(j, "block_out_channels", [320, 640, 1280, 1280], isIntList, "a list of positive integers");
  const levels = channels.length;
  if (levels === 0) throw new ConfigError("unet config: block_out_channels is empty");
  const crossAttention = parseBlockTypes(j, levels);
  // diffusers' `attention_head_dim` holds the head COUNT (its issue #2011); `num_attention_heads` wins when set.
  const heads = j["num_attention_heads"] ?? null;
  const numHeads = heads === null ? perLevel(j, "attention_head_dim", 8, levels) : perLevel(j, "num_attention_heads", 8, levels);
  const depths = perLevel(j, "transformer_layers_per_block", 1, levels);
  if (depths.some((d) => d !== depths[0])) throw new ConfigError(`unet config: transformer_layers_per_block ${JSON.stringify(depths)} must be equal at every level`);
  const pad = get(j, "downsample_padding", 1, isNum, "0 or 1");
  if (pad !== 0 && pad !== 1) throw new ConfigError(`unet config: downsample_padding must be 0 or 1 (got ${pad})`);
  const layers = get(j, "layers_per_block", 2, isPosInt, "a positive integer (per-level lists are not supported)");
  const sampleSize = j["sample_size"];
  const additionEmbed = parseAdditionEmbed(j);
  const classEmbed = parseClassEmbed(j);
  const textContext = j[TEXT_CONTEXT_KEY] ?? "tokens";
  if (textContext !== "tokens" && textContext !== "pooled") throw new ConfigError(`unet config: ${TEXT_CONTEXT_KEY} must be "tokens" or "pooled" (got ${JSON.stringify(textContext)})`);
  const c: UNetConfig = {
    inChannels: get(j, "in_channels", 4, isPosInt, "a positive integer"),
    outChannels: get(j, "out_channels", 4, isPosInt, "a positive integer"),
    blockOutChannels: channels,
    layersPerBlock: layers,
    crossAttention,
    numHeads,
    crossAttentionDim: get(j, "cross_attention_dim", 1280, isPosInt, "a positive integer"),
    transformerDepth: depths[0] ?? 1,
    linearProjection: get(j, "use_linear_projection", false, isBool, "true or false"),
    upcastAttention: get(j, "upcast_attention", false, isBool, "true or false"),
    normGroups: get(j, "norm_num_groups", 32, isPosInt, "a positive integer"),
    normEps: get(j, "norm_eps", 1e-5, isNum, "a number"),
    flipSinToCos: get(j, "flip_sin_to_cos", true, isBool, "true or false"),
    freqShift: get(j, "freq_shift", 0, isNum, "a number"),
    downsamplePadding: pad,
    ...(isPosInt(sampleSize) ? { sampleSize } : {}),
    ...(additionEmbed ? { additionEmbed } : {}),
    ...(classEmbed ? { classEmbed } : {}),
    ...(textContext === "pooled" ? { textContext } : {}),
  };
  return validateUNetConfig(c);
}

/** Checks divisibility constraints (groups, heads) and list lengths; returns the config. */
export function validateUNetConfig(c: UNetConfig): UNetConfig {
  const n = c.blockOutChannels.length;
  if (c.crossAttention.length !== n || c.numHeads.length !== n) {
    throw new ConfigError(`unet config: crossAttention (${c.crossAttention.length}) and numHeads (${c.numHeads.length}) need one entry per level (${n})`);
  }
  c.blockOutChannels.forEach((ch, i) => {
    if (ch % c.normGroups !== 0) throw new ConfigError(`unet config: level ${i} has ${ch} channels, not a multiple of norm_num_groups ${c.normGroups}`);
    const h = c.numHeads[i] ?? 1;
    const usesHeads = c.crossAttention[i] === true || i === n - 1;
    if (usesHeads && ch % h !== 0) throw new ConfigError(`unet config: level ${i} has ${ch} channels, not divisible into ${h} attention heads`);
  });
  const pool = c.additionEmbed?.numHeads;
  if (pool !== undefined && c.crossAttentionDim % pool !== 0) {
    throw new ConfigError(`unet config: cross_attention_dim ${c.crossAttentionDim} is not divisible into addition_embed_type_num_heads ${pool} pooling heads; give a head count that divides it`);
  }
  return c;
}

/** One dim of a tensor's shape; a ConfigError naming the key when the tensor is absent. */
function dimOf(shapes: ReadonlyMap<string, readonly number[]>, key: string, axis: number): number {
  const d = shapes.get(key)?.[axis];
  if (d === undefined) throw new ConfigError(`cannot detect the U-Net config: tensor '${key}' is missing; is this an SD 1.x / 2.x U-Net?`);
  return d;
}

function countIndices(shapes: ReadonlyMap<string, readonly number[]>, prefix: string, suffix: string): number {
  let n = 0;
  while (shapes.has(`${prefix}${n}${suffix}`)) n++;
  return n;
}

/**
 * Infers the config from canonical (diffusers-layout) tensor shapes. Head counts are not in the
 * shapes: SD 1.x (conv projections) has 8 heads everywhere, SD 2.x (linear) heads of 64 channels;
 * `overrides` (e.g. from a config file) win over anything detected.
 */
export function detectUNetConfig(shapes: ReadonlyMap<string, readonly number[]>, overrides: Partial<UNetConfig> = {}): UNetConfig {
  const levels = countIndices(shapes, "down_blocks.", ".resnets.0.conv1.weight");
  if (levels === 0) throw new ConfigError("cannot detect the U-Net config: no 'down_blocks.N.resnets.0.conv1.weight' tensors");
  const channels = Array.from({ length: levels }, (_, i) => dimOf(shapes, `down_blocks.${i}.resnets.0.conv1.weight`, 0));
  const crossAttention = channels.map((_, i) => shapes.has(`down_blocks.${i}.attentions.0.proj_in.weight`));
  if (shapes.has("add_embedding.norm1.weight") && overrides.additionEmbed === undefined) {
    throw new ConfigError("cannot detect the U-Net config: it has a text addition embedding (add_embedding.*) whose pooling head count the shapes do not give; give additionEmbed (from its config.json)");
  }
  const classIn = shapes.get("class_embedding.linear_1.weight")?.[1];
  const attn = "mid_block.attentions.0";
  const linear = (shapes.get(`${attn}.proj_in.weight`)?.length ?? 4) === 2;
  const numHeads = overrides.numHeads ?? channels.map((ch) => (linear ? ch / 64 : 8));
  if (numHeads.some((h) => !Number.isInteger(h))) {
    throw new ConfigError(`cannot infer the attention head counts of a U-Net with channels ${JSON.stringify(channels)}; give numHeads (from its config.json)`);
  }
  const detected: UNetConfig = {
    inChannels: dimOf(shapes, "conv_in.weight", 1),
    outChannels: dimOf(shapes, "conv_out.weight", 0),
    blockOutChannels: channels,
    layersPerBlock: countIndices(shapes, "down_blocks.0.resnets.", ".conv1.weight"),
    crossAttention,
    numHeads,
    crossAttentionDim: dimOf(shapes, `${attn}.transformer_blocks.0.attn2.to_k.weight`, 1),
    transformerDepth: countIndices(shapes, `${attn}.transformer_blocks.`, ".norm1.weight"),
    linearProjection: linear,
    upcastAttention: linear,
    normGroups: 32,
    normEps: 1e-5,
    flipSinToCos: true,
    freqShift: 0,
    downsamplePadding: 1,
    ...(classIn !== undefined ? { classEmbed: { type: "projection", inputDim: classIn } as const } : {}),
  };
  return validateUNetConfig({ ...detected, ...overrides });
}
