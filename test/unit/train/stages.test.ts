/**
 * Smoke test of the training recipe (issue #5) on 12 synthetic images: a few steps of each stage
 * with the "tiny" presets — loss falls, the checkpoint saves, --resume continues at the same
 * step — then the exported folder loads through loadModel and makes a 64×64 image.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { loadTokenizer } from "../../../src/pipelines/load-tokenizer.js";
import { buildConditioning } from "../../../src/pipelines/conditioning.js";
import { loadModel } from "../../../src/pipelines/load-model.js";
import { readCaptionPrior, snapToCaptions } from "../../../src/models/clip/caption-prior.js";
import { trainClip } from "../../../src/train/clip.js";
import { CAPTION_NOISE_SHARE, CAPTION_WRAP_SHARE } from "../../../src/train/data.js";
import { exportModel } from "../../../src/train/export.js";
import { readClipRun, readVaeRun } from "../../../src/train/frozen.js";
import type { TrainResult } from "../../../src/train/run.js";
import { trainUNet } from "../../../src/train/unet.js";
import { trainVae } from "../../../src/train/vae.js";
import { writeShapes } from "./synthetic.js";

let root = "";
const dir = (name: string) => join(root, name);

before(async () => {
  root = await mkdtemp(join(tmpdir(), "sdts-train-"));
  await writeShapes(dir("data"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The mean of the last three losses is below the mean of the first three. */
function assertFalls(r: TrainResult, what: string): void {
  const first = mean(r.losses.slice(0, 3));
  const last = mean(r.losses.slice(-3));
  assert.ok(last < first, `${what}: loss did not fall (${first.toFixed(4)} → ${last.toFixed(4)}): ${r.losses.map((l) => l.toFixed(3)).join(" ")}`);
}

function logSteps(runDir: string): number[] {
  return readFileSync(join(runDir, "loss.jsonl"), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { step: number }).step);
}

test("VAE: loss falls, checkpoint and samples are written, --resume continues at the saved step", async () => {
  const opts = { batch: 4, lr: 3e-3, preset: "tiny", sampleEvery: 12 } as const;
  const r = await trainVae(dir("data"), dir("vae"), { ...opts, steps: 12 });
  assertFalls(r, "vae");
  assert.equal(r.step, 12);
  assert.ok(existsSync(join(dir("vae"), "checkpoint.safetensors")));
  assert.ok(existsSync(join(dir("vae"), "samples", "step-000012.png")));
  await assert.rejects(trainVae(dir("data"), dir("vae"), { ...opts, steps: 16 }), /--resume/);
  const resumed = await trainVae(dir("data"), dir("vae"), { ...opts, steps: 16, resume: true });
  assert.equal(resumed.startStep, 12);
  assert.equal(resumed.step, 16);
  assert.deepEqual(logSteps(dir("vae")), Array.from({ length: 16 }, (_, i) => i + 1));
});

test("CLIP: learnt BPE vocabulary loads through ClipTokenizer; contrastive loss falls", async () => {
  const r = await trainClip(dir("data"), dir("clip"), { steps: 12, batch: 8, lr: 3e-3, preset: "tiny", sampleEvery: 12 });
  assertFalls(r, "clip");
  const tok = await loadTokenizer(join(dir("clip"), "tokenizer"));
  const ids = tok.encode("a red circle");
  assert.equal(ids.length, 77);
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "a red circle");
  assert.equal(tok.eosId, tok.vocabSize - 1, "EOS must be the largest id (the text encoder pools at the largest id)");
  assert.equal(JSON.parse(readFileSync(join(dir("clip"), "config.json"), "utf8")).captionDistract, 0);
  await trainClip(dir("data"), dir("clip-distract"), { steps: 2, batch: 8, lr: 3e-3, preset: "tiny", sampleEvery: 100, captionDistract: 0.5 });
  assert.equal(JSON.parse(readFileSync(join(dir("clip-distract"), "config.json"), "utf8")).captionDistract, 0.5, "the run config records the share it was given");
  await assert.rejects(trainClip(dir("data"), dir("clip-bad"), { steps: 1, batch: 8, lr: 3e-3, preset: "tiny", captionDistract: 1.5 }), /--caption-distract must be a share from 0 to 1 \(got 1\.5\)/);
  assert.equal(existsSync(dir("clip-bad")), false, "a refused run writes nothing");
});

test("U-Net: loss falls on cached latents; resume keeps the EMA; export loads and generates 64×64", async () => {
  const opts = { batch: 4, lr: 3e-3, preset: "tiny", sampleEvery: 100, vaeRun: dir("vae"), clipRun: dir("clip") } as const;
  // The loss check uses ε targets: on a VAE trained for 12 steps the latents are mostly posterior
  // noise, which v targets (≈ −z at high noise) cannot learn in a few steps; ε ≈ x_t there can.
  assertFalls(await trainUNet(dir("data"), dir("unet-eps"), { ...opts, steps: 14, prediction: "epsilon", captionWrap: 0.9, captionNoise: 0.2, contextNoise: 0.3, captionDistract: 0.3 }), "unet (ε)");
  await trainUNet(dir("data"), dir("unet"), { ...opts, steps: 14 }); // the default: v targets
  const shares = (run: string) => {
    const c = JSON.parse(readFileSync(join(dir(run), "config.json"), "utf8")) as Record<string, unknown>;
    return [c.captionWrap, c.captionNoise, c.contextNoise, c.captionDistract];
  };
  assert.deepEqual(shares("unet-eps"), [0.9, 0.2, 0.3, 0.3], "the run config records the caption shares and context noise it was given");
  assert.deepEqual(shares("unet"), [CAPTION_WRAP_SHARE, CAPTION_NOISE_SHARE, 0, 0]);
  await assert.rejects(trainUNet(dir("data"), dir("unet-bad"), { ...opts, steps: 1, captionWrap: 1.5 }), /--caption-wrap must be a share from 0 to 1 \(got 1\.5\)/);
  await assert.rejects(trainUNet(dir("data"), dir("unet-bad"), { ...opts, steps: 1, contextNoise: -1 }), /--context-noise must be an RMS from 0 to 2/);
  await assert.rejects(trainUNet(dir("data"), dir("unet-bad"), { ...opts, steps: 1, captionDistract: 2 }), /--caption-distract must be a share from 0 to 1 \(got 2\)/);
  await assert.rejects(trainUNet(dir("data"), dir("unet-bad"), { ...opts, steps: 1, vaeRun: dir("no-such-run") }), /not a training run folder/);
  assert.equal(existsSync(dir("unet-bad")), false, "a refused run writes nothing");
  const resumed = await trainUNet(dir("data"), dir("unet"), { ...opts, steps: 16, resume: true });
  assert.equal(resumed.startStep, 14);
  assert.ok(readdirSync(join(dir("unet"), "samples")).includes("step-000016.png"));
  const out = dir("model");
  const e = await exportModel({ vae: dir("vae"), clip: dir("clip"), unet: dir("unet") }, out);
  assert.ok(e.bytes < 40e6);
  for (const f of ["model_index.json", "unet/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors", "tokenizer/vocab.json", "scheduler/scheduler_config.json"]) {
    assert.ok(existsSync(join(out, f)), `${f} missing from the export`);
  }
  assert.deepEqual(JSON.parse(readFileSync(join(out, "model_index.json"), "utf8"))._sdts_defaults, { cfg_scale: 5, sampler: "DDIM" }, "the export names the defaults bench:default chose");
  const sched = JSON.parse(readFileSync(join(out, "scheduler/scheduler_config.json"), "utf8")) as Record<string, unknown>;
  assert.equal(sched.prediction_type, "v_prediction", "the scheduler config must say what the U-Net was trained to predict");
  // The exported folder stands in for the VAE and CLIP runs: its fp16 weights read back within fp16 rounding, and a U-Net trains on them.
  const [runVae, modelVae, runClip, modelClip] = [await readVaeRun(dir("vae")), await readVaeRun(out), await readClipRun(dir("clip")), await readClipRun(out)];
  assert.equal(modelVae.imageSize, runVae.imageSize);
  assert.deepEqual([...modelVae.params.keys()].sort(), [...runVae.params.keys()].sort());
  assert.deepEqual([...modelClip.params.keys()].sort(), [...runClip.params.keys()].filter((k) => k.startsWith("text_model.")).sort());
  for (const [a, b] of [[runVae, modelVae], [runClip, modelClip]] as const) {
    for (const [k, t] of b.params) {
      const ref = a.params.get(k)?.data as Float32Array;
      (t.data as Float32Array).forEach((v, i) => assert.ok(Math.abs(v - (ref[i] ?? NaN)) <= 1e-3 * Math.abs(ref[i] ?? 0) + 1e-7, `${k}[${i}]: ${v} vs ${ref[i]}`));
    }
  }
  assert.equal(modelClip.tokenizer.encode("a red circle").join(), runClip.tokenizer.encode("a red circle").join());
  const fromModel = await trainUNet(dir("data"), dir("unet-from-model"), { ...opts, steps: 2, vaeRun: out, clipRun: out });
  assert.ok(fromModel.losses.length === 2 && fromModel.losses.every(Number.isFinite));
  const model = await loadModel(out);
  try {
    // the U-Net's class embedding reads each prompt's pooled text state: rows in the context's order
    assert.equal(model.unet.needsPooled, true);
    const cond = await (await buildConditioning(model.components, "a blue square", "", { batch: 2, guided: true, steps: 3, syntax: "plain" }))(0, 3);
    const te = await model.textEncoder.encodeWithPooled([model.tokenizer.encode(""), model.tokenizer.encode("a blue square")]);
    const d = te.pooled.shape[1] ?? 0;
    assert.deepEqual(cond.pooled?.shape, [4, d]);
    [0, 0, 1, 1].forEach((src, row) => assert.deepEqual(cond.pooled?.data.subarray(row * d, (row + 1) * d), te.pooled.data.subarray(src * d, (src + 1) * d), `pooled row ${row}`));
    // A1111 syntax: the pooled state is the first chunk's, unweighted (emphasis scales only the context)
    const a1111 = await (await buildConditioning(model.components, "a (blue:1.5) square", "", { batch: 1, guided: false, steps: 3, syntax: "a1111" }))(0, 3);
    const plainPooled = te.pooled.data.subarray(d, 2 * d);
    assert.deepEqual(a1111.pooled?.shape, [1, d]);
    a1111.pooled?.data.forEach((v, i) => assert.ok(Math.abs(v - (plainPooled[i] ?? 0)) < 1e-5, `a1111 pooled[${i}] ${v} vs plain ${plainPooled[i]}`));
    const latent = { data: new Float32Array(4 * 16 * 16), shape: [1, 4, 16, 16] };
    const ctx = { data: te.context.data.slice(te.context.data.length / 2), shape: [1, ...te.context.shape.slice(1)] };
    await assert.rejects(model.unet.predict(latent, 500, ctx), { name: "ShapeError", message: /pooled text state \(class_labels \[1, 32\]\)/ });
    const g = await model.txt2img({ prompt: "a blue square", steps: 3, seed: 7, cfgScale: 5 });
    assert.equal(g.info.width, 64);
    assert.equal(g.info.height, 64);
    assert.ok((g.images[0]?.length ?? 0) > 100);
    assert.ok(g.latents.data.every(Number.isFinite));
  } finally {
    await model.dispose();
  }
});

test("U-Net with --text-context pooled: the config says so, and the loaded model feeds the pooled state in every context row", async () => {
  const opts = { batch: 4, lr: 3e-3, preset: "tiny", sampleEvery: 2, vaeRun: dir("vae"), clipRun: dir("clip") } as const;
  const r = await trainUNet(dir("data"), dir("unet-pooled"), { ...opts, steps: 2, textContext: "pooled" });
  assert.ok(r.losses.length === 2 && r.losses.every(Number.isFinite));
  assert.ok(readdirSync(join(dir("unet-pooled"), "samples")).includes("step-000002.png"), "the sample grid runs through the pooled context too");
  await assert.rejects(trainUNet(dir("data"), dir("unet-bad"), { ...opts, steps: 1, textContext: "eos" as "pooled" }), /--text-context must be tokens or pooled \(got 'eos'\)/);
  assert.equal(existsSync(dir("unet-bad")), false, "a refused run writes nothing");
  const out = dir("model-pooled");
  await exportModel({ vae: dir("vae"), clip: dir("clip"), unet: dir("unet-pooled") }, out);
  assert.equal(JSON.parse(readFileSync(join(out, "unet/config.json"), "utf8"))._sdts_text_context, "pooled");
  // the caption prior: one pooled state per distinct caption line of the training folder
  const distinct = new Set(readdirSync(dir("data")).filter((f) => f.endsWith(".txt")).flatMap((f) => readFileSync(join(dir("data"), f), "utf8").split("\n").map((x) => x.trim()).filter(Boolean)));
  assert.equal(JSON.parse(readFileSync(join(out, "caption_prior/config.json"), "utf8")).captions, distinct.size);
  const prior = await readCaptionPrior(out, 32);
  assert.ok(prior);
  const model = await loadModel(out);
  try {
    const te = await model.textEncoder.encodeWithPooled([model.tokenizer.encode("a blue square"), model.tokenizer.encode("")]);
    const [k, l, d] = te.context.shape as [number, number, number];
    assert.deepEqual([k, l], [2, 77]);
    // every context row holds the prompt's pooled state snapped onto the captions'; the empty prompt's as it is
    const wants = [snapToCaptions(prior, te.pooled.data.subarray(0, d)), te.pooled.data.subarray(d, 2 * d)];
    for (let b = 0; b < k; b++) {
      for (const j of [0, 5, 76]) {
        const row = te.context.data.subarray((b * l + j) * d, (b * l + j + 1) * d);
        row.forEach((v, e) => assert.ok(Math.abs(v - (wants[b]?.[e] ?? NaN)) < 1e-6, `prompt ${b}, context row ${j}[${e}]: ${v} vs ${wants[b]?.[e]}`));
      }
    }
    assert.notDeepEqual(wants[0], te.pooled.data.subarray(0, d), "an unseen prompt moves onto the captions' states");
    const g = await model.txt2img({ prompt: "a blue square", steps: 3, seed: 7, cfgScale: 5, explain: true });
    assert.ok(g.latents.data.every(Number.isFinite));
    assert.equal(g.explain?.context, "pooled");
    assert.deepEqual(g.explain?.heatmaps, [], "no word has a map of its own when every context row is the pooled state");
    assert.equal(g.explain?.filmstrip.length, 3);
  } finally {
    await model.dispose();
  }
});
