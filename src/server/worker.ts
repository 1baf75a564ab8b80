/**
 * The generation worker: a worker thread that owns the Model. onnxruntime's session.run holds
 * the thread while it computes, so generation lives here and the HTTP thread stays free to
 * answer progress polls, SSE streams, interrupts and queue-full 503s.
 *
 * Cancelling goes through shared memory, not a message: while a run is in progress this thread
 * may never return to its event loop (each awaited step can resolve as a microtask), so a
 * posted "cancel" would only be read after the run ended. onProgress polls the flag instead.
 */
import { parentPort, workerData } from "node:worker_threads";
import { CheckpointError, loadModel, previewPng, type Model } from "../index.js";
import { CANCEL_SLOT, type FromWorker, type RunParams, type ToWorker } from "./protocol.js";

const port = parentPort;
if (port === null) throw new Error("src/server/worker.ts must run in a worker thread");
const flags = new Int32Array((workerData as { flags: SharedArrayBuffer }).flags);
let model: Model | undefined;

function post(msg: FromWorker): void {
  port?.postMessage(msg);
}

async function load(seq: number, source: string, provider: string): Promise<void> {
  const next = await loadModel(source, { provider: provider as "cpu" });
  const old = model;
  model = next;
  await old?.dispose();
  const d = next.defaultParams;
  post({
    type: "loaded",
    seq,
    model: { name: next.info.name, family: next.info.family, source: next.info.source, defaults: { width: d.width, height: d.height, sampler: d.sampler } },
  });
}

async function run(seq: number, p: RunParams, previewEvery: number): Promise<void> {
  if (model === undefined) throw new CheckpointError("no model is loaded");
  const controller = new AbortController();
  // Previews encode asynchronously; chaining the posts keeps progress messages in step order.
  let posted: Promise<void> = Promise.resolve();
  const res = await model.txt2img({
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    steps: p.steps,
    cfgScale: p.cfgScale,
    sampler: p.sampler,
    seed: p.seed,
    width: p.width,
    height: p.height,
    batchSize: p.batchSize,
    explain: p.explain,
    signal: controller.signal,
    onProgress: (info) => {
      if (Atomics.load(flags, CANCEL_SLOT) === seq) controller.abort();
      const { step, total } = info;
      const wantPreview = previewEvery > 0 && (step % previewEvery === 0 || step === total);
      // A preview that fails must not fail the generation: the step is reported without it.
      const preview = wantPreview ? previewPng(info.denoised ?? info.latents).catch(() => undefined) : undefined;
      posted = posted.then(async () => {
        const png = await preview;
        post({ type: "progress", seq, step, total, ...(png ? { preview: png } : {}) });
      });
    },
  });
  await posted;
  post({ type: "done", seq, result: { images: res.images, seeds: res.seeds, info: res.info, ...(res.explain ? { explain: res.explain } : {}) } });
}

port.on("message", (msg: ToWorker) => {
  const job = msg.type === "load" ? load(msg.seq, msg.source, msg.provider) : run(msg.seq, msg.params, msg.previewEvery);
  job.catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    if (err.name === "AbortError") post({ type: "cancelled", seq: msg.seq });
    else post({ type: "error", seq: msg.seq, name: err.name, message: err.message });
  });
});
