/** `sdts train vae|clip|unet <data-dir> --out <run-dir>` and `sdts train export`: the three training stages and the model folder. */
import { defineCommand } from "citty";
import { DEFAULT_EXPORT_CFG, DEFAULT_EXPORT_SAMPLER, DEFAULT_MIN_SNR_GAMMA, InputError, type PresetName, type TrainOptions, type TrainProgress, exportModel, isPreset, trainClip, trainUNet, trainVae } from "../../index.js";
import { checkTextContext } from "../../train/unet.js";
import { parseProvider } from "../../runtime/providers.js";
import { CAPTION_NOISE_SHARE, CAPTION_WRAP_SHARE } from "../../train/data.js";
import { ProgressBar } from "../progress.js";

const COMMON = {
  data: { type: "positional", description: "folder of images with same-named .txt captions", required: true },
  out: { type: "string", description: "run folder (checkpoint, samples/, loss.jsonl, config.json)", required: true },
  steps: { type: "string", description: "total optimizer steps; a resumed run continues to this step (default: vae 600, clip 1500, unet 3000)" },
  batch: { type: "string", description: "images per step (default: vae 8, clip 128, unet 64)" },
  lr: { type: "string", description: "peak learning rate, warm-up then cosine decay to 10% (default 1e-3)" },
  resume: { type: "boolean", description: "continue the run in --out from its checkpoint, at the same step" },
  "sample-every": { type: "string", description: "write samples/step-N.png every N steps (default 500)" },
  "save-every": { type: "string", description: "write the checkpoint every N steps (default 500)" },
  preset: { type: "string", description: "model size: default | tiny", default: "default" },
  seed: { type: "string", description: "seed of initial weights and batches" },
  limit: { type: "string", description: "use only the first N images" },
  provider: { type: "string", description: "where the steps run: cpu | webgpu | cuda (default cpu)", default: "cpu" },
} as const;

function num(v: unknown, name: string, dflt: number): number {
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new InputError(`--${name} must be a number (got '${String(v)}')`);
  return n;
}

function options(args: Record<string, unknown>, d: { steps: number; batch: number; lr: number }): TrainOptions & { preset: PresetName } {
  const preset = String(args.preset ?? "default");
  if (!isPreset(preset)) throw new InputError(`--preset must be default or tiny (got '${preset}')`);
  const bar = new ProgressBar("training");
  let started = false;
  const onProgress = (p: TrainProgress) => {
    if (!started) bar.reset(p.step); // the clock starts after the first step (graph compiling is not a step)
    started = true;
    bar.update(p.step, p.total, `loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(1)}`);
  };
  const limit = args.limit === undefined ? undefined : num(args.limit, "limit", 0);
  return {
    steps: num(args.steps, "steps", d.steps),
    batch: num(args.batch, "batch", d.batch),
    lr: num(args.lr, "lr", d.lr),
    resume: args.resume === true,
    sampleEvery: num(args["sample-every"], "sample-every", 500),
    saveEvery: num(args["save-every"], "save-every", 500),
    seed: num(args.seed, "seed", 1),
    preset,
    provider: parseProvider(String(args.provider ?? "cpu")),
    onProgress,
    ...(limit === undefined ? {} : { limit }),
  };
}

function report(r: { runDir: string; step: number; startStep: number; seconds: number; losses: readonly number[] }): void {
  const last = r.losses.slice(-50);
  const mean = last.reduce((a, b) => a + b, 0) / Math.max(1, last.length);
  const rate = (r.step - r.startStep) / Math.max(r.seconds, 1e-9);
  console.log(`${r.runDir}: step ${r.step} (${r.step - r.startStep} this run, ${r.seconds.toFixed(0)} s, ${rate.toFixed(2)} it/s), mean loss of the last ${last.length} steps ${mean.toFixed(4)}`);
}

const vae = defineCommand({
  meta: { name: "vae", description: "Train the KL autoencoder (f=8, 4 latent channels; --preset tiny: f=4)" },
  args: COMMON,
  async run({ args }) {
    report(await trainVae(args.data, args.out, options(args, { steps: 600, batch: 8, lr: 1e-3 })));
  },
});

const clip = defineCommand({
  meta: { name: "clip", description: "Learn a BPE vocabulary and train a small CLIP text encoder contrastively" },
  args: {
    ...COMMON,
    "caption-distract": { type: "string", description: "share of drawn captions given a stray word that names another image of the folder (default 0)" },
  },
  async run({ args }) {
    const o = options(args, { steps: 1500, batch: 128, lr: 1e-3 });
    report(await trainClip(args.data, args.out, { ...o, captionDistract: num(args["caption-distract"], "caption-distract", 0) }));
  },
});

const unet = defineCommand({
  meta: { name: "unet", description: "Train the U-Net on cached VAE latents, conditioned on the frozen text encoder" },
  args: {
    ...COMMON,
    vae: { type: "string", description: "the finished VAE run folder, or a model folder to take its VAE (e.g. models/default; a resumed run remembers it)" },
    clip: { type: "string", description: "the finished CLIP run folder, or a model folder to take its text encoder and tokenizer (a resumed run remembers it)" },
    prediction: { type: "string", description: "what the U-Net predicts: v_prediction (default) or epsilon (a resumed run keeps its own)" },
    "min-snr-gamma": { type: "string", description: "γ of the loss weighting (v: x₀ error × SNR clamped to [1, γ]; ε: min-SNR-γ), 0 = plain MSE (default 5)" },
    "caption-wrap": { type: "string", description: `share of drawn captions reworded with generic words (default ${CAPTION_WRAP_SHARE})` },
    "caption-noise": { type: "string", description: `share of reworded captions then disturbed by stray words and marks (default ${CAPTION_NOISE_SHARE})` },
    "context-noise": { type: "string", description: "RMS of Gaussian noise added to the text states the U-Net reads in training (conditioning augmentation; default 0)" },
    "caption-distract": { type: "string", description: "share of drawn captions given a stray word that names another image of the folder (default 0)" },
    "text-context": { type: "string", description: "what the U-Net cross-attends to: tokens (the caption's token states, as SD; default) or pooled (its pooled state in every row)" },
  },
  async run({ args }) {
    const o = options(args, { steps: 3000, batch: 64, lr: 1e-3 });
    const prediction = args.prediction ?? "v_prediction";
    if (prediction !== "v_prediction" && prediction !== "epsilon") throw new InputError(`--prediction must be v_prediction or epsilon (got '${prediction}')`);
    report(await trainUNet(args.data, args.out, {
      ...o,
      prediction,
      minSnrGamma: num(args["min-snr-gamma"], "min-snr-gamma", DEFAULT_MIN_SNR_GAMMA),
      captionWrap: num(args["caption-wrap"], "caption-wrap", CAPTION_WRAP_SHARE),
      captionNoise: num(args["caption-noise"], "caption-noise", CAPTION_NOISE_SHARE),
      contextNoise: num(args["context-noise"], "context-noise", 0),
      captionDistract: num(args["caption-distract"], "caption-distract", 0),
      textContext: checkTextContext(args["text-context"]),
      ...(args.vae ? { vaeRun: args.vae } : {}),
      ...(args.clip ? { clipRun: args.clip } : {}),
    }));
  },
});

const exp = defineCommand({
  meta: { name: "export", description: "Assemble the three runs into a diffusers model folder (fp16, ≤ 40 MB)" },
  args: {
    dir: { type: "positional", description: "output model folder (e.g. models/default)", required: true },
    vae: { type: "string", description: "VAE run folder (or a model folder)", required: true },
    clip: { type: "string", description: "CLIP run folder (or a model folder)", required: true },
    unet: { type: "string", description: "U-Net run folder", required: true },
    cfg: { type: "string", description: `the model's default CFG scale, for generate, serve and the UI (default ${DEFAULT_EXPORT_CFG})` },
    sampler: { type: "string", description: `the model's default sampler, for generate, serve and the UI (default ${DEFAULT_EXPORT_SAMPLER})` },
  },
  async run({ args }) {
    const cfgScale = num(args.cfg, "cfg", DEFAULT_EXPORT_CFG);
    const r = await exportModel({ vae: args.vae, clip: args.clip, unet: args.unet, cfgScale, ...(args.sampler ? { sampler: args.sampler } : {}) }, args.dir);
    console.log(`${r.dir}: ${(r.bytes / 1e6).toFixed(2)} MB`);
  },
});

export default defineCommand({
  meta: { name: "train", description: "Train the embedded model's networks from scratch and export them" },
  subCommands: { vae, clip, unet, export: exp },
});
