/**
 * The CLIP text encoder (Radford et al. 2021, §2.4): token + position embeddings, pre-LN
 * transformer layers with a causal mask, a final LayerNorm. Ported from transformers'
 * `CLIPTextTransformer`,
 * https://github.com/huggingface/transformers/blob/e770f0316d2a9b787c9d1440f204fcb65e176682/src/transformers/models/clip/modeling_clip.py
 * (the version the goldens were made with). Parameters carry transformers' `CLIPTextModel` keys.
 */
import { InputError } from "../../errors.js";
import { constant, input } from "../../graph/apply.js";
import type { DType } from "../../graph/dtype.js";
import * as g from "../../graph/ops.js";
import type { Tensor } from "../../graph/tensor.js";
import { attention } from "../../nn/attention.js";
import { Embedding, LayerNorm, Linear, quickGelu } from "../../nn/layers.js";
import type { Scope } from "../../nn/scope.js";
import type { ClipActivation, ClipTextConfig } from "./config.js";

/** Options of `ClipTextEncoder.forward`. */
export interface ClipTextForwardOptions {
  /**
   * Which layer's output becomes `lastHiddenState`, in AUTOMATIC1111's numbering ("CLIP skip"):
   * 1 (default) = the last layer, 2 = the one before it, … — the output of layer
   * `numLayers − clipSkip + 1`, then the final LayerNorm, as A1111 does. diffusers' `clip_skip`
   * is this minus one. Counted from the config's last layer: SD 2.x configs already stop one
   * block early, so clipSkip 1 is what SD 2.x is meant to use.
   */
  readonly clipSkip?: number;
  /** Extra token vectors [N, D] appended to the token table (textual-inversion embeddings). */
  readonly extraTokens?: Tensor;
}

/** What the text encoder produces. */
export interface ClipTextOutputs {
  /** [B, L, D] after the final LayerNorm: the U-Net's `encoder_hidden_states`. */
  readonly lastHiddenState: Tensor;
  /** [B, D] the row of `lastHiddenState` at the EOS token (see `ClipTextConfig.eosTokenId`). */
  readonly pooled: Tensor;
  /** The embeddings, then each layer's output (before the final LayerNorm): `numLayers − clipSkip + 2` tensors [B, L, D]. */
  readonly hiddenStates: readonly Tensor[];
  /** Each layer's attention probabilities [B, H, L, L]. */
  readonly attentionProbs: readonly Tensor[];
}

/**
 * The additive causal mask [L, L]: 0 on and below the diagonal, the dtype's most negative
 * finite value above it — what transformers adds. softmax then gives exactly 0 above the
 * diagonal (exp underflows), the same as −∞ would, without ∞ − ∞ risks in gradients.
 */
export function causalMask(len: number, dtype: DType): Tensor {
  const min = dtype === "float16" ? -65504 : -3.4028234663852886e38;
  const v = new Float64Array(len * len);
  for (let i = 0; i < len; i++) for (let j = i + 1; j < len; j++) v[i * len + j] = min;
  return constant(v, [len, len], dtype);
}

class ClipEmbeddings {
  readonly token: Embedding;
  readonly position: Embedding;
  constructor(s: Scope, c: ClipTextConfig) {
    this.token = new Embedding(s.child("token_embedding"), c.vocabSize, c.hiddenSize);
    this.position = new Embedding(s.child("position_embedding"), c.maxPositions, c.hiddenSize);
  }
  /**
   * ids: int64 [B, L] → [B, L, D]; positions are 0 … L−1. `extra` [N, D] (textual-inversion
   * vectors) is appended to the token table, so ids vocabSize … vocabSize + N − 1 pick its rows.
   */
  forward(ids: Tensor, len: number, extra?: Tensor): Tensor {
    const pos = g.slice(this.position.weight, [0], [0], [len]); // [L, D]
    const tokens = extra === undefined ? this.token.forward(ids) : g.gather(g.concat([this.token.weight, extra], 0), ids, 0); // [B, L, D]
    return g.add(tokens, pos);
  }
}

class ClipAttention {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly out: Linear;
  constructor(s: Scope, readonly c: ClipTextConfig) {
    const d = c.hiddenSize;
    this.q = new Linear(s.child("q_proj"), d, d);
    this.k = new Linear(s.child("k_proj"), d, d);
    this.v = new Linear(s.child("v_proj"), d, d);
    this.out = new Linear(s.child("out_proj"), d, d);
  }
  /** x: [B, L, D], mask [L, L] → [B, L, D] and probs [B, H, L, L] */
  forward(x: Tensor, mask: Tensor): { out: Tensor; probs: Tensor } {
    const a = attention(this.q.forward(x), this.k.forward(x), this.v.forward(x), this.c.numHeads, mask);
    return { out: this.out.forward(a.out), probs: a.probs };
  }
}

function activate(x: Tensor, act: ClipActivation): Tensor {
  return act === "gelu" ? g.gelu(x, "none") : quickGelu(x);
}

class ClipEncoderLayer {
  readonly norm1: LayerNorm;
  readonly attn: ClipAttention;
  readonly norm2: LayerNorm;
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(s: Scope, readonly c: ClipTextConfig) {
    this.norm1 = new LayerNorm(s.child("layer_norm1"), c.hiddenSize, c.layerNormEps);
    this.attn = new ClipAttention(s.child("self_attn"), c);
    this.norm2 = new LayerNorm(s.child("layer_norm2"), c.hiddenSize, c.layerNormEps);
    this.fc1 = new Linear(s.child("mlp").child("fc1"), c.hiddenSize, c.intermediateSize);
    this.fc2 = new Linear(s.child("mlp").child("fc2"), c.intermediateSize, c.hiddenSize);
  }
  /** Pre-LN residual block. x: [B, L, D] → [B, L, D] */
  forward(x: Tensor, mask: Tensor): { out: Tensor; probs: Tensor } {
    const a = this.attn.forward(this.norm1.forward(x), mask);
    const h = g.add(x, a.out); // [B, L, D]
    const m = this.fc2.forward(activate(this.fc1.forward(this.norm2.forward(h)), this.c.activation)); // [B, L, D]
    return { out: g.add(h, m), probs: a.probs };
  }
}

/**
 * The pooled row's one-hot selector [B, L]: per row the first position of the largest id
 * (eosTokenId 2, transformers' legacy rule) or of `eosTokenId`; position 0 when the id is
 * absent, as torch's argmax of an all-zero row gives. Built from comparisons because the IR has
 * no ArgMax: the score hit·2L + (L − i) is largest exactly at the first hit.
 */
function eosSelector(ids: Tensor, c: ClipTextConfig, len: number, dtype: DType): Tensor {
  const target = c.eosTokenId === 2 ? g.reduceMax(ids, [1], true) : constant([c.eosTokenId], [1, 1], "int64");
  const hit = g.cast(g.equal(ids, target), "float32"); // [B, L] 0/1
  const order = constant(Array.from({ length: len }, (_, i) => len - i), [1, len]); // [1, L]
  const score = g.add(g.mul(hit, 2 * len), order); // [B, L]
  return g.cast(g.equal(score, g.reduceMax(score, [1], true)), dtype); // [B, L] one-hot
}

/** transformers `CLIPTextModel`: ids → per-token embeddings and the pooled EOS embedding. */
export class ClipTextEncoder {
  readonly embeddings: ClipEmbeddings;
  readonly layers: readonly ClipEncoderLayer[];
  readonly finalNorm: LayerNorm;
  constructor(s: Scope, readonly c: ClipTextConfig) {
    const t = s.child("text_model");
    this.embeddings = new ClipEmbeddings(t.child("embeddings"), c);
    const layers = t.child("encoder").child("layers");
    this.layers = Array.from({ length: c.numLayers }, (_, i) => new ClipEncoderLayer(layers.child(i), c));
    this.finalNorm = new LayerNorm(t.child("final_layer_norm"), c.hiddenSize, c.layerNormEps);
  }

  /** ids: int64 [B, L] with L ≤ maxPositions (77 in SD) → see `ClipTextOutputs`. */
  forward(ids: Tensor, opts: ClipTextForwardOptions = {}): ClipTextOutputs {
    const c = this.c;
    const clipSkip = opts.clipSkip ?? 1;
    if (!Number.isInteger(clipSkip) || clipSkip < 1 || clipSkip > c.numLayers) {
      throw new InputError(`clipSkip must be an integer from 1 (last layer) to ${c.numLayers} (got ${clipSkip})`);
    }
    const len = ids.shape[1];
    if (ids.rank !== 2 || typeof len !== "number" || len > c.maxPositions) {
      throw new InputError(`text encoder input_ids must be [B, L] with L ≤ ${c.maxPositions} (got ${ids.typeString})`);
    }
    const dtype = this.finalNorm.weight.dtype;
    const mask = causalMask(len, dtype); // [L, L]
    let h = this.embeddings.forward(ids, len, opts.extraTokens); // [B, L, D]
    const hiddenStates = [h];
    const attentionProbs: Tensor[] = [];
    for (const layer of this.layers.slice(0, c.numLayers - clipSkip + 1)) {
      const r = layer.forward(h, mask);
      h = r.out; // [B, L, D]
      hiddenStates.push(h);
      attentionProbs.push(r.probs);
    }
    const lastHiddenState = this.finalNorm.forward(h); // [B, L, D]
    const select = g.unsqueeze(eosSelector(ids, c, len, dtype), [1]); // [B, 1, L]
    const pooled = g.squeeze(g.matmul(select, lastHiddenState), [1]); // [B, D]
    return { lastHiddenState, pooled, hiddenStates, attentionProbs };
  }
}

/** Options of `clipTextGraph`. */
export interface ClipTextGraphOptions extends ClipTextForwardOptions {
  /** Batch size of `input_ids`; default the symbolic "B". */
  readonly batch?: number | string;
  /** Sequence length; default maxPositions. */
  readonly length?: number;
  /** Also output `hidden_states.i` (i = 0 for the embeddings). */
  readonly hiddenStates?: boolean;
  /** Number N of extra token vectors: adds the float32 input `ti.embeddings` [N, D] (see ClipTextForwardOptions). Default 0. */
  readonly extraTokenCount?: number;
}

/** Name of the graph input holding the extra (textual-inversion) token vectors. */
export const EXTRA_TOKENS_INPUT = "ti.embeddings";

/**
 * The build function `loadComponent` takes: input `input_ids` int64 [B, L] (and `ti.embeddings`
 * [N, D] float32 when `extraTokenCount` is N > 0); outputs
 * `last_hidden_state` [B, L, D] and `pooled` [B, D] (and `hidden_states.i` on request).
 */
export function clipTextGraph(c: ClipTextConfig, opts: ClipTextGraphOptions = {}): (root: Scope) => Record<string, Tensor> {
  return (root) => {
    const ids = input("input_ids", "int64", [opts.batch ?? "B", opts.length ?? c.maxPositions]);
    const n = opts.extraTokenCount ?? 0;
    const extraTokens = n > 0 ? root.feed(EXTRA_TOKENS_INPUT, [n, c.hiddenSize]) : undefined;
    const r = new ClipTextEncoder(root, c).forward(ids, { ...opts, ...(extraTokens ? { extraTokens } : {}) });
    const out: Record<string, Tensor> = { last_hidden_state: r.lastHiddenState, pooled: r.pooled };
    if (opts.hiddenStates === true) r.hiddenStates.forEach((h, i) => (out[`hidden_states.${i}`] = h));
    return out;
  };
}
