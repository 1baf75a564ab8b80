// @ts-check
/** The input image of image-to-image: file picker, drop and paste, the picture on a canvas with the mask brush over it. */
import { byId } from "./dom.js";
import { MaskBrush } from "./mask-brush.js";

/** Longest side the editor keeps; a bigger photo is scaled down (the server works at ≤ 1024 px by default anyway). */
const MAX_SIDE = 2048;
/** Formats the server decodes as they are; others are re-encoded from the canvas. */
const SENT_AS_IS = ["image/png", "image/webp"];

/**
 * The loaded input image.
 * @typedef {{ width: number, height: number, dataUrl: string, name: string }} InputImage
 */

/** The image panel of the form: empty drop zone, or the picture with the mask tools. */
export class ImageEditor {
  constructor() {
    this.root = byId("editor");
    this.dropzone = byId("dropzone");
    this.paint = byId("paint");
    this.tools = byId("mask-tools");
    this.imageCanvas = byId("image-canvas", HTMLCanvasElement);
    this.fileInput = byId("image-file", HTMLInputElement);
    this.sizeText = byId("editor-size");
    this.hint = byId("mask-hint");
    this.brush = new MaskBrush(byId("mask-canvas", HTMLCanvasElement), byId("brush-cursor"));
    /** @type {InputImage | null} */
    this.image = null;
    /** Runs when an image is loaded or removed. */
    this.onImage = () => {};
    /** @type {(message: string) => void} */
    this.onError = () => {};
    this.brush.onChange = () => this.describeMask();
    this.wire();
  }

  wire() {
    const pick = () => this.fileInput.click();
    byId("image-pick").addEventListener("click", pick);
    byId("image-replace").addEventListener("click", pick);
    byId("image-remove").addEventListener("click", () => this.remove());
    this.fileInput.addEventListener("change", () => {
      const file = this.fileInput.files?.[0];
      if (file) void this.load(file, file.name);
      this.fileInput.value = "";
    });
    const size = byId("brush-size", HTMLInputElement);
    const setSize = () => (this.brush.size = Number(size.value) || this.brush.size);
    size.addEventListener("input", setSize);
    setSize();
    for (const id of ["brush-paint", "brush-erase"]) {
      byId(id, HTMLInputElement).addEventListener("change", () => (this.brush.erase = byId("brush-erase", HTMLInputElement).checked));
    }
    byId("mask-invert").addEventListener("click", () => this.brush.invert());
    byId("mask-clear").addEventListener("click", () => this.brush.clear());
  }

  /**
   * Shows an image (a file, a pasted or fetched blob) and starts an empty mask at its size.
   * @param {Blob} blob
   * @param {string} name
   * @returns {Promise<boolean>} whether it loaded
   */
  async load(blob, name) {
    if (blob.type !== "" && !blob.type.startsWith("image/")) {
      this.onError(`“${name}” is not an image (${blob.type}). Use a PNG, JPEG or WebP file.`);
      return false;
    }
    let bitmap;
    try {
      bitmap = await createImageBitmap(blob);
    } catch {
      this.onError(`Could not read “${name}” as an image. Use a PNG, JPEG or WebP file.`);
      return false;
    }
    const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const width = Math.max(1, Math.round(bitmap.width * k));
    const height = Math.max(1, Math.round(bitmap.height * k));
    this.imageCanvas.width = width;
    this.imageCanvas.height = height;
    this.imageCanvas.getContext("2d")?.drawImage(bitmap, 0, 0, width, height);
    bitmap.close();
    // The original bytes where the server reads them the same way; otherwise what the canvas
    // shows (a JPEG's EXIF rotation applied, GIF/BMP converted, a big photo scaled down).
    const dataUrl =
      k === 1 && SENT_AS_IS.includes(blob.type)
        ? await readDataUrl(blob)
        : this.imageCanvas.toDataURL(blob.type === "image/jpeg" ? "image/jpeg" : "image/png", 0.95);
    this.image = { width, height, dataUrl, name };
    this.brush.reset(width, height);
    this.show(true);
    this.paint.style.setProperty("--ar", String(width / height));
    this.paint.classList.toggle("pixelated", width < 256);
    this.sizeText.textContent = `${width} × ${height}`;
    this.sizeText.title = name;
    this.describeMask();
    this.onImage();
    return true;
  }

  remove() {
    this.image = null;
    this.brush.reset(0, 0);
    this.show(false);
    this.sizeText.textContent = "";
    this.onImage();
    byId("image-pick").focus();
  }

  /** @param {boolean} loaded */
  show(loaded) {
    this.dropzone.hidden = loaded;
    this.paint.hidden = !loaded;
    this.tools.hidden = !loaded;
    this.hint.hidden = !loaded;
  }

  describeMask() {
    this.hint.textContent = this.brush.isEmpty()
      ? "Paint over what should change. With no mask the whole image is redrawn."
      : "Only the painted part is redrawn.";
  }

  /** The mask as a white-on-black PNG data URL, or null when nothing is painted. */
  maskDataUrl() {
    return this.image === null || this.brush.isEmpty() ? null : this.brush.toDataUrl();
  }

  /**
   * The input as it will be compared with the result: the picture, on a canvas grown by the
   * outpaint borders (left transparent, so the new border shows as such).
   * @param {{ left: number, right: number, top: number, bottom: number }} grow
   * @returns {string | null} a PNG data URL
   */
  snapshot(grow) {
    if (this.image === null) return null;
    if (grow.left + grow.right + grow.top + grow.bottom === 0) return this.imageCanvas.toDataURL("image/png");
    const c = document.createElement("canvas");
    c.width = this.image.width + grow.left + grow.right;
    c.height = this.image.height + grow.top + grow.bottom;
    c.getContext("2d")?.drawImage(this.imageCanvas, grow.left, grow.top);
    return c.toDataURL("image/png");
  }

  /** Moves focus into the panel (the picker, or the canvas once there is an image). */
  focus() {
    const target = this.image ? byId("image-replace") : byId("image-pick");
    target.focus();
    this.root.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  /** @param {boolean} on a file is being dragged over the page */
  setDragging(on) {
    this.root.classList.toggle("dragging", on);
  }
}

/** @param {Blob} blob @returns {Promise<string>} */
function readDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error ?? new Error("could not read the file"));
    r.readAsDataURL(blob);
  });
}
