/**
 * Stage 2: a small CLIP text encoder (the same ClipTextEncoder that runs real checkpoints)
 * trained contrastively against a training-only image tower (Radford et al. 2021, §2.3, Fig. 3):
 * symmetric InfoNCE over the batch with a learnable temperature. The BPE vocabulary is learnt
 * from the captions first and written as a CLIP tokenizer folder.
 */
import { join } from "node:path";
import { constant, input } from "../graph/apply.js";
import { compile } from "../graph/compile.js";
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";
import { readImageCaptionFolder } from "../io/image-folder.js";
import { pathExists } from "../io/run-files.js";
import { loadTokenizerFiles } from "../io/tokenizer-files.js";
import { writeTokenizerFolder } from "../io/tokenizer-write.js";
import { type ClipTextConfig, parseClipTextConfig } from "../models/clip/config.js";
import { ClipTextEncoder } from "../models/clip/text-encoder.js";
import { ClipTokenizer } from "../models/clip/tokenizer.js";
import { Linear } from "../nn/layers.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import { ADAMW_DEFAULTS } from "./adamw.js";
import { learnBpe } from "./bpe.js";
import { CAPTION_NOISE_SHARE, CAPTION_WORDS, CAPTION_WRAP_SHARE, WeightedSampler, datasetRgb, gridPng, imageBatch, randomCaption } from "./data.js";
import { ImageTower } from "./image-tower.js";
import { initParams } from "./init.js";
import { BPE_MERGES, CLIP_PRESETS, type PresetName } from "./presets.js";
import { Rng } from "./rng.js";
import { type TrainOptions, type TrainResult, checkShare, checkTrainOptions, openRun, readRunConfig, runCaptionAugment, runStage, writeRunConfig } from "./run.js";
import { Trainer } from "./train-step.js";

/** Tokens per caption while training (BOS + 22 + EOS): the pooled EOS row never looks past it (causal mask). */
export const CLIP_TRAIN_LENGTH = 24;
/** Key of the learnable log-temperature. */
export const LOGIT_SCALE = "logit_scale";

/** Options of the CLIP stage. */
export interface ClipTrainOptions extends TrainOptions {
  readonly preset?: PresetName;
  /** Share of drawn captions given a stray word that names something else of the folder (`CaptionDistractors`; default 0). */
  readonly captionDistract?: number;
}

/** Ids [L] for a caption: BOS, tokens cut to L − 2, EOS, padding. */
export function captionIds(tok: ClipTokenizer, text: string, len: number): number[] {
  const ids = [tok.bosId, ...tok.tokenize(text).slice(0, len - 2), tok.eosId];
  while (ids.length < len) ids.push(tok.padId);
  return ids;
}

/** int64 [B, L] ids of captions. */
export function idsTensor(tok: ClipTokenizer, texts: readonly string[], len: number): HostTensor {
  const data = new BigInt64Array(texts.length * len);
  texts.forEach((t, i) => captionIds(tok, t, len).forEach((id, j) => (data[i * len + j] = BigInt(id))));
  return { dtype: "int64", shape: [texts.length, len], data };
}

function l2normalize(x: Tensor): Tensor {
  return g.div(x, g.sqrt(g.add(g.reduceSum(g.mul(x, x), [1], true), 1e-8)));
}

/** Unit text and image embeddings [B, E] of the two towers. */
export function towers(s: Scope, c: ClipTextConfig, batch: number, size: number, embed: number): { text: Tensor; image: Tensor } {
  const ids = input("input_ids", "int64", [batch, CLIP_TRAIN_LENGTH]);
  const pooled = new ClipTextEncoder(s, c).forward(ids).pooled; // [B, D]
  const text = new Linear(s.child("text_projection"), c.hiddenSize, embed, { bias: false }).forward(pooled); // [B, E]
  const image = new ImageTower(s.child("vision"), [32, 64, 128, 128].map((w) => Math.min(w, 4 * c.hiddenSize)), embed).forward(input("image", "float32", [batch, 3, size, size]));
  return { text: l2normalize(text), image: l2normalize(image) };
}

/** Symmetric InfoNCE: mean over both directions of −log softmax(scale · T·Iᵀ) on the diagonal. */
function clipLoss(s: Scope, t: Tensor, im: Tensor, batch: number): Tensor {
  const scale = g.exp(g.minimum(s.param(LOGIT_SCALE, []), Math.log(100))); // CLIP clips the temperature at 100
  const logits = g.mul(g.matmul(t, g.transpose(im, [1, 0])), scale); // [B, B]
  const lse = (x: Tensor, axis: number) => {
    const m = g.reduceMax(x, [axis], true);
    return g.add(g.squeeze(m, [axis]), g.log(g.reduceSum(g.exp(g.sub(x, m)), [axis])));
  };
  const eye = constant(Array.from({ length: batch * batch }, (_, k) => (k % (batch + 1) === 0 ? 1 : 0)), [batch, batch]);
  const diag = g.reduceSum(g.mul(logits, eye), [1]); // [B]
  const both = g.sub(g.add(lse(logits, 1), lse(logits, 0)), g.mul(diag, 2));
  return g.mul(g.reduceMean(both, [0]), 0.5);
}

/** The run's tokenizer: learnt now from every caption (fresh run) or read back (resume). */
async function runTokenizer(dir: string, captions: readonly (readonly string[])[], merges: number): Promise<ClipTokenizer> {
  if (!pathExists(join(dir, "vocab.json"))) {
    const bpe = learnBpe(captions.flat(), merges);
    await writeTokenizerFolder(dir, bpe.vocab, bpe.merges, 77);
  }
  return new ClipTokenizer(await loadTokenizerFiles(dir));
}

/** Trains (or resumes) the text encoder on the image–caption pairs of `dataDir`. */
export async function trainClip(dataDir: string, runDir: string, o: ClipTrainOptions): Promise<TrainResult> {
  checkTrainOptions(o);
  checkShare("caption-distract", o.captionDistract);
  const saved = await openRun(runDir, "clip", o);
  const preset = o.preset ?? "default";
  const data = await readImageCaptionFolder(dataDir, 64, o.limit);
  const tok = await runTokenizer(join(runDir, "tokenizer"), [...data.captions, Object.values(CAPTION_WORDS).flat()], BPE_MERGES[preset]);
  const run = saved ? await readRunConfig(runDir) : { kind: "clip", data: dataDir, captionWrap: CAPTION_WRAP_SHARE, captionNoise: CAPTION_NOISE_SHARE, captionDistract: o.captionDistract ?? 0, model: { ...CLIP_PRESETS[preset], vocab_size: tok.vocabSize } };
  const captions = runCaptionAugment(run, data.captions);
  if (!saved) await writeRunConfig(runDir, run);
  const c = parseClipTextConfig(run.model);
  const embed = Number((run.model as Record<string, unknown>).projection_dim ?? c.hiddenSize);
  const reg = new ParamRegistry();
  const s = Scope.root(reg);
  const tw = towers(s, c, o.batch, data.size, embed);
  const loss = clipLoss(s, tw.text, tw.image, o.batch);
  const rng = new Rng(saved?.rngState ?? o.seed ?? 2);
  const init = saved?.params ?? initParams(reg.params, rng, (k) => (k === LOGIT_SCALE ? { constant: Math.log(1 / 0.07) } : undefined));
  const trainer = await Trainer.create(loss, reg.params, init, {
    name: "clip-train",
    optimizer: { ...ADAMW_DEFAULTS, beta2: 0.98, eps: 1e-6, weightDecay: 0.1, maxGradNorm: 1 },
    ...(saved ? { state: { step: saved.step, m: new Map(saved.m), v: new Map(saved.v) } } : {}),
    ...(o.provider ? { provider: o.provider } : {}),
  });
  // Retrieval check for the sample grid: which of 8 images each of their first captions picks.
  const k = Math.min(8, data.captions.length);
  const shown = Array.from({ length: k }, (_, i) => Math.floor((i * data.captions.length) / k));
  const ereg = new ParamRegistry();
  const ev = towers(Scope.root(ereg), c, k, data.size, embed);
  const evalGraph = await compile({ sim: g.matmul(ev.text, g.transpose(ev.image, [1, 0])) }, { name: "clip-eval", ...(o.provider ? { provider: o.provider } : {}) });
  const draw = new WeightedSampler(data.weights);
  return runStage(runDir, {
    kind: "clip",
    trainer,
    batch(r) {
      const idx = draw.sample(r, o.batch);
      return { image: imageBatch(data, idx), input_ids: idsTensor(tok, idx.map((i) => randomCaption(data, i, r, captions)), CLIP_TRAIN_LENGTH) };
    },
    async sample() {
      const feeds: Record<string, HostTensor> = { image: imageBatch(data, shown), input_ids: idsTensor(tok, shown.map((i) => data.captions[i]?.[0] ?? ""), CLIP_TRAIN_LENGTH) };
      for (const key of ereg.params.keys()) feeds[key] = trainer.params.get(key) as HostTensor;
      const sim = (await evalGraph.run(feeds)).sim?.data as Float32Array;
      const best = shown.map((_, row) => {
        let j = 0;
        for (let col = 1; col < k; col++) if ((sim[row * k + col] ?? 0) > (sim[row * k + j] ?? 0)) j = col;
        return shown[j] ?? 0;
      });
      // Top row: each caption's image; bottom row: the image the text encoder picks for it.
      return gridPng([...shown.map((i) => datasetRgb(data, i)), ...best.map((i) => datasetRgb(data, i))], data.size, k);
    },
    async dispose() {
      await trainer.dispose();
      await evalGraph.dispose();
    },
  }, o, rng.state);
}
