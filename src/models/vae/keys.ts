/**
 * The VAE's keys in the original CompVis layout (`first_stage_model.*` of single-file SD
 * checkpoints, or a bare `vae-ft-mse-….safetensors`) ↔ the canonical diffusers keys.
 *
 * Source of truth: diffusers' `convert_ldm_vae_checkpoint` and its `renew_vae_*_paths` /
 * `conv_attn_to_linear` helpers,
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/pipelines/stable_diffusion/convert_from_ckpt.py#L636
 * (v0.27.2). Differences from diffusers' layout: resolution levels are `down.N` / `up.N`
 * with ResNets under `block.M`; `decoder.up.N` counts from the LOWEST resolution (diffusers'
 * `up_blocks.i` is `up.(levels − 1 − i)`); the mid block is `mid.block_1`, `mid.attn_1`,
 * `mid.block_2`; the attention projections are 1×1 convs [C, C, 1, 1] (diffusers: linears
 * [C, C], same bytes); `nin_shortcut` is `conv_shortcut`; `norm_out` is `conv_norm_out`.
 */
import type { SafetensorsFile } from "../../io/safetensors.js";
import type { WeightMap } from "../weights.js";
import type { VaeConfig } from "./config.js";

/** One tensor's canonical (diffusers) key and its key in another layout. */
export interface KeyPair {
  readonly canonical: string;
  readonly source: string;
  /** The tensor's shape in the source layout where it differs from the canonical one (same bytes). */
  readonly sourceShape?: readonly number[];
}

/** Prefix of the VAE inside single-file SD checkpoints. */
export const SD_VAE_PREFIX = "first_stage_model.";

const PARAMS = ["weight", "bias"] as const;

/** The weight and bias of one layer; `sourceShape` is the weight's shape in the source layout where it differs. */
function pairs(canonical: string, source: string, sourceShape?: readonly number[]): KeyPair[] {
  return PARAMS.map((p) => {
    const pair = { canonical: `${canonical}.${p}`, source: `${source}.${p}` };
    return p === "weight" && sourceShape ? { ...pair, sourceShape } : pair;
  });
}

/** A ResNet block: norm1, conv1, norm2, conv2 and, when channels change, the 1×1 shortcut. */
function resnet(canonical: string, source: string, inCh: number, outCh: number): KeyPair[] {
  const out = ["norm1", "conv1", "norm2", "conv2"].flatMap((n) => pairs(`${canonical}.${n}`, `${source}.${n}`));
  if (inCh !== outCh) out.push(...pairs(`${canonical}.conv_shortcut`, `${source}.nin_shortcut`));
  return out;
}

/** The mid block of the encoder or decoder (`half` = "encoder" | "decoder"). */
function midBlock(half: string, ch: number): KeyPair[] {
  const a = `${half}.mid_block.attentions.0`;
  const s = `${half}.mid.attn_1`;
  const conv = [ch, ch, 1, 1];
  return [
    ...resnet(`${half}.mid_block.resnets.0`, `${half}.mid.block_1`, ch, ch),
    ...pairs(`${a}.group_norm`, `${s}.norm`),
    ...pairs(`${a}.to_q`, `${s}.q`, conv),
    ...pairs(`${a}.to_k`, `${s}.k`, conv),
    ...pairs(`${a}.to_v`, `${s}.v`, conv),
    ...pairs(`${a}.to_out.0`, `${s}.proj_out`, conv),
    ...resnet(`${half}.mid_block.resnets.1`, `${half}.mid.block_2`, ch, ch),
  ];
}

function encoderPairs(c: VaeConfig): KeyPair[] {
  const boc = c.blockOutChannels;
  const out = pairs("encoder.conv_in", "encoder.conv_in");
  boc.forEach((ch, i) => {
    for (let j = 0; j < c.layersPerBlock; j++) {
      const inCh = j === 0 ? (boc[i - 1] ?? ch) : ch;
      out.push(...resnet(`encoder.down_blocks.${i}.resnets.${j}`, `encoder.down.${i}.block.${j}`, inCh, ch));
    }
    if (i < boc.length - 1) out.push(...pairs(`encoder.down_blocks.${i}.downsamplers.0.conv`, `encoder.down.${i}.downsample.conv`));
  });
  out.push(...midBlock("encoder", boc[boc.length - 1] as number));
  out.push(...pairs("encoder.conv_norm_out", "encoder.norm_out"), ...pairs("encoder.conv_out", "encoder.conv_out"));
  return out;
}

function decoderPairs(c: VaeConfig): KeyPair[] {
  const rev = [...c.blockOutChannels].reverse();
  const levels = rev.length;
  const out = pairs("decoder.conv_in", "decoder.conv_in");
  out.push(...midBlock("decoder", rev[0] as number));
  rev.forEach((ch, i) => {
    const n = levels - 1 - i;
    for (let j = 0; j < c.layersPerBlock + 1; j++) {
      const inCh = j === 0 ? (rev[i - 1] ?? ch) : ch;
      out.push(...resnet(`decoder.up_blocks.${i}.resnets.${j}`, `decoder.up.${n}.block.${j}`, inCh, ch));
    }
    if (i < levels - 1) out.push(...pairs(`decoder.up_blocks.${i}.upsamplers.0.conv`, `decoder.up.${n}.upsample.conv`));
  });
  out.push(...pairs("decoder.conv_norm_out", "decoder.norm_out"), ...pairs("decoder.conv_out", "decoder.conv_out"));
  return out;
}

/**
 * Every VAE tensor's canonical key and its CompVis key (with `prefix`, "first_stage_model."
 * in single-file checkpoints, "" in a bare VAE file). Read it left to right to load, right to
 * left to write a checkpoint (reshaping the four attention weights to `sourceShape`).
 */
export function vaeKeyPairs(c: VaeConfig, prefix = SD_VAE_PREFIX): KeyPair[] {
  const all = [...encoderPairs(c), ...pairs("quant_conv", "quant_conv"), ...pairs("post_quant_conv", "post_quant_conv"), ...decoderPairs(c)];
  return all.map((p) => ({ ...p, source: prefix + p.source }));
}

/**
 * Canonical key → tensor of `file` for a CompVis-layout VAE under `prefix`. Tensors under the
 * prefix that the map does not name are kept under their own name, so loading reports them as
 * unexpected; a tensor the map names but the file lacks is left out and reported as missing.
 */
export function vaeWeightsFromCompVis(file: SafetensorsFile, c: VaeConfig, prefix = SD_VAE_PREFIX): WeightMap {
  const weights: WeightMap = new Map();
  const named = new Set<string>();
  for (const p of vaeKeyPairs(c, prefix)) {
    named.add(p.source);
    if (file.tensors.has(p.source)) weights.set(p.canonical, { file, name: p.source });
  }
  for (const name of file.tensors.keys()) {
    if (name.startsWith(prefix) && !named.has(name)) weights.set(name, { file, name });
  }
  return weights;
}

/** Canonical key prefixes of the encoder graph's parameters (`VaeEncoder`). */
export const VAE_ENCODER_PREFIXES: readonly string[] = ["encoder.", "quant_conv."];
/** Canonical key prefixes of the decoder graph's parameters (`VaeDecoder`). */
export const VAE_DECODER_PREFIXES: readonly string[] = ["decoder.", "post_quant_conv."];

/**
 * Splits a whole VAE's weights between its two graphs. A key of neither half goes to both, so
 * loading either reports it as unexpected.
 */
export function splitVaeWeights(weights: WeightMap): { encoder: WeightMap; decoder: WeightMap } {
  const has = (prefixes: readonly string[], k: string) => prefixes.some((p) => k.startsWith(p));
  const encoder: WeightMap = new Map();
  const decoder: WeightMap = new Map();
  for (const [k, ref] of weights) {
    const enc = has(VAE_ENCODER_PREFIXES, k);
    const dec = has(VAE_DECODER_PREFIXES, k);
    if (enc || !dec) encoder.set(k, ref);
    if (dec || !enc) decoder.set(k, ref);
  }
  return { encoder, decoder };
}
