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
import { loadModel, previewPng, type LoraParams, type Model, type Txt2ImgParams, type Txt2ImgResult } from "../index.js";
import { CANCEL_SLOT, NO_MODEL, type FromWorker, type LoadOptions, type RunParams, type ToWorker } from "./protocol.js";
import { passCounter } from "./passes.js";

const port = parentPort;
if (port === null) throw new Error("src/server/worker.ts must run in a worker thread");
const flags = new Int32Array((workerData as { flags: SharedArrayBuffer }).flags);
let model: Model | undefined;

/** The model, or the NO_MODEL error (a worker restarted after a crash holds none until the queue reloads it). */
function loaded(): Model {
  if (model !== undefined) return model;
  const e = new Error("no model is loaded");
  e.name = NO_MODEL;
  throw e;
}

function post(msg: FromWorker): void {
  port?.postMessage(msg);
}

async function load(seq: number, source: string, o: LoadOptions): Promise<void> {
  const next = await loadModel(source, {
    provider: o.provider as "cpu",
    ...(o.loraDir !== undefined ? { loraDir: o.loraDir } : {}),
    ...(o.embeddingsDir !== undefined ? { embeddingsDir: o.embeddingsDir } : {}),
  });
  // One unreadable file in the LoRA folder must not stop the model from loading: report it instead.
  const listed = await next.listLoras().then(
    (loras) => ({ loras }),
    (e: unknown) => ({ loras: [], lorasError: e instanceof Error ? e.message : String(e) }),
  );
  const old = model;
  model = next;
  await old?.dispose();
  const d = next.defaultParams;
  const { name, family, source: path, inpainting } = next.info;
  const defaults = { width: d.width, height: d.height, sampler: d.sampler, cfgScale: d.cfgScale };
  post({ type: "loaded", seq, model: { name, family, source: path, defaults, inpainting, ...listed, embeddings: next.listEmbeddings() } });
}

/** Re-reads the LoRA folder (files may have been added or removed since the model loaded). */
async function listLoras(seq: number): Promise<void> {
  post({ type: "loras", seq, loras: await loaded().listLoras() });
}

/** The library call for a run. */
function generate(m: Model, p: RunParams, params: Txt2ImgParams): Promise<Txt2ImgResult> {
  // The server reads prompts as the A1111 web UI does: (x:1.2), [a:b:N], AND, BREAK, long prompts, <lora:name:w>.
  const common: Txt2ImgParams & LoraParams = { ...params, promptSyntax: "a1111", ...(p.loras ? { loras: p.loras } : {}) };
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
  const m = loaded();
  const controller = new AbortController();
  const count = passCounter(p);
  // Previews encode asynchronously; chaining the posts keeps progress messages in step order.
  let posted: Promise<void> = Promise.resolve();
  const res = await generate(m, p, {
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

function handle(msg: ToWorker): Promise<void> {
  switch (msg.type) {
    case "load":
      return load(msg.seq, msg.source, msg.options);
    case "list-loras":
      return listLoras(msg.seq);
    case "run":
      return run(msg.seq, msg.params, msg.previewEvery);
  }
}

port.on("message", (msg: ToWorker) => {
  const job = handle(msg);
  job.catch((e: unknown) => {
    const err = e instanceof Error ? e : new Error(String(e));
    if (err.name === "AbortError") post({ type: "cancelled", seq: msg.seq });
    else post({ type: "error", seq: msg.seq, name: err.name, message: err.message });
  });
});
