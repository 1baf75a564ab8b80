// @ts-check
/**
 * The two modes of the form, text to image and image to image: switching between them, the
 * input image (picker, drop, paste, "use this image"), the output size that follows it, and the
 * mode's own fields of a job request.
 */
import { byId, loadJson, saveJson } from "./dom.js";
import { EditSettings } from "./edit-settings.js";
import { ImageEditor } from "./editor.js";
import { HiresSettings } from "./hires.js";

/** @typedef {import("./api.js").ServerInfo} ServerInfo */
/** @typedef {import("./api.js").ModeFields} ModeFields */
/** @typedef {import("./compare.js").BeforeImage} BeforeImage */
/** @typedef {import("./form.js").SettingsForm} SettingsForm */
/** @typedef {"txt2img" | "img2img"} Mode */
/**
 * A mode's part of a request: its fields, the input to compare the result with, whether the
 * explain view may be asked for; or the first field that is not right.
 * @typedef {{ fields: ModeFields, before: BeforeImage | null, explainAllowed: boolean } | { error: string, field: string }} ModeRequest
 */

const MODE_KEY = "sdts.mode.v1";
/** How the input lies on the output for each resize mode, as CSS `object-fit` shows it. */
const FIT = /** @type {Record<string, BeforeImage["fit"]>} */ ({ "just-resize": "fill", "crop-and-resize": "cover", "resize-and-fill": "contain" });

/** Owns the mode switch and everything that only one mode has. */
export class ImageMode {
  /**
   * @param {SettingsForm} form
   * @param {{ onError: (message: string) => void }} hooks
   */
  constructor(form, hooks) {
    this.form = form;
    this.hooks = hooks;
    this.editor = new ImageEditor();
    this.editor.onError = hooks.onError;
    this.edit = new EditSettings();
    this.hires = new HiresSettings();
    /** @type {Mode} */
    this.mode = "txt2img";
    /** The size each mode had when it was left, so coming back restores it. @type {Partial<Record<Mode, [number, number]>>} */
    this.sizes = {};
    this.limits = { maxWidth: 1024, maxHeight: 1024 };
    this.editor.onImage = () => this.fitSize();
    this.edit.onGrow = () => this.fitSize();
    this.hires.onToggle = () => this.updateExplain();
    for (const radio of this.radios()) radio.addEventListener("change", () => radio.checked && this.setMode(/** @type {Mode} */ (radio.value)));
    for (const name of ["width", "height"]) form.numbers[name]?.addEventListener("input", () => this.hires.setBase(...this.size()));
    this.listenForFiles();
  }

  /** @returns {HTMLInputElement[]} */
  radios() {
    return [...this.form.form.querySelectorAll('input[name="mode"]')].filter((el) => el instanceof HTMLInputElement);
  }

  /** Choices, defaults and limits from `/api/info`, then the mode this browser was left in. @param {ServerInfo} info */
  applyInfo(info) {
    this.limits = info.limits;
    this.edit.applyInfo(info);
    this.hires.applyInfo(info);
    this.hires.setBase(...this.size());
    this.setMode(loadJson(MODE_KEY) === "img2img" ? "img2img" : "txt2img");
    this.updateExplain();
  }

  /** @returns {[number, number]} the form's width and height */
  size() {
    return [Number(this.form.numbers.width?.value), Number(this.form.numbers.height?.value)];
  }

  /** @param {Mode} mode */
  setMode(mode) {
    if (mode !== this.mode) {
      this.sizes[this.mode] = this.size();
      const back = this.sizes[mode];
      if (back) {
        this.form.setNumber("width", back[0]);
        this.form.setNumber("height", back[1]);
      }
    }
    this.mode = mode;
    for (const radio of this.radios()) radio.checked = radio.value === mode;
    for (const el of this.form.form.querySelectorAll("[data-mode]")) {
      if (el instanceof HTMLElement) el.hidden = el.dataset.mode !== mode;
    }
    this.fitSize();
    this.updateExplain();
    saveJson(MODE_KEY, mode);
  }

  /** In image mode the output size follows the input (plus the outpaint borders), scaled to fit the limits, in multiples of 8. */
  fitSize() {
    const im = this.editor.image;
    if (this.mode !== "img2img" || im === null) return;
    const g = this.edit.borders();
    const w = im.width + g.left + g.right;
    const h = im.height + g.top + g.bottom;
    const k = Math.min(1, this.limits.maxWidth / w, this.limits.maxHeight / h);
    this.form.setNumber("width", round8(w * k, this.limits.maxWidth));
    this.form.setNumber("height", round8(h * k, this.limits.maxHeight));
  }

  /** The explain view follows one text-to-image pass: not with an input image, not with the hires fix. */
  updateExplain() {
    const allowed = this.explainAllowed();
    const box = this.form.explain;
    box.disabled = !allowed;
    box.closest("label")?.classList.toggle("disabled", !allowed);
    box.closest("label")?.setAttribute("title", allowed ? "" : "Only for text to image without the hires fix");
  }

  explainAllowed() {
    return this.mode === "txt2img" && !this.hires.on;
  }

  /** @returns {ModeRequest} */
  request() {
    if (this.mode === "txt2img") {
      const r = this.hires.read();
      if ("error" in r) return r;
      return { fields: r.hires ? { hires: r.hires } : {}, before: null, explainAllowed: this.explainAllowed() };
    }
    const im = this.editor.image;
    if (im === null) return { error: "Add an input image first: drop it on the page, paste it, or choose a file.", field: "image" };
    const r = this.edit.read();
    if ("error" in r) return r;
    const mask = this.editor.maskDataUrl();
    const grow = r.fields.outpaint ?? { left: 0, right: 0, top: 0, bottom: 0 };
    const src = this.editor.snapshot(grow);
    // Only-masked inpainting pastes its crop back into the image at the image's own size.
    const fit = (mask !== null || r.fields.outpaint) && r.fields.onlyMasked ? "fill" : (FIT[r.fields.resizeMode] ?? "fill");
    return {
      fields: { initImage: im.dataUrl, ...r.fields, ...(mask !== null ? { mask } : {}) },
      before: src === null ? null : { src, fit },
      explainAllowed: false,
    };
  }

  /** "Use this image": fetches a result (a same-origin URL) and makes it the input. @param {string} url */
  async useImage(url) {
    let blob;
    try {
      const res = await fetch(url);
      if (!res.ok) throw new Error(`${res.status}`);
      blob = await res.blob();
    } catch {
      this.hooks.onError("Could not fetch that image from the server.");
      return;
    }
    this.setMode("img2img");
    if (await this.editor.load(blob, decodeURIComponent(url.split("/").pop() ?? "image"))) this.editor.focus();
  }

  /** A file dropped anywhere on the page, or pasted, becomes the input image; so does a result dragged onto the page. */
  listenForFiles() {
    let depth = 0;
    const droppable = (/** @type {DragEvent} */ ev) => [...(ev.dataTransfer?.types ?? [])].some((t) => t === "Files" || t === "text/uri-list");
    const setDragging = (/** @type {boolean} */ on) => document.body.classList.toggle("dragging-file", on);
    document.addEventListener("dragenter", (ev) => {
      if (!droppable(ev)) return;
      depth++;
      setDragging(true);
    });
    document.addEventListener("dragleave", () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) setDragging(false);
    });
    document.addEventListener("dragover", (ev) => {
      if (!droppable(ev)) return;
      ev.preventDefault();
      if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("drop", (ev) => {
      depth = 0;
      setDragging(false);
      if (!droppable(ev)) return;
      ev.preventDefault();
      void this.fromTransfer(ev.dataTransfer);
    });
    document.addEventListener("paste", (ev) => {
      const file = [...(ev.clipboardData?.files ?? [])].find((f) => f.type.startsWith("image/"));
      if (!file) return;
      ev.preventDefault();
      this.setMode("img2img");
      void this.editor.load(file, file.name || "pasted image");
    });
  }

  /** @param {DataTransfer | null} dt */
  async fromTransfer(dt) {
    const file = [...(dt?.files ?? [])][0];
    if (file) {
      this.setMode("img2img");
      await this.editor.load(file, file.name);
      return;
    }
    const uri = dt?.getData("text/uri-list").split(/\r?\n/).find((l) => l !== "" && !l.startsWith("#"));
    if (!uri) return;
    const url = new URL(uri, location.href);
    // Only the server's own images: nothing is fetched from elsewhere.
    if (url.origin === location.origin) await this.useImage(url.pathname + url.search);
    else this.hooks.onError("Only images from this server can be dropped by address; save the image and drop the file instead.");
  }
}

/** @param {number} v @param {number} max */
function round8(v, max) {
  return Math.max(8, Math.min(Math.floor(max / 8) * 8, Math.round(v / 8) * 8));
}
