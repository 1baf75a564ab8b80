/**
 * The U-Net's keys in the original CompVis layout (`model.diffusion_model.*` of SD 1.x / 2.x
 * single-file checkpoints) ↔ the canonical diffusers keys, for any number of levels, layers per
 * block and attention levels.
 *
 * Source of truth: diffusers' `convert_ldm_unet_checkpoint` with `renew_resnet_paths` /
 * `renew_attention_paths` (v0.27.2),
 * https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/pipelines/stable_diffusion/convert_from_ckpt.py#L388
 * The original numbers its blocks flat: `input_blocks.0.0` is conv_in; level l, layer j is
 * `input_blocks.(1 + l·(n+1) + j)` with `.0` the resnet and `.1` the transformer (n = layers per
 * block), and `input_blocks.((l+1)·(n+1)).0.op` the downsampler; `output_blocks.(l·(n+1) + j)`
 * likewise for up block l, its upsampler after the last layer's resnet (and transformer);
 * `middle_block.0/1/2`; `time_embed.0/2`; `out.0/2`. Resnet layers are renamed (`in_layers.0` =
 * norm1, …). Transformers keep their diffusers names; SD 1.x stores proj_in / proj_out as 1×1
 * convs [C, C, 1, 1] and SD 2.x as linears [C, C], as the model declares them.
 */
import { ConfigError } from "../../errors.js";
import type { SafetensorsFile } from "../../io/safetensors.js";
import { ParamRegistry, Scope } from "../../nn/scope.js";
import type { WeightMap } from "../weights.js";
import { type UNetConfig, detectUNetConfig } from "./config.js";
import { UNet2DConditionModel } from "./unet.js";

/** Prefix of the U-Net inside single-file SD checkpoints. */
export const SD_UNET_PREFIX = "model.diffusion_model.";

/** One tensor's canonical (diffusers) key and its key in another layout. */
export interface KeyPair {
  readonly canonical: string;
  readonly source: string;
}

/** What the key map depends on: the block structure, not the channel counts. */
export interface UNetLayout {
  readonly levels: number;
  readonly layersPerBlock: number;
  readonly crossAttention: readonly boolean[];
}

/** A module's key prefix in both layouts; `resnet` renames the layer names below it. */
export interface PrefixRule {
  readonly canonical: string;
  readonly source: string;
  readonly resnet: boolean;
}

/** diffusers ResnetBlock2D layer ↔ original ResBlock layer. */
const RESNET_RENAMES: ReadonlyArray<readonly [string, string]> = [
  ["norm1.", "in_layers.0."],
  ["conv1.", "in_layers.2."],
  ["norm2.", "out_layers.0."],
  ["conv2.", "out_layers.3."],
  ["time_emb_proj.", "emb_layers.1."],
  ["conv_shortcut.", "skip_connection."],
];

/** The block-structure part of a config. */
export function unetLayout(c: UNetConfig): UNetLayout {
  return { levels: c.blockOutChannels.length, layersPerBlock: c.layersPerBlock, crossAttention: c.crossAttention };
}

/** Every module prefix of a U-Net with this layout, in both layouts. */
export function unetPrefixRules(l: UNetLayout): PrefixRule[] {
  const n = l.layersPerBlock;
  const plain = (canonical: string, source: string): PrefixRule => ({ canonical: `${canonical}.`, source: `${source}.`, resnet: false });
  const res = (canonical: string, source: string): PrefixRule => ({ canonical: `${canonical}.`, source: `${source}.`, resnet: true });
  const rules = [
    plain("conv_in", "input_blocks.0.0"),
    plain("time_embedding.linear_1", "time_embed.0"),
    plain("time_embedding.linear_2", "time_embed.2"),
    // class_embed_type "projection" (as the SD 2.1 unCLIP checkpoints store it); absent keys match nothing
    plain("class_embedding.linear_1", "label_emb.0.0"),
    plain("class_embedding.linear_2", "label_emb.0.2"),
    res("mid_block.resnets.0", "middle_block.0"),
    plain("mid_block.attentions.0", "middle_block.1"),
    res("mid_block.resnets.1", "middle_block.2"),
    plain("conv_norm_out", "out.0"),
    plain("conv_out", "out.2"),
  ];
  for (let lv = 0; lv < l.levels; lv++) {
    const attn = l.crossAttention[lv] === true;
    for (let j = 0; j < n; j++) {
      const i = 1 + lv * (n + 1) + j;
      rules.push(res(`down_blocks.${lv}.resnets.${j}`, `input_blocks.${i}.0`));
      if (attn) rules.push(plain(`down_blocks.${lv}.attentions.${j}`, `input_blocks.${i}.1`));
    }
    if (lv < l.levels - 1) rules.push(plain(`down_blocks.${lv}.downsamplers.0.conv`, `input_blocks.${(lv + 1) * (n + 1)}.0.op`));
    const up = l.crossAttention[l.levels - 1 - lv] === true; // up block lv mirrors level levels−1−lv
    for (let j = 0; j <= n; j++) {
      const i = lv * (n + 1) + j;
      rules.push(res(`up_blocks.${lv}.resnets.${j}`, `output_blocks.${i}.0`));
      if (up) rules.push(plain(`up_blocks.${lv}.attentions.${j}`, `output_blocks.${i}.1`));
    }
    if (lv < l.levels - 1) rules.push(plain(`up_blocks.${lv}.upsamplers.0.conv`, `output_blocks.${lv * (n + 1) + n}.${up ? 2 : 1}.conv`));
  }
  return rules;
}

/** Renames `key` from one side of the rules to the other; undefined when no rule covers it. */
function translate(key: string, rules: readonly PrefixRule[], toSource: boolean): string | undefined {
  const [from, to] = toSource ? (["canonical", "source"] as const) : (["source", "canonical"] as const);
  for (const r of rules) {
    if (!key.startsWith(r[from])) continue;
    let rest = key.slice(r[from].length);
    if (r.resnet) {
      const hit = RESNET_RENAMES.find((p) => rest.startsWith(p[toSource ? 0 : 1]));
      if (hit === undefined) return undefined;
      rest = hit[toSource ? 1 : 0] + rest.slice(hit[toSource ? 0 : 1].length);
    }
    return r[to] + rest;
  }
  return undefined;
}

/** The canonical key of an original-layout key (prefix already removed), or undefined. */
export function canonicalUNetKey(sourceKey: string, rules: readonly PrefixRule[]): string | undefined {
  return translate(sourceKey, rules, false);
}

/** The original-layout key (without prefix) of a canonical key, or undefined. */
export function sourceUNetKey(canonicalKey: string, rules: readonly PrefixRule[]): string | undefined {
  return translate(canonicalKey, rules, true);
}

/**
 * Every parameter's canonical key (as the module declares it) and its original key under
 * `prefix`. Read left to right to load, right to left to write a single-file checkpoint.
 */
export function unetKeyPairs(c: UNetConfig, prefix = SD_UNET_PREFIX): KeyPair[] {
  if (c.additionEmbed !== undefined) {
    // SD's original layout has no such module (DeepFloyd IF's `encoder_pooling` is another layout), so there is no name to give it.
    throw new ConfigError(`U-Net key map: the original single-file layout has no keys for addition_embed_type "${c.additionEmbed.type}" (add_embedding.*); keep this U-Net as a diffusers folder`);
  }
  const reg = new ParamRegistry();
  new UNet2DConditionModel(Scope.root(reg), c);
  const rules = unetPrefixRules(unetLayout(c));
  return [...reg.params.keys()].map((canonical) => {
    const source = sourceUNetKey(canonical, rules);
    if (source === undefined) throw new ConfigError(`U-Net key map: no rule for '${canonical}'`);
    return { canonical, source: prefix + source };
  });
}

/**
 * Canonical key → tensor of `file` for a U-Net stored under `prefix` in the original layout.
 * Tensors under the prefix that the map does not name are kept under their own name, so loading
 * reports them as unexpected; a named tensor the file lacks is reported as missing.
 */
export function unetWeights(file: SafetensorsFile, c: UNetConfig, prefix = SD_UNET_PREFIX): WeightMap {
  const weights: WeightMap = new Map();
  const named = new Set<string>();
  for (const p of unetKeyPairs(c, prefix)) {
    named.add(p.source);
    if (file.tensors.has(p.source)) weights.set(p.canonical, { file, name: p.source });
  }
  for (const name of file.tensors.keys()) if (name.startsWith(prefix) && !named.has(name)) weights.set(name, { file, name });
  return weights;
}

/** The block structure of an original-layout U-Net, from its key names under `prefix`. */
export function detectUNetLayout(keys: Iterable<string>, prefix = SD_UNET_PREFIX): UNetLayout {
  const all = new Set<string>();
  let blocks = 0;
  let firstDown: number | undefined;
  for (const k of keys) {
    if (!k.startsWith(prefix)) continue;
    const key = k.slice(prefix.length);
    all.add(key);
    const m = /^input_blocks\.(\d+)\.(0\.op\.)?/.exec(key);
    if (m === null) continue;
    blocks = Math.max(blocks, Number(m[1]) + 1);
    if (m[2] !== undefined) firstDown = Math.min(firstDown ?? Infinity, Number(m[1]));
  }
  if (blocks < 2) throw new ConfigError(`no U-Net under '${prefix}': expected 'input_blocks.N' tensors (is this an SD 1.x / 2.x checkpoint?)`);
  const n = firstDown === undefined ? blocks - 1 : firstDown - 1; // one level has no downsampler
  const levels = blocks / (n + 1);
  if (!Number.isInteger(levels)) throw new ConfigError(`U-Net under '${prefix}': ${blocks} input blocks do not fit ${n} layers per block`);
  const crossAttention = Array.from({ length: levels }, (_, lv) => all.has(`input_blocks.${1 + lv * (n + 1)}.1.proj_in.weight`));
  return { levels, layersPerBlock: n, crossAttention };
}

/** Infers the config of an original-layout U-Net from tensor shapes (see detectUNetConfig for heads and overrides). */
export function detectOriginalUNetConfig(shapes: ReadonlyMap<string, readonly number[]>, prefix = SD_UNET_PREFIX, overrides: Partial<UNetConfig> = {}): UNetConfig {
  const rules = unetPrefixRules(detectUNetLayout(shapes.keys(), prefix));
  const canonical = new Map<string, readonly number[]>();
  for (const [k, shape] of shapes) {
    const c = k.startsWith(prefix) ? canonicalUNetKey(k.slice(prefix.length), rules) : undefined;
    if (c !== undefined) canonical.set(c, shape);
  }
  return detectUNetConfig(canonical, overrides);
}
