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
import { CheckpointError, loadModel, previewPng, type Model, type Txt2ImgParams, type Txt2ImgResult } from "../index.js";
import { CANCEL_SLOT, type FromWorker, type RunParams, type ToWorker } from "./protocol.js";
import { passCounter } from "./passes.js";

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
    model: { name: next.info.name, family: next.info.family, source: next.info.source, defaults: { width: d.width, height: d.height, sampler: d.sampler }, inpainting: next.info.inpainting },
  });
}

/** The library call for a run. */
function generate(m: Model, p: RunParams, params: Txt2ImgParams): Promise<Txt2ImgResult> {
  // The server reads prompts as the A1111 web UI does: (x:1.2), [a:b:N], AND, BREAK, long prompts.
  const common: Txt2ImgParams = { ...params, promptSyntax: "a1111" };
  switch (p.kind) {
    case "txt2img":
      return m.txt2img({ ...common, explain: p.explain, ...(p.hires ? { hires: { ...p.hires } } : {}) });
    case "img2img":
      return m.img2img({ ...common, image: p.image, strength: p.strength, resizeMode: p.resizeMode });
    case "inpaint":
      return m.inpaint({
        ...common,
        image: p.image,
        strength: p.strength,
        resizeMode: p.resizeMode,
        maskBlur: p.maskBlur,
        fill: p.fill,
        invertMask: p.invertMask,
        onlyMasked: p.onlyMasked,
        onlyMaskedPadding: p.onlyMaskedPadding,
        ...(p.mask ? { mask: p.mask } : {}),
        ...(p.outpaint ? { outpaint: { ...p.outpaint } } : {}),
      });
  }
}

async function run(seq: number, p: RunParams, previewEvery: number): Promise<void> {
  if (model === undefined) throw new CheckpointError("no model is loaded");
  const controller = new AbortController();
  const count = passCounter(p);
  // Previews encode asynchronously; chaining the posts keeps progress messages in step order.
  let posted: Promise<void> = Promise.resolve();
  const res = await generate(model, p, {
    prompt: p.prompt,
    negativePrompt: p.negativePrompt,
    steps: p.steps,
    cfgScale: p.cfgScale,
    sampler: p.sampler,
    seed: p.seed,
    width: p.width,
    height: p.height,
    batchSize: p.batchSize,
    signal: controller.signal,
    onProgress: (info) => {
      if (Atomics.load(flags, CANCEL_SLOT) === seq) controller.abort();
      const progress = count(info.step, info.total);
      const wantPreview = previewEvery > 0 && (info.step % previewEvery === 0 || info.step === info.total);
      // A preview that fails must not fail the generation: the step is reported without it.
      const preview = wantPreview ? previewPng(info.denoised ?? info.latents).catch(() => undefined) : undefined;
      posted = posted.then(async () => {
        const png = await preview;
        post({ type: "progress", seq, progress, ...(png ? { preview: png } : {}) });
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
