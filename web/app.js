// @ts-check
/** sdts web UI: wires the form, the stage, the explain view and the gallery to the server's jobs. */
import * as api from "./api.js";
import { byId, formatDuration, modKeyLabel } from "./dom.js";
import { ExplainView } from "./explain.js";
import { SettingsForm } from "./form.js";
import { Gallery } from "./gallery.js";
import { ImageMode } from "./image-mode.js";
import { ProgressView } from "./progress.js";
import { Stage } from "./stage.js";

/** @typedef {import("./api.js").JobParams} JobParams */

/**
 * The job in flight, if any; `before` is the input of an image job, for the before / after view.
 * @typedef {{ id: string | null, stream: { close(): void } | null, cancelRequested: boolean,
 *   params: JobParams, before: import("./compare.js").BeforeImage | null, t0: number, step: number, total: number }} Job
 */

/** How long to wait for the server's `cancelled` event before dropping the stream (which also cancels). */
const CANCEL_GRACE_MS = 4000;

const form = new SettingsForm();
const stage = new Stage();
const progress = new ProgressView();
const explain = new ExplainView(stage);
const imageMode = new ImageMode(form, { onError: (m) => showError(new api.ApiError(m, { code: "input" }), "Could not use that image") });
const gallery = new Gallery({
  onUse: (p) => {
    form.write(p);
    form.prompt.focus();
    window.scrollTo({ top: 0, behavior: "smooth" });
    setStatus("ready", "Settings loaded");
  },
  onUseImage: (url) => void useImage(url),
  onError: (e) => showError(e),
});
stage.onTab = (tab) => explain.onTab(tab);
stage.onUseImage = (url) => void useImage(url);

const generateBtn = byId("generate", HTMLButtonElement);
const cancelBtn = byId("cancel", HTMLButtonElement);
const statusEl = byId("status");
const modelEl = byId("model-name");
const errorBox = byId("error");

/** @type {import("./api.js").ServerInfo | null} */
let info = null;
/** @type {Job | null} */
let job = null;

// ---------- status and errors ----------

/** @param {"idle" | "ready" | "busy" | "error"} state @param {string} text */
function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
}

/**
 * Shows an error in the banner: the server's own message, under a title that says what failed.
 * @param {unknown} e
 * @param {string} [title]
 */
function showError(e, title) {
  const err = e instanceof api.ApiError ? e : new api.ApiError(e instanceof Error ? e.message : String(e));
  byId("error-title").textContent = title ?? titleFor(err);
  let message = sentence(err.message);
  if (err.retryAfter !== null && !/retry|try again/i.test(message)) message += ` Try again in ${formatDuration(err.retryAfter)}.`;
  byId("error-message").textContent = message;
  errorBox.dataset.code = err.code;
  errorBox.hidden = false;
}

/** Server messages are lower-case clauses ("width: must be …"); shown alone they read better as a sentence. @param {string} text */
function sentence(text) {
  const t = text.trim();
  if (t === "") return t;
  const capital = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?)]$/.test(capital) ? capital : `${capital}.`;
}

/** @param {api.ApiError} err */
function titleFor(err) {
  if (err.code === "network") return "Can't reach the server";
  if (err.code === "no_model") return "No model loaded";
  if (err.code === "queue_full") return "The server is busy";
  if (err.code === "shutting_down") return "The server is shutting down";
  if (err.status === 422 || err.status === 400) return "The server did not accept these settings";
  if (err.status === 401 || err.status === 403) return "Not authorised";
  if (err.status === 503) return "The server can't take this now";
  if (err.status >= 500) return "The server ran into a problem";
  return "Something went wrong";
}

function clearError() {
  errorBox.hidden = true;
}

/**
 * Points at the field a 422 names: `detail.field`, a FastAPI-style `detail[0].loc`, or the
 * message's first word ("width must be a multiple of 8"). A1111's snake_case names map to ours.
 * @param {api.ApiError} err
 */
function markFieldFrom(err) {
  /** @type {any} - detail's shape differs between servers (an object, FastAPI's list, a string) */
  const d = err.detail;
  const candidates = [err.field, d?.field, d?.param, Array.isArray(d) ? d[0]?.loc?.at?.(-1) : undefined, /^(\w+)/.exec(err.message)?.[1]];
  /** @type {Record<string, string>} */
  const alias = { sampler_name: "sampler", cfg_scale: "cfgScale", negative_prompt: "negativePrompt", batch_size: "batchSize" };
  for (const c of candidates) {
    if (typeof c !== "string") continue;
    if (c === "initImage" || c === "mask" || c === "image") return imageMode.editor.focus();
    const name = alias[c] ?? c.replace(/_(\w)/g, (_, ch) => ch.toUpperCase());
    if (form.markInvalid(name)) return;
  }
}

// ---------- jobs ----------

/** @param {boolean} on */
function setRunning(on) {
  generateBtn.disabled = on || info === null;
  cancelBtn.disabled = !on;
  form.setBusy(on);
}

/** Reads the form, submits a job and follows it; a no-op while one is running. */
async function generate() {
  if (job || !info) return;
  const r = form.read();
  const m = "error" in r ? r : imageMode.request();
  if ("error" in r || "error" in m) {
    const bad = "error" in r ? r : /** @type {{ error: string, field: string }} */ (m);
    markFieldFrom(new api.ApiError(bad.error, { code: "input", field: bad.field }));
    showError(new api.ApiError(bad.error, { code: "input" }), "Check the settings");
    return;
  }
  clearError();
  /** @type {JobParams} */
  const params = { ...r.params, explain: r.params.explain && m.explainAllowed, ...m.fields };
  /** @type {Job} */
  const j = { id: null, stream: null, cancelRequested: false, params, before: m.before, t0: performance.now(), step: 0, total: params.steps };
  job = j;
  setRunning(true);
  progress.queued(null);
  setStatus("busy", "Sending…");
  let sub;
  try {
    sub = await api.submitJob(params);
  } catch (e) {
    endJob();
    progress.hide();
    setStatus("error", "Not started");
    showError(e);
    if (e instanceof api.ApiError && (e.status === 422 || e.status === 400)) markFieldFrom(e);
    return;
  }
  j.id = sub.id;
  // Only now clear the last result: a refused request leaves it (and its explain view) in place.
  stage.beginJob();
  stage.fitTo(params.width, params.height);
  if (j.cancelRequested) {
    api.cancelJob(sub.id).catch(() => {});
    return finishCancelled(j);
  }
  progress.queued(sub.position);
  j.stream = follow(j, sub.id);
}

/**
 * Follows a submitted job's events into the progress bar, the preview and the results.
 * @param {Job} j
 * @param {string} id
 */
function follow(j, id) {
  return api.streamJob(id, {
    queued: (d) => {
      progress.queued(d.position);
      setStatus("busy", d.position > 0 ? `Queued · ${d.position} ahead` : "Starting…");
    },
    start: (d) => {
      j.total = d.total;
      progress.start(d.total);
      setStatus("busy", "Generating");
    },
    progress: (d) => {
      j.step = d.step;
      j.total = d.total;
      progress.step(d.step, d.total);
      if (d.preview) stage.showPreview(d.preview);
      if (!j.cancelRequested) setStatus("busy", `Step ${d.step} / ${d.total}`);
    },
    done: (d) => finishDone(j, d),
    failed: (e) => finishFailed(j, e),
    cancelled: () => finishCancelled(j),
  });
}

/** @param {Job} j @param {import("./api.js").DoneEvent} d */
function finishDone(j, d) {
  if (job !== j) return;
  endJob();
  const images = d.images ?? [];
  progress.finish(`Done in ${formatDuration((performance.now() - j.t0) / 1000)}`);
  stage.showResults(images, j.params.prompt, Boolean(d.explain), j.before);
  const first = images[0];
  if (d.explain && first) explain.load(d.explain, first.url);
  if (first) form.setLastSeed(first.seed);
  setStatus("ready", images.length > 1 ? `${images.length} images` : "Done");
  void gallery.refresh();
}

/** @param {Job} j @param {api.ApiError} e */
function finishFailed(j, e) {
  if (job !== j) return;
  endJob();
  stage.endJob();
  progress.finish(j.step > 0 ? `Stopped at step ${j.step} / ${j.total}` : "Not generated");
  setStatus("error", "Failed");
  showError(e, "Generation failed");
}

/** @param {Job} j */
function finishCancelled(j) {
  if (job !== j) return;
  endJob();
  stage.endJob();
  progress.finish(j.step > 0 ? `Cancelled at step ${j.step} / ${j.total}` : "Cancelled");
  setStatus("idle", "Cancelled");
}

function endJob() {
  job = null;
  setRunning(false);
}

/** "Use this image" on a result or a gallery item: it becomes the input of image to image. @param {string} url */
async function useImage(url) {
  await imageMode.useImage(url);
  if (imageMode.editor.image) setStatus("ready", "Image loaded");
}

/** Asks the server to stop the running job. */
async function cancel() {
  const j = job;
  if (!j || j.cancelRequested) return;
  j.cancelRequested = true;
  cancelBtn.disabled = true;
  setStatus("busy", "Cancelling…");
  if (j.id === null) return; // generate() cancels as soon as the server names the job
  // DELETE, then wait for the stream's `cancelled`; if it doesn't come, closing the stream cancels too.
  await api.cancelJob(j.id).catch(() => {});
  setTimeout(() => {
    if (job !== j) return;
    j.stream?.close();
    finishCancelled(j);
  }, CANCEL_GRACE_MS);
}

// ---------- start-up and shortcuts ----------

/** Loads the model info; while the server can't be reached or the model is loading, asks again every few seconds. */
async function connect() {
  /** @type {import("./api.js").ServerInfo} */
  let got;
  try {
    got = await api.getInfo();
  } catch (e) {
    setStatus("error", "Offline");
    modelEl.textContent = "no connection";
    showError(e, e instanceof api.ApiError && e.code === "network" ? undefined : "Could not load the model info");
    setTimeout(() => void connect(), 5000);
    return;
  }
  const first = info === null;
  if (first) {
    form.applyInfo(got);
    imageMode.applyInfo(got);
  }
  info = got;
  setRunning(job !== null);
  if (got.model === null && !got.modelError) {
    // The server loads its model in the background; generating now would just wait for it.
    modelEl.textContent = "loading model…";
    setStatus("busy", "Loading model");
    setTimeout(() => void connect(), 1500);
  } else if (got.model === null) {
    modelEl.textContent = "no model";
    setStatus("error", "No model");
    showError(new api.ApiError(got.modelError ?? "The server has no model loaded."), "No model loaded");
  } else {
    if (errorBox.dataset.code === "network") clearError();
    modelEl.textContent = got.model;
    modelEl.title = `Model: ${got.model}`;
    setStatus("ready", "Ready");
  }
  if (first) void gallery.refresh();
}

form.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  void generate();
});
cancelBtn.addEventListener("click", () => void cancel());
byId("error-close").addEventListener("click", clearError);
document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "Enter") {
    ev.preventDefault();
    void generate();
  } else if (ev.key === "Escape" && job && !(ev.target instanceof Element && ev.target.closest("dialog"))) {
    void cancel();
  }
});
byId("shortcut").textContent = `${modKeyLabel()} ↵`;
generateBtn.setAttribute("aria-keyshortcuts", "Control+Enter Meta+Enter");
generateBtn.title = `Generate (${modKeyLabel()}+Enter)`;
cancelBtn.setAttribute("aria-keyshortcuts", "Escape");
cancelBtn.title = "Cancel (Esc)";
setRunning(false);
void connect();
