/**
 * The KL autoencoder (diffusers `AutoencoderKL`, the "KL-f8" first stage of Stable Diffusion):
 * its configuration, named presets, the diffusers `config.json` parser and detection from
 * checkpoint tensor shapes.
 */
import { ConfigError } from "../../errors.js";

/** A KL autoencoder's shape. */
export interface VaeConfig {
  /** Image channels the encoder reads (3). */
  readonly inChannels: number;
  /** Image channels the decoder writes (3). */
  readonly outChannels: number;
  /** Channels of the latent (4); the encoder emits twice as many (mean and log-variance). */
  readonly latentChannels: number;
  /** Channels per resolution level, highest resolution first; each level but the last halves H and W. */
  readonly blockOutChannels: readonly number[];
  /** ResNet blocks per encoder level; decoder levels have one more. */
  readonly layersPerBlock: number;
  /** GroupNorm groups everywhere. */
  readonly normNumGroups: number;
  /** GroupNorm ε everywhere (diffusers fixes it at 1e-6 for the VAE). */
  readonly normEps: number;
  /** The pipeline multiplies encoder latents by this and divides by it before decoding. */
  readonly scalingFactor: number;
}

/** The VAE shared by SD 1.x and SD 2.x (runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-2-1 `vae/`). */
export const SD_VAE: VaeConfig = Object.freeze({
  inChannels: 3,
  outChannels: 3,
  latentChannels: 4,
  blockOutChannels: Object.freeze([128, 256, 512, 512]),
  layersPerBlock: 2,
  normNumGroups: 32,
  normEps: 1e-6,
  scalingFactor: 0.18215,
});

/** The SD 1.5 VAE. */
export const SD15_VAE: VaeConfig = SD_VAE;
/** The SD 2.1 VAE (same network and scaling factor as SD 1.5). */
export const SD21_VAE: VaeConfig = SD_VAE;

/** How much the VAE shrinks each side of an image: 2^(levels − 1), 8 for SD. */
export function vaeScaleFactor(c: VaeConfig): number {
  return 2 ** (c.blockOutChannels.length - 1);
}

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
    throw new ConfigError(`VAE config: ${field} must be a positive integer (got ${JSON.stringify(v)})`);
  }
  return v;
}

/** json[key], or `dflt` where the key is absent or null (diffusers' default). */
function field(json: Record<string, unknown>, key: string, dflt: unknown): unknown {
  return key in json && json[key] !== null ? json[key] : dflt;
}

/** Checks the config's internal consistency; throws ConfigError naming the field. */
export function validateVaeConfig(c: VaeConfig): VaeConfig {
  positiveInt(c.inChannels, "in_channels");
  positiveInt(c.outChannels, "out_channels");
  positiveInt(c.latentChannels, "latent_channels");
  positiveInt(c.layersPerBlock, "layers_per_block");
  positiveInt(c.normNumGroups, "norm_num_groups");
  if (c.blockOutChannels.length === 0) throw new ConfigError("VAE config: block_out_channels must list at least one level (got [])");
  for (const ch of c.blockOutChannels) {
    positiveInt(ch, "block_out_channels[i]");
    if (ch % c.normNumGroups !== 0) {
      throw new ConfigError(`VAE config: every block_out_channels entry must divide by norm_num_groups ${c.normNumGroups} (got ${ch})`);
    }
  }
  if (!(c.scalingFactor > 0)) throw new ConfigError(`VAE config: scaling_factor must be > 0 (got ${c.scalingFactor})`);
  if (!(c.normEps > 0)) throw new ConfigError(`VAE config: the norm ε must be > 0 (got ${c.normEps})`);
  return c;
}

function checkBlockTypes(json: Record<string, unknown>, key: string, want: string, levels: number): void {
  const v = json[key];
  if (v === undefined) return;
  if (!Array.isArray(v) || v.length !== levels || v.some((t) => t !== want)) {
    throw new ConfigError(`VAE config: ${key} must be ${levels} × "${want}" to match block_out_channels (got ${JSON.stringify(v)}); other block types are not supported`);
  }
}

function checkUnsupported(json: Record<string, unknown>): void {
  const act = field(json, "act_fn", "silu");
  if (act !== "silu") throw new ConfigError(`VAE config: act_fn "${String(act)}" is not supported; only "silu" is`);
  for (const key of ["use_quant_conv", "use_post_quant_conv", "mid_block_add_attention"]) {
    if (field(json, key, true) !== true) throw new ConfigError(`VAE config: ${key} = false is not supported (SD VAEs have it true)`);
  }
  const shift = field(json, "shift_factor", 0);
  if (shift !== 0) throw new ConfigError(`VAE config: shift_factor ${JSON.stringify(shift)} is not supported (SD VAEs have none)`);
}

/** Parses a diffusers `AutoencoderKL` `config.json`; absent keys take diffusers' defaults. */
export function parseVaeConfig(json: unknown): VaeConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`VAE config must be a JSON object (got ${Array.isArray(json) ? "an array" : typeof json})`);
  }
  const j = json as Record<string, unknown>;
  const cls = j._class_name;
  if (cls !== undefined && cls !== "AutoencoderKL") {
    throw new ConfigError(`VAE config: _class_name "${String(cls)}" is not supported; expected "AutoencoderKL"`);
  }
  const boc = field(j, "block_out_channels", [64]);
  if (!Array.isArray(boc)) throw new ConfigError(`VAE config: block_out_channels must be a list of integers (got ${JSON.stringify(boc)})`);
  checkBlockTypes(j, "down_block_types", "DownEncoderBlock2D", boc.length);
  checkBlockTypes(j, "up_block_types", "UpDecoderBlock2D", boc.length);
  checkUnsupported(j);
  const scaling = field(j, "scaling_factor", 0.18215);
  if (typeof scaling !== "number") throw new ConfigError(`VAE config: scaling_factor must be a number (got ${JSON.stringify(scaling)})`);
  return validateVaeConfig(
    Object.freeze({
      inChannels: positiveInt(field(j, "in_channels", 3), "in_channels"),
      outChannels: positiveInt(field(j, "out_channels", 3), "out_channels"),
      latentChannels: positiveInt(field(j, "latent_channels", 4), "latent_channels"),
      blockOutChannels: Object.freeze(boc.map((v: unknown) => positiveInt(v, "block_out_channels[i]"))),
      layersPerBlock: positiveInt(field(j, "layers_per_block", 1), "layers_per_block"),
      normNumGroups: positiveInt(field(j, "norm_num_groups", 32), "norm_num_groups"),
      normEps: 1e-6,
      scalingFactor: scaling,
    }),
  );
}

/** What `detectVaeConfig` cannot read off tensor shapes. */
export interface VaeDetectOptions {
  /** Default 32 (every SD VAE). */
  readonly normNumGroups?: number;
  /** Default 0.18215 (SD 1.x/2.x; SDXL's VAE has the same shapes but 0.13025). */
  readonly scalingFactor?: number;
}

function shapeOf(shapes: ReadonlyMap<string, readonly number[]>, key: string): readonly number[] {
  const s = shapes.get(key);
  if (s === undefined) throw new ConfigError(`cannot detect the VAE config: tensor '${key}' is missing; is this a KL autoencoder checkpoint?`);
  return s;
}

function countIndices(keys: readonly string[], head: string): number {
  let n = 0;
  while (keys.some((k) => k.startsWith(`${head}${n}.`))) n++;
  return n;
}

/**
 * Infers the config from tensor shapes, keys in the diffusers layout (`encoder.down_blocks.0…`)
 * or the original CompVis layout (`encoder.down.0.block.0…`), all under `prefix`
 * (e.g. "first_stage_model." in a single-file SD checkpoint).
 */
export function detectVaeConfig(shapes: ReadonlyMap<string, readonly number[]>, prefix = "", opts: VaeDetectOptions = {}): VaeConfig {
  const keys = [...shapes.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  const sub = new Map(keys.map((k) => [k, shapes.get(prefix + k) as readonly number[]]));
  const diffusers = keys.some((k) => k.startsWith("encoder.down_blocks."));
  const level = (i: number) => (diffusers ? `encoder.down_blocks.${i}.resnets.` : `encoder.down.${i}.block.`);
  const levels = countIndices(keys, diffusers ? "encoder.down_blocks." : "encoder.down.");
  if (levels === 0) throw new ConfigError(`cannot detect the VAE config: no 'encoder.down_blocks.N' or 'encoder.down.N' tensors under prefix "${prefix}"`);
  const blockOutChannels = Array.from({ length: levels }, (_, i) => shapeOf(sub, `${level(i)}0.conv1.weight`)[0] as number);
  const convIn = shapeOf(sub, "encoder.conv_in.weight"); // [C0, in, 3, 3]
  const decIn = shapeOf(sub, "decoder.conv_in.weight"); // [C_last, latent, 3, 3]
  const decOut = shapeOf(sub, "decoder.conv_out.weight"); // [out, C0, 3, 3]
  return validateVaeConfig(
    Object.freeze({
      inChannels: convIn[1] as number,
      outChannels: decOut[0] as number,
      latentChannels: decIn[1] as number,
      blockOutChannels: Object.freeze(blockOutChannels),
      layersPerBlock: countIndices(keys, level(0)),
      normNumGroups: opts.normNumGroups ?? 32,
      normEps: 1e-6,
      scalingFactor: opts.scalingFactor ?? 0.18215,
    }),
  );
}
