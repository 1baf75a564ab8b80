/**
 * Stage 1: a KL autoencoder (Rombach et al. 2022, §3; Kingma & Welling 2014) trained from scratch.
 * Loss = L1 + L2 reconstruction + 0.5 · L1 of the image gradients (finite differences: a cheap
 * edge term standing in for the perceptual loss, which keeps emoji outlines sharp) + β · KL.
 */
import { input } from "../graph/apply.js";
import { compile } from "../graph/compile.js";
import * as g from "../graph/ops.js";
import type { Tensor } from "../graph/tensor.js";
import { readImageCaptionFolder } from "../io/image-folder.js";
import { type VaeConfig, parseVaeConfig, vaeScaleFactor } from "../models/vae/config.js";
import { VaeDecoder, VaeEncoder } from "../models/vae/vae.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import { ADAMW_DEFAULTS } from "./adamw.js";
import { datasetRgb, gridPng, imageBatch, sampleIndices, tensorImageRgb } from "./data.js";
import { initParams } from "./init.js";
import { type PresetName, VAE_PRESETS } from "./presets.js";
import { Rng } from "./rng.js";
import { type TrainOptions, type TrainResult, checkTrainOptions, openRun, readRunConfig, runStage, writeRunConfig } from "./run.js";
import { Trainer } from "./train-step.js";

/** Weight of the KL term (per latent element, mean). */
export const VAE_KL_WEIGHT = 1e-4;

/** Options of the VAE stage. */
export interface VaeTrainOptions extends TrainOptions {
  readonly preset?: PresetName;
  readonly imageSize?: number;
}

function meanAll(x: Tensor): Tensor {
  return g.reduceMean(x, x.shape.map((_, i) => i));
}

/** The loss graph on a batch of images [B, 3, S, S] with posterior noise `eps`. */
function vaeLoss(s: Scope, c: VaeConfig, batch: number, size: number): Tensor {
  const f = vaeScaleFactor(c);
  const x = input("image", "float32", [batch, 3, size, size]);
  const eps = input("eps", "float32", [batch, c.latentChannels, size / f, size / f]);
  const post = new VaeEncoder(s, c).forward(x);
  const z = g.add(post.mean, g.mul(post.std, eps)); // [B, 4, S/f, S/f]
  const y = new VaeDecoder(s, c).forward(z); // [B, 3, S, S]
  const d = g.sub(y, x);
  const dx = (t: Tensor) => g.sub(g.slice(t, [3], [1], [size]), g.slice(t, [3], [0], [size - 1]));
  const dy = (t: Tensor) => g.sub(g.slice(t, [2], [1], [size]), g.slice(t, [2], [0], [size - 1]));
  const edges = g.add(meanAll(g.abs(g.sub(dx(y), dx(x)))), meanAll(g.abs(g.sub(dy(y), dy(x)))));
  const kl = meanAll(g.mul(g.sub(g.add(g.mul(post.mean, post.mean), g.exp(post.logvar)), g.add(post.logvar, 1)), 0.5));
  return g.add(g.add(g.add(meanAll(g.abs(d)), meanAll(g.mul(d, d))), g.mul(edges, 0.5)), g.mul(kl, VAE_KL_WEIGHT));
}

/** Trains (or resumes) a VAE on the images of `dataDir`; checkpoints, samples and the loss log go to `runDir`. */
export async function trainVae(dataDir: string, runDir: string, o: VaeTrainOptions): Promise<TrainResult> {
  checkTrainOptions(o);
  const saved = await openRun(runDir, "vae", o);
  const run = saved ? await readRunConfig(runDir) : { kind: "vae", data: dataDir, imageSize: o.imageSize ?? 64, model: VAE_PRESETS[o.preset ?? "default"], klWeight: VAE_KL_WEIGHT };
  if (!saved) await writeRunConfig(runDir, run);
  const c = parseVaeConfig(run.model);
  const size = Number(run.imageSize);
  const data = await readImageCaptionFolder(dataDir, size, o.limit);
  const reg = new ParamRegistry();
  const loss = vaeLoss(Scope.root(reg), c, o.batch, size);
  const rng = new Rng(saved?.rngState ?? o.seed ?? 1);
  const init = saved?.params ?? initParams(reg.params, rng);
  const trainer = await Trainer.create(loss, reg.params, init, {
    name: "vae-train",
    optimizer: { ...ADAMW_DEFAULTS, weightDecay: 0, maxGradNorm: 1 },
    ...(saved ? { state: { step: saved.step, m: new Map(saved.m), v: new Map(saved.v) } } : {}),
    ...(o.provider ? { provider: o.provider } : {}),
  });
  const f = vaeScaleFactor(c);
  const shown = Array.from({ length: Math.min(8, data.captions.length) }, (_, i) => Math.floor((i * data.captions.length) / Math.min(8, data.captions.length)));
  // Reconstruction graph for the sample grid: the posterior mean decoded.
  const sreg = new ParamRegistry();
  const ss = Scope.root(sreg);
  const recon = new VaeDecoder(ss, c).forward(new VaeEncoder(ss, c).forward(input("image", "float32", [shown.length, 3, size, size])).mean);
  const reconGraph = await compile({ recon }, { name: "vae-recon", ...(o.provider ? { provider: o.provider } : {}) });
  return runStage(runDir, {
    kind: "vae",
    trainer,
    batch: (r) => ({
      image: imageBatch(data, sampleIndices(r, data.captions.length, o.batch)),
      eps: { dtype: "float32", shape: [o.batch, c.latentChannels, size / f, size / f], data: r.normals((o.batch * c.latentChannels * size * size) / (f * f)) },
    }),
    async sample() {
      const feeds: Record<string, HostTensor> = { image: imageBatch(data, shown) };
      for (const k of sreg.params.keys()) feeds[k] = trainer.params.get(k) as HostTensor;
      const out = (await reconGraph.run(feeds)).recon as HostTensor;
      const tiles = [...shown.map((i) => datasetRgb(data, i)), ...shown.map((_, i) => tensorImageRgb(out.data as Float32Array, size, i))];
      return gridPng(tiles, size, shown.length);
    },
    async dispose() {
      await trainer.dispose();
      await reconGraph.dispose();
    },
  }, o, rng.state);
}
