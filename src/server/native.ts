/**
 * The native API the web UI uses: submit a job, follow it as server-sent events (with a
 * preview every few steps), cancel it, browse past images. A client that drops its event
 * stream cancels its job when it was the job's only watcher. Bodies are camelCase and strict
 * about types (no numbers as strings); unknown fields are ignored. See README.md here.
 */
import { join } from "node:path";
import { HIRES_UPSCALERS, SAMPLERS, VERSION } from "../index.js";
import { HANDLED, Reply, type Route, type RouteRequest, type ServerContext } from "./context.js";
import { HttpError, asObject, invalid } from "./http.js";
import type { Job, JobEvent } from "./job.js";
import { isOutputName } from "./outputs.js";
import { NO_MODEL_DEFAULTS } from "./protocol.js";
import { EDIT_DEFAULTS, FILLS, HIRES_DEFAULTS, NATIVE_DEFAULTS, RESIZE_MODES, parseJob } from "./native-job.js";
import { sendFile } from "./static.js";

export { NATIVE_DEFAULTS } from "./native-job.js";

const dataUrl = (png: Uint8Array): string => `data:image/png;base64,${Buffer.from(png.buffer, png.byteOffset, png.byteLength).toString("base64")}`;

function jobOf(ctx: ServerContext, id: string): Job {
  const job = ctx.queue.get(id);
  if (job === undefined || job.spec.kind !== "generate") throw new HttpError(404, "not_found", `no job ${id} (finished jobs are kept for a while, then forgotten)`);
  return job;
}

/** The `done` event: saved images, the parameters used, and explain data if asked for and available. */
function donePayload(job: Job): Record<string, unknown> {
  const res = job.results[0];
  const images = job.saved.map((s) => ({ url: s.url, seed: s.seed, infotext: s.infotext }));
  const ex = res?.explain;
  const explain = ex && {
    tokens: ex.tokens,
    context: ex.context,
    heatmaps: ex.heatmaps.map((h) => ({ token: h.token, index: h.index, width: h.width, height: h.height, data: Array.from(h.data, (v) => Math.round(v * 1e4) / 1e4) })),
    filmstrip: ex.filmstrip.map((_, i) => `/api/jobs/${job.id}/filmstrip/${i}`),
  };
  return { images, info: res?.info ?? null, ...(explain ? { explain } : {}) };
}

/** The SSE event name and data for a job event. */
function sseEvent(job: Job, e: JobEvent): [string, unknown] {
  switch (e.type) {
    case "queued":
      return ["queued", { position: e.position }];
    case "start":
      return ["start", { total: e.total }];
    case "progress":
      return ["progress", { step: e.step, total: e.total, ...(e.preview ? { preview: dataUrl(e.preview) } : {}) }];
    case "done":
      return ["done", donePayload(job)];
    case "error":
      return ["error", { code: e.error.code, message: e.error.message }];
    case "cancelled":
      return ["cancelled", {}];
  }
}

/** What a late subscriber missed: the job's state so far as events. */
function replay(ctx: ServerContext, job: Job): JobEvent[] {
  if (job.state === "queued") return [{ type: "queued", position: ctx.queue.position(job) }];
  if (job.state === "running") {
    const first = job.spec.kind === "generate" ? (job.spec.runs[0]?.steps ?? 0) : 0;
    const out: JobEvent[] = [{ type: "start", total: first }];
    if (job.step > 0) out.push({ type: "progress", step: job.step, total: job.total, ...(job.preview ? { preview: job.preview } : {}) });
    return out;
  }
  if (job.state === "done") return [{ type: "done" }];
  if (job.state === "error" && job.error) return [{ type: "error", error: job.error }];
  return [{ type: "cancelled" }];
}

function events(ctx: ServerContext, r: RouteRequest, job: Job): symbol {
  const { res } = r;
  res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache, no-transform", connection: "keep-alive", "x-accel-buffering": "no" });
  const write = (e: JobEvent): void => {
    const [name, data] = sseEvent(job, e);
    res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    if (e.type === "done" || e.type === "error" || e.type === "cancelled") res.end();
  };
  for (const e of replay(ctx, job)) write(e);
  if (job.terminal) return HANDLED;
  job.listeners++;
  const unsubscribe = job.subscribe(write);
  const ping = setInterval(() => res.write(": ping\n\n"), 15000);
  res.on("close", () => {
    clearInterval(ping);
    unsubscribe();
    job.listeners--;
    if (job.listeners === 0 && !job.terminal) {
      ctx.log(`job ${job.id}: event stream closed, cancelling`);
      ctx.queue.cancel(job.id);
    }
  });
  return HANDLED;
}

function info(ctx: ServerContext): unknown {
  const m = ctx.queue.model;
  const d = m?.defaults ?? NO_MODEL_DEFAULTS;
  const l = ctx.opts.limits;
  return {
    model: m?.name ?? null,
    modelFamily: m?.family ?? null,
    modelError: m === undefined ? ctx.queue.modelError : null,
    modelInpainting: m?.inpainting ?? false,
    samplers: SAMPLERS.map((s) => ({ name: s.name, aliases: [...s.aliases] })),
    defaults: { prompt: "", negativePrompt: "", steps: NATIVE_DEFAULTS.steps, cfgScale: d.cfgScale ?? NATIVE_DEFAULTS.cfgScale, sampler: d.sampler, seed: -1, width: d.width, height: d.height, batchSize: 1 },
    edit: { ...EDIT_DEFAULTS, fills: [...FILLS], resizeModes: [...RESIZE_MODES] },
    hires: { ...HIRES_DEFAULTS, upscalers: [...HIRES_UPSCALERS] },
    // Names for `<lora:name:1>` / `loras: [{ name }]` and for embeddings in prompts; POST /sdapi/v1/refresh-loras re-lists.
    loras: (m?.loras ?? []).map((x) => x.name),
    embeddings: (m?.embeddings.loaded ?? []).map((x) => x.name),
    limits: { maxWidth: l.maxWidth, maxHeight: l.maxHeight, maxSteps: l.maxSteps, maxBatch: l.maxBatch, queueLimit: ctx.opts.queueLimit },
    previewEvery: ctx.queue.opts.previewEvery,
    queue: { running: ctx.queue.current !== undefined, waiting: ctx.queue.waitingCount },
    version: VERSION,
  };
}

async function gallery(ctx: ServerContext, r: RouteRequest): Promise<unknown> {
  const q = r.url.searchParams;
  const limitText = q.get("limit");
  const limit = limitText === null ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw invalid("limit", `must be a whole number from 1 to 500 (got ${limitText})`);
  const before = q.get("before") ?? undefined;
  if (before !== undefined && !isOutputName(before)) throw invalid("before", `must be an image file name from an earlier page, like 00012-1234.png (got ${before})`);
  return ctx.outputs.list(limit, before);
}

/** The /api routes and /outputs files. */
export const nativeRoutes: readonly Route[] = [
  {
    method: "POST",
    path: /^\/api\/jobs$/,
    handle: async (ctx, r) => {
      const body = asObject(await r.body());
      await ctx.queue.modelSettled();
      const params = parseJob(body, ctx);
      const job = ctx.queue.submit({ kind: "generate", runs: [params], save: true });
      return new Reply(202, { id: job.id, position: ctx.queue.position(job) }, { location: `/api/jobs/${job.id}` });
    },
  },
  {
    method: "GET",
    path: /^\/api\/jobs\/([0-9a-f]+)$/,
    handle: async (ctx, r) => {
      const job = jobOf(ctx, r.params[0] ?? "");
      return { id: job.id, state: job.state, position: ctx.queue.position(job), step: job.step, total: job.total, ...(job.state === "done" ? donePayload(job) : {}), ...(job.error ? { error: { code: job.error.code, message: job.error.message } } : {}) };
    },
  },
  { method: "GET", path: /^\/api\/jobs\/([0-9a-f]+)\/events$/, handle: async (ctx, r) => events(ctx, r, jobOf(ctx, r.params[0] ?? "")) },
  {
    method: "DELETE",
    path: /^\/api\/jobs\/([0-9a-f]+)$/,
    handle: async (ctx, r) => {
      const job = ctx.queue.cancel(jobOf(ctx, r.params[0] ?? "").id);
      return { id: r.params[0], state: job?.state ?? "cancelled" };
    },
  },
  {
    method: "GET",
    path: /^\/api\/jobs\/([0-9a-f]+)\/filmstrip\/(\d+)$/,
    handle: async (ctx, r) => {
      const png = jobOf(ctx, r.params[0] ?? "").results[0]?.explain?.filmstrip[Number(r.params[1])];
      if (png === undefined) throw new HttpError(404, "not_found", "no such filmstrip frame");
      r.res.writeHead(200, { "content-type": "image/png", "content-length": png.byteLength, "cache-control": "private, max-age=3600" });
      r.res.end(png);
      return HANDLED;
    },
  },
  { method: "GET", path: /^\/api\/gallery$/, handle: (ctx, r) => gallery(ctx, r) },
  { method: "GET", path: /^\/api\/info$/, handle: async (ctx) => info(ctx) },
  {
    method: "GET",
    path: /^\/outputs\/([^/]+)$/,
    handle: async (ctx, r) => {
      const name = decodeURIComponent(r.params[0] ?? "");
      if (!isOutputName(name)) throw new HttpError(404, "not_found", `no such output: ${name}`);
      // Outputs are never overwritten, so a name always means the same bytes.
      return sendFile(r, join(ctx.outputs.dir, name), "image/png", "public, max-age=31536000, immutable");
    },
  },
];
