// @ts-check
/** The native sdts HTTP API (`/api/*`), as the web UI uses it. */

/**
 * @typedef {{ name: string, aliases: string[] }} SamplerEntry
 * @typedef {{ width: number, height: number, sampler: string, steps: number, cfgScale: number }} Defaults
 * @typedef {{ maxWidth: number, maxHeight: number, maxSteps: number, maxBatch: number }} Limits
 * @typedef {{ strength: number, maskBlur: number, fill: string, invertMask: boolean, onlyMasked: boolean,
 *   onlyMaskedPadding: number, resizeMode: string, fills: string[], resizeModes: string[] }} EditInfo
 * @typedef {{ scale: number, upscaler: string, steps: number, denoisingStrength: number, upscalers: string[] }} HiresInfo
 * @typedef {{ model: string | null, modelError?: string | null, modelInpainting?: boolean, samplers: SamplerEntry[],
 *   defaults: Defaults, limits: Limits, edit?: EditInfo, hires?: HiresInfo }} ServerInfo
 * @typedef {{ prompt: string, negativePrompt: string, steps: number, cfgScale: number, sampler: string,
 *   seed: number, width: number, height: number, batchSize: number }} GenParams
 * @typedef {{ strength: number, resizeMode: string, maskBlur: number, fill: string, onlyMasked: boolean,
 *   onlyMaskedPadding: number, outpaint?: { left: number, right: number, top: number, bottom: number } }} EditFields
 * @typedef {{ scale: number, upscaler: string, steps: number, denoisingStrength: number }} HiresFields
 * @typedef {{ hires?: HiresFields } | (EditFields & { initImage: string, mask?: string })} ModeFields
 * @typedef {GenParams & { explain: boolean } & ModeFields} JobParams
 * @typedef {{ url: string, seed: number, infotext: string }} JobImage
 * @typedef {{ token: string, index: number, width: number, height: number, data: number[] }} Heatmap
 * @typedef {{ tokens: string[], heatmaps: Heatmap[], context?: "tokens" | "pooled", filmstrip: string[] }} Explain
 * @typedef {{ images: JobImage[], info: Record<string, unknown>, explain?: Explain }} DoneEvent
 * @typedef {{ url: string, file?: string, seed: number, infotext: string, params: Partial<GenParams> & { denoisingStrength?: number },
 *   createdAt: string }} GalleryItem
 * @typedef {{ items: GalleryItem[], next?: string | null }} GalleryPage
 */

/** An error the server answered with (or a failure to reach it), ready to show to a person. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number, code?: string, field?: string, detail?: unknown, retryAfter?: number | null }} [extra]
   */
  constructor(message, extra = {}) {
    super(message);
    this.name = "ApiError";
    this.status = extra.status ?? 0;
    this.code = extra.code ?? "unknown";
    /** The request field a 422 is about. */
    this.field = extra.field;
    this.detail = extra.detail;
    this.retryAfter = extra.retryAfter ?? null;
  }
}

/**
 * Turns a non-2xx response into an ApiError, reading `{ error: { code, message }, detail }`.
 * @param {Response} res
 * @returns {Promise<ApiError>}
 */
async function errorFrom(res) {
  const retry = Number(res.headers.get("Retry-After"));
  const retryAfter = Number.isFinite(retry) && retry > 0 ? retry : null;
  let code = `http_${res.status}`;
  let message = `${res.status} ${res.statusText}`.trim();
  let detail;
  let field;
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text);
    const err = body?.error;
    if (typeof err === "string") message = err;
    else if (err && typeof err.message === "string") {
      message = err.message;
      if (typeof err.code === "string") code = err.code;
      if (typeof err.field === "string") field = err.field;
    } else if (typeof body?.detail === "string") message = body.detail;
    detail = body?.detail;
  } catch {
    if (text.trim() !== "" && text.length < 400) message = text.trim();
  }
  return new ApiError(message, { status: res.status, code, field, detail, retryAfter });
}

/**
 * fetch() that throws ApiError on network failure or a non-2xx answer, and parses JSON.
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {Promise<any>}
 */
async function request(url, init) {
  let res;
  try {
    res = await fetch(url, { ...init, headers: { Accept: "application/json", ...init?.headers } });
  } catch {
    throw new ApiError("Could not reach the sdts server. Check that `sdts serve` is still running.", { code: "network" });
  }
  if (!res.ok) throw await errorFrom(res);
  if (res.status === 204) return null;
  return res.json();
}

/** @returns {Promise<ServerInfo>} the model, samplers, defaults and limits. */
export function getInfo() {
  return request("/api/info");
}

/**
 * Queues a generation: text to image (with the hires fix), or image to image when `initImage` is set.
 * @param {JobParams} params
 * @returns {Promise<{ id: string, position: number }>}
 */
export function submitJob(params) {
  return request("/api/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(params),
  });
}

/**
 * Asks the server to stop a job.
 * @param {string} id
 */
export async function cancelJob(id) {
  await request(`/api/jobs/${encodeURIComponent(id)}`, { method: "DELETE" });
}

/**
 * One page of past images, newest first; `before` is the `next` cursor of the page before.
 * @param {{ limit?: number, before?: string }} [page]
 * @returns {Promise<GalleryPage>}
 */
export function getGallery(page = {}) {
  const q = new URLSearchParams();
  if (page.limit !== undefined) q.set("limit", String(page.limit));
  if (page.before !== undefined) q.set("before", String(page.before));
  const qs = q.toString();
  return request(`/api/gallery${qs ? `?${qs}` : ""}`);
}

/**
 * @typedef {object} JobHandlers
 * @property {(d: { position: number }) => void} queued
 * @property {(d: { total: number }) => void} start
 * @property {(d: { step: number, total: number, preview?: string }) => void} progress
 * @property {(d: DoneEvent) => void} done
 * @property {(e: ApiError) => void} failed   a server `error` event, or the stream was lost
 * @property {() => void} cancelled
 */

/**
 * Follows a job's server-sent events. Closing the returned stream cancels the job on the server.
 * @param {string} id
 * @param {JobHandlers} on
 * @returns {{ close(): void }}
 */
export function streamJob(id, on) {
  const es = new EventSource(`/api/jobs/${encodeURIComponent(id)}/events`);
  let finished = false;
  const finish = () => {
    finished = true;
    es.close();
  };
  /** @param {string} name @param {(data: any) => void} fn */
  const listen = (name, fn) =>
    es.addEventListener(name, (ev) => {
      if (finished) return;
      const data = parseData(/** @type {MessageEvent} */ (ev).data);
      if (data === undefined) return;
      fn(data);
    });
  listen("queued", (d) => on.queued(d));
  listen("start", (d) => on.start(d));
  listen("progress", (d) => on.progress(d));
  listen("done", (d) => {
    finish();
    on.done(d);
  });
  listen("cancelled", () => {
    finish();
    on.cancelled();
  });
  // "error" is both the server's named event (a MessageEvent with data) and EventSource's own
  // connection-failure event (no data). Without data the stream is gone: EventSource would
  // reconnect on its own, but a reconnect cannot resume a job, so stop and say so.
  es.addEventListener("error", (ev) => {
    if (finished) return;
    const data = ev instanceof MessageEvent ? parseData(ev.data) : undefined;
    finish();
    if (data && typeof data.message === "string") on.failed(new ApiError(data.message, { code: data.code ?? "error" }));
    else on.failed(new ApiError("Lost the connection to the server while the image was generating.", { code: "network" }));
  });
  return { close: finish };
}

/** @param {unknown} raw */
function parseData(raw) {
  if (typeof raw !== "string" || raw === "") return {};
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
