/**
 * The CLIP text encoder's keys in single-file SD checkpoints ↔ the canonical transformers keys
 * (`text_model.*`, as in a diffusers `text_encoder/model.safetensors`).
 *
 * - SD 1.x (`cond_stage_model.transformer.*`): the transformers model itself under a prefix;
 *   see diffusers' `convert_ldm_clip_checkpoint`.
 * - SD 2.x (`cond_stage_model.model.*`, OpenCLIP): renamed modules, q/k/v fused into one
 *   `in_proj_weight` [3D, D] / `in_proj_bias` [3D] (q rows first, then k, then v), and a
 *   `positional_embedding` without `.weight`; see diffusers' `convert_open_clip_checkpoint`
 *   https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/src/diffusers/pipelines/stable_diffusion/convert_from_ckpt.py#L924
 *   and, for the way back, `textenc_conversion_lst` / `convert_text_enc_state_dict_v20` in
 *   https://github.com/huggingface/diffusers/blob/b69fd990ad8026f21893499ab396d969b62bb8cc/scripts/convert_diffusers_to_original_stable_diffusion.py#L214
 *   (both v0.27.2).
 */
import type { SafetensorsFile } from "../../io/safetensors.js";
import type { WeightMap } from "../weights.js";
import type { ClipTextConfig } from "./config.js";

/** Where the text encoder's tensors come from: a diffusers folder, an SD 1.x or an SD 2.x single file. */
export type ClipLayout = "diffusers" | "sd1" | "openclip";

/** One tensor's canonical key and its key in another layout; `rows` [start, end) of dim 0 where the source fuses several tensors. */
export interface KeyPair {
  readonly canonical: string;
  readonly source: string;
  readonly rows?: readonly [number, number];
}

const PREFIX: Readonly<Record<ClipLayout, string>> = {
  diffusers: "",
  sd1: "cond_stage_model.transformer.",
  openclip: "cond_stage_model.model.",
};

/** The prefix of the text encoder's tensors in a file of this layout. */
export function clipLayoutPrefix(layout: ClipLayout): string {
  return PREFIX[layout];
}

/** The layout of a checkpoint's text encoder, from its tensor names; undefined when it has none. */
export function detectClipLayout(keys: Iterable<string>): ClipLayout | undefined {
  const tok = "token_embedding.weight";
  for (const k of keys) {
    if (k === `${PREFIX.openclip}${tok}`) return "openclip";
    if (k === `${PREFIX.sd1}text_model.embeddings.${tok}`) return "sd1";
    if (k === `text_model.embeddings.${tok}`) return "diffusers";
  }
  return undefined;
}

function both(canonical: string, source: string): KeyPair[] {
  return [
    { canonical: `${canonical}.weight`, source: `${source}.weight` },
    { canonical: `${canonical}.bias`, source: `${source}.bias` },
  ];
}

/** One OpenCLIP residual block `resblocks.i` → `text_model.encoder.layers.i`. */
function openclipLayer(i: number, d: number, prefix: string): KeyPair[] {
  const c = `text_model.encoder.layers.${i}`;
  const s = `${prefix}transformer.resblocks.${i}`;
  const qkv = (["q", "k", "v"] as const).flatMap((name, j): KeyPair[] => {
    const rows = [j * d, (j + 1) * d] as const;
    return [
      { canonical: `${c}.self_attn.${name}_proj.weight`, source: `${s}.attn.in_proj_weight`, rows },
      { canonical: `${c}.self_attn.${name}_proj.bias`, source: `${s}.attn.in_proj_bias`, rows },
    ];
  });
  return [
    ...both(`${c}.layer_norm1`, `${s}.ln_1`),
    ...qkv,
    ...both(`${c}.self_attn.out_proj`, `${s}.attn.out_proj`),
    ...both(`${c}.layer_norm2`, `${s}.ln_2`),
    ...both(`${c}.mlp.fc1`, `${s}.mlp.c_fc`),
    ...both(`${c}.mlp.fc2`, `${s}.mlp.c_proj`),
  ];
}

function canonicalKeys(c: ClipTextConfig): string[] {
  const keys = ["text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight"];
  const sub = ["layer_norm1", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "layer_norm2", "mlp.fc1", "mlp.fc2"];
  for (let i = 0; i < c.numLayers; i++) {
    for (const m of sub) keys.push(`text_model.encoder.layers.${i}.${m}.weight`, `text_model.encoder.layers.${i}.${m}.bias`);
  }
  keys.push("text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias");
  return keys;
}

/**
 * Every parameter's canonical key and its key in `layout` (under `prefix`). Read left to right
 * to load, right to left to write a checkpoint: sources with `rows` are filled by their
 * pairs' tensors stacked in row order (q, k, v).
 */
export function clipTextKeyPairs(c: ClipTextConfig, layout: ClipLayout, prefix = clipLayoutPrefix(layout)): KeyPair[] {
  if (layout !== "openclip") return canonicalKeys(c).map((k) => ({ canonical: k, source: prefix + k }));
  const d = c.hiddenSize;
  const out: KeyPair[] = [
    { canonical: "text_model.embeddings.token_embedding.weight", source: `${prefix}token_embedding.weight` },
    { canonical: "text_model.embeddings.position_embedding.weight", source: `${prefix}positional_embedding` },
  ];
  for (let i = 0; i < c.numLayers; i++) out.push(...openclipLayer(i, d, prefix));
  out.push(...both("text_model.final_layer_norm", `${prefix}ln_final`));
  return out;
}

/**
 * Tensors under the text encoder's prefix that loading skips on purpose: the `position_ids`
 * buffer some transformers versions save; OpenCLIP's `text_projection` and `logit_scale` (used
 * only by CLIP's contrastive head); and layers at or beyond `c.numLayers` — SD 2.x runs 23 of
 * the file's 24 OpenCLIP blocks, so the last block is never read.
 */
export function isUnusedClipTextKey(c: ClipTextConfig, layout: ClipLayout, key: string, prefix = clipLayoutPrefix(layout)): boolean {
  if (!key.startsWith(prefix)) return false;
  const k = key.slice(prefix.length);
  if (layout === "openclip") {
    if (k === "text_projection" || k === "logit_scale") return true;
    const m = /^transformer\.resblocks\.(\d+)\./.exec(k);
    return m !== null && Number(m[1]) >= c.numLayers;
  }
  if (k === "text_model.embeddings.position_ids") return true;
  const m = /^text_model\.encoder\.layers\.(\d+)\./.exec(k);
  return m !== null && Number(m[1]) >= c.numLayers;
}

/**
 * Canonical key → tensor of `file` for a text encoder in `layout` under `prefix`. Tensors under
 * the prefix that the map does not name and that are not known-unused are kept under their own
 * name, so loading reports them as unexpected; a tensor the map names but the file lacks is left
 * out and reported as missing.
 */
export function clipTextWeights(file: SafetensorsFile, c: ClipTextConfig, layout: ClipLayout, prefix = clipLayoutPrefix(layout)): WeightMap {
  const weights: WeightMap = new Map();
  const named = new Set<string>();
  for (const p of clipTextKeyPairs(c, layout, prefix)) {
    named.add(p.source);
    if (file.tensors.has(p.source)) weights.set(p.canonical, p.rows ? { file, name: p.source, rows: p.rows } : { file, name: p.source });
  }
  for (const name of file.tensors.keys()) {
    if (name.startsWith(prefix) && !named.has(name) && !isUnusedClipTextKey(c, layout, name, prefix)) weights.set(name, { file, name });
  }
  return weights;
}
