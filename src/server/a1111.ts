/**
 * AUTOMATIC1111's API (`/sdapi/v1/*`), so its clients work unchanged. Shapes follow its
 * modules/api/api.py and models.py
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0050a35429b824cbb0a794694358fb32ce487ac4/modules/api/api.py);
 * lists of things sdts has none of (scripts, hypernetworks…) answer empty, as clients probe them.
 */
import { freemem, totalmem } from "node:os";
import { VERSION, SAMPLERS, parseInfotext, readPngText } from "../index.js";
import { a1111Info, jobTimestamp } from "./a1111-info.js";
import { parseA1111Img2Img } from "./a1111-img2img.js";
import { embeddingItems, loraItems, refreshLoras } from "./a1111-networks.js";
import type { A1111Request } from "./a1111-request.js";
import { parseA1111Txt2Img } from "./a1111-txt2img.js";
import { listCheckpoints, resolveCheckpoint, titleOf } from "./checkpoints.js";
import type { Route, RouteRequest, ServerContext } from "./context.js";
import { HttpError, asObject, invalid } from "./http.js";
import { latentModeItems, upscalerItems } from "./hires.js";
import type { Job } from "./job.js";
import type { Limits } from "./params.js";
import { NO_MODEL_DEFAULTS } from "./protocol.js";

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");

/** Loads a checkpoint through the queue (after the jobs ahead of it); 422 naming `field` if it is unknown or fails. */
export async function switchModel(ctx: ServerContext, value: string, field: string): Promise<void> {
  const list = await listCheckpoints(ctx.opts.modelsDir, ctx.queue.model);
  const source = resolveCheckpoint(value, list);
  if (source === undefined) throw invalid(field, `model ${JSON.stringify(value)} not found; use a title from /sdapi/v1/sd-models or a path to a checkpoint`);
  const current = ctx.queue.model;
  if (current !== undefined && (source === current.source || (source === "default" && current.name === "default"))) return;
  const job = await ctx.queue.submit({ kind: "load", source }).finished;
  if (job.state === "error" && job.error) throw new HttpError(job.error.status, job.error.code, job.error.message, field);
  ctx.log(`model ${job.loaded?.name ?? source} loaded`);
}

type Parse = (body: Readonly<Record<string, unknown>>, size: { width: number; height: number; cfgScale?: number }, limits: Limits) => A1111Request;

/** POST txt2img / img2img: parse, queue, wait, answer `{ images, parameters, info }`. */
async function generate(ctx: ServerContext, r: RouteRequest, parse: Parse): Promise<unknown> {
  const body = asObject(await r.body());
  await ctx.queue.modelSettled();
  const size = ctx.queue.model?.defaults ?? NO_MODEL_DEFAULTS;
  const req = parse(body, size, ctx.opts.limits);
  if (req.checkpoint !== undefined) await switchModel(ctx, req.checkpoint, "override_settings.sd_model_checkpoint");
  const job = ctx.queue.submit({ kind: "generate", runs: req.runs, save: req.save });
  // A client gone before its job started wants nothing: drop it from the queue.
  r.res.on("close", () => {
    if (job.state === "queued") ctx.queue.cancel(job.id);
  });
  await job.finished;
  if (job.state === "error" && job.error) throw job.error;
  const images = req.send ? job.results.flatMap((res) => res.images.map(b64)) : [];
  const info = a1111Info(job, req, `sdts ${VERSION}`, ctx.queue.model?.inpainting ?? false);
  return { images, parameters: req.echo, info: JSON.stringify(info) };
}

function stateOf(ctx: ServerContext, running: Job | undefined): Record<string, unknown> {
  const last = ctx.queue.lastStarted;
  const runs = running?.spec.kind === "generate" ? running.spec.runs : [];
  const kind = runs[0]?.kind === "txt2img" ? "txt2img" : "img2img";
  // A1111 counts each hires pass as a job of its own (job_count doubles).
  const passes = running?.passes ?? 1;
  return {
    skipped: last?.skipped ?? false,
    interrupted: last?.interrupted ?? false,
    stopping_generation: false,
    job: running ? `${kind}(${running.id})` : "",
    job_count: runs.length * passes,
    job_timestamp: last ? jobTimestamp(last.startedAt) : "0",
    job_no: running ? running.runIndex * passes + running.pass : 0,
    sampling_step: running?.passStep ?? 0,
    sampling_steps: running?.passTotal ?? 0,
  };
}

function progress(ctx: ServerContext, r: RouteRequest): unknown {
  const cur = ctx.queue.current;
  const running = cur?.spec.kind === "generate" ? cur : undefined;
  const state = stateOf(ctx, running);
  if (running === undefined || running.spec.kind !== "generate") return { progress: 0, eta_relative: 0, state, current_image: null, textinfo: null };
  const count = running.spec.runs.length * running.passes;
  // A1111's estimate: done fraction (+0.01 so it is never 0), ETA by linear extrapolation.
  let done = 0.01 + (running.runIndex * running.passes + running.pass) / count;
  if (running.passTotal > 0) done += (running.passStep / running.passTotal) / count;
  const elapsed = (Date.now() - running.startedAt) / 1000;
  const skip = ["true", "1"].includes((r.url.searchParams.get("skip_current_image") ?? "").toLowerCase());
  return {
    progress: Math.min(done, 1),
    eta_relative: elapsed / done - elapsed,
    state,
    current_image: !skip && running.preview ? b64(running.preview) : null,
    textinfo: `Sampling step ${running.passStep}/${running.passTotal}`,
  };
}

async function pngInfo(r: RouteRequest): Promise<unknown> {
  const body = asObject(await r.body());
  const raw = body["image"];
  if (typeof raw !== "string" || raw.trim() === "") throw invalid("image", "must be a base64 PNG string");
  const data = raw.trim().replace(/^data:[^,]*,/, "");
  let text: Record<string, string>;
  try {
    text = readPngText(new Uint8Array(Buffer.from(data, "base64")));
  } catch (e) {
    throw invalid("image", `not a base64 PNG (${e instanceof Error ? e.message : String(e)})`);
  }
  const { parameters: info = "", ...items } = text;
  const parsed = parseInfotext(info);
  const parameters: Record<string, string> = { Prompt: parsed.prompt, "Negative prompt": parsed.negativePrompt, ...parsed.params };
  const size = /^(\d+)x(\d+)$/.exec(parsed.params["Size"] ?? "");
  if (size) Object.assign(parameters, { "Size-1": size[1], "Size-2": size[2] });
  return { info, items, parameters };
}

async function getOptions(ctx: ServerContext): Promise<unknown> {
  const m = ctx.queue.model;
  const title = m ? titleOf(m, await listCheckpoints(ctx.opts.modelsDir, m)) : null;
  return {
    sd_model_checkpoint: title,
    sd_checkpoint_hash: null,
    sd_vae: "Automatic",
    samples_save: true,
    samples_format: "png",
    outdir_samples: ctx.opts.outputs,
    outdir_txt2img_samples: ctx.opts.outputs,
    outdir_img2img_samples: ctx.opts.outputs,
    show_progress_every_n_steps: ctx.queue.opts.previewEvery,
    live_previews_enable: ctx.queue.opts.previewEvery !== 0,
    CLIP_stop_at_last_layers: 1,
    eta_noise_seed_delta: 0,
    ...Object.fromEntries(ctx.options),
  };
}

async function setOptions(ctx: ServerContext, r: RouteRequest): Promise<unknown> {
  const body = asObject(await r.body());
  const ckpt = body["sd_model_checkpoint"];
  if (ckpt !== undefined && ckpt !== null && typeof ckpt !== "string") throw invalid("sd_model_checkpoint", "must be a string");
  const every = body["show_progress_every_n_steps"];
  if (every !== undefined && every !== null && (typeof every !== "number" || !Number.isInteger(every) || every < -1)) {
    throw invalid("show_progress_every_n_steps", `must be a whole number ≥ -1 (got ${JSON.stringify(every)})`);
  }
  if (typeof ckpt === "string") await switchModel(ctx, ckpt, "sd_model_checkpoint");
  if (typeof every === "number") ctx.queue.opts.previewEvery = every;
  for (const [k, v] of Object.entries(body)) if (k !== "sd_model_checkpoint" && k !== "show_progress_every_n_steps") ctx.options.set(k, v);
  return null;
}

function cmdFlags(ctx: ServerContext): unknown {
  const o = ctx.opts;
  return {
    api: true,
    nowebui: false,
    listen: !["127.0.0.1", "::1", "localhost"].includes(o.host),
    server_name: o.host,
    port: o.port,
    api_auth: null,
    ckpt: o.model === "default" ? null : o.model,
    ckpt_dir: o.modelsDir ?? null,
    outdir_samples: o.outputs,
    data_dir: process.cwd(),
  };
}

const get = (path: string, handle: (ctx: ServerContext, r: RouteRequest) => unknown): Route => ({
  method: "GET",
  path: new RegExp(`^/sdapi/v1/${path}$`),
  handle: async (ctx, r) => handle(ctx, r),
});
const post = (path: string, handle: (ctx: ServerContext, r: RouteRequest) => unknown): Route => ({
  method: "POST",
  path: new RegExp(`^/sdapi/v1/${path}$`),
  handle: async (ctx, r) => handle(ctx, r),
});

/** The /sdapi/v1 routes. */
export const a1111Routes: readonly Route[] = [
  post("txt2img", (ctx, r) => generate(ctx, r, parseA1111Txt2Img)),
  post("img2img", (ctx, r) => generate(ctx, r, parseA1111Img2Img)),
  get("progress", progress),
  post("interrupt", (ctx) => (ctx.queue.interrupt(), {})),
  post("skip", (ctx) => (ctx.queue.skip(), null)),
  get("samplers", () => SAMPLERS.map((s) => ({ name: s.name, aliases: [...s.aliases], options: { ...s.options } }))),
  get("schedulers", () => [
    { name: "automatic", label: "Automatic", aliases: null, default_rho: -1, need_inner_model: false },
    { name: "karras", label: "Karras", aliases: null, default_rho: 7, need_inner_model: false },
  ]),
  get("sd-models", (ctx) => listCheckpoints(ctx.opts.modelsDir, ctx.queue.model)),
  post("refresh-checkpoints", () => null),
  get("options", getOptions),
  post("options", setOptions),
  get("cmd-flags", cmdFlags),
  post("png-info", (_ctx, r) => pngInfo(r)),
  get("scripts", () => ({ txt2img: [], img2img: [] })),
  get("script-info", () => []),
  get("loras", loraItems),
  post("refresh-loras", refreshLoras),
  get("embeddings", embeddingItems),
  get("upscalers", upscalerItems),
  get("latent-upscale-modes", latentModeItems),
  get("hypernetworks", () => []),
  get("face-restorers", () => []),
  get("realesrgan-models", () => []),
  get("prompt-styles", () => []),
  get("sd-vae", () => []),
  post("refresh-vae", () => null),
  get("extensions", () => []),
  get("memory", () => {
    const total = totalmem();
    const free = freemem();
    return { ram: { free, used: total - free, total }, cuda: { error: "sdts runs on onnxruntime; it does not report GPU memory" } };
  }),
];
