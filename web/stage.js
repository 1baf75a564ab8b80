// @ts-check
/** The stage: the image being made (live preview, then the results), its batch strip and the Image/Explain tabs. */
import { CompareView } from "./compare.js";
import { byId, h, pixelateIfSmall } from "./dom.js";

/** @typedef {import("./api.js").JobImage} JobImage */
/** @typedef {import("./compare.js").BeforeImage} BeforeImage */

/** Shows one image at a time with an optional heatmap overlay. */
export class Stage {
  constructor() {
    this.frame = byId("frame");
    this.empty = byId("empty");
    this.img = byId("result", HTMLImageElement);
    this.overlay = byId("overlay", HTMLCanvasElement);
    this.batch = byId("batch");
    this.download = byId("download", HTMLAnchorElement);
    this.useResult = byId("use-result", HTMLButtonElement);
    this.compare = new CompareView();
    this.meta = byId("result-meta");
    this.tabImage = byId("tab-image", HTMLButtonElement);
    this.tabExplain = byId("tab-explain", HTMLButtonElement);
    this.viewImage = byId("view-image");
    this.viewExplain = byId("view-explain");
    /** @type {JobImage[]} */
    this.images = [];
    this.selected = 0;
    /** @type {string | undefined} */
    this.prompt = undefined;
    /** @type {{ images: JobImage[], prompt: string, explain: boolean, before: BeforeImage | null } | null} */
    this.previous = null;
    /** @type {(tab: "image" | "explain") => void} */
    this.onTab = () => {};
    /** "Use this image": sends the shown result to image-to-image. @type {(url: string) => void} */
    this.onUseImage = () => {};
    this.useResult.addEventListener("click", () => {
      const im = this.images[this.selected];
      if (im) this.onUseImage(im.url);
    });
    pixelateIfSmall(this.img);
    this.img.addEventListener("load", () => this.fitTo(this.img.naturalWidth, this.img.naturalHeight));
    this.tabImage.addEventListener("click", () => this.setTab("image"));
    this.tabExplain.addEventListener("click", () => this.setTab("explain"));
    byId("stage").querySelector('[role="tablist"]')?.addEventListener("keydown", (ev) => this.tabKeys(/** @type {KeyboardEvent} */ (ev)));
  }

  /** Sizes the frame to an aspect ratio before any pixels arrive. @param {number} w @param {number} h */
  fitTo(w, h) {
    if (w > 0 && h > 0) this.frame.style.setProperty("--ar", String(w / h));
  }

  /** A new job: clears results, keeps the last picture visible (dimmed) until a preview replaces it. */
  beginJob() {
    this.setTab("image");
    /** What to bring back if this job is cancelled or fails. */
    this.previous =
      this.images.length > 0 ? { images: this.images, prompt: this.prompt ?? "", explain: !this.tabExplain.disabled, before: this.compare.input } : null;
    this.tabExplain.disabled = true;
    this.compare.set(null);
    this.images = [];
    this.batch.hidden = true;
    this.batch.replaceChildren();
    this.download.hidden = true;
    this.useResult.hidden = true;
    this.meta.textContent = "";
    this.frame.classList.add("previewing");
  }

  /** @param {string} src a data: URL of the sampler's current estimate */
  showPreview(src) {
    this.empty.hidden = true;
    this.img.hidden = false;
    this.img.alt = "Preview of the image being generated";
    this.img.src = src;
    this.frame.classList.add("has-image");
  }

  /** Ends a job that made no image (cancelled or failed): the last result comes back, or the empty state. */
  endJob() {
    this.frame.classList.remove("previewing");
    const prev = this.previous;
    this.previous = null;
    if (prev) {
      this.showResults(prev.images, prev.prompt, prev.explain, prev.before);
    } else {
      this.img.hidden = true;
      this.img.removeAttribute("src");
      this.empty.hidden = false;
      this.frame.classList.remove("has-image");
    }
  }

  /**
   * Shows a finished batch and selects its first image.
   * @param {JobImage[]} images
   * @param {string} prompt for alt text
   * @param {boolean} hasExplain
   * @param {BeforeImage | null} [before] the input of an image job, for the before / after view
   */
  showResults(images, prompt, hasExplain, before = null) {
    this.frame.classList.remove("previewing");
    this.images = images;
    this.prompt = prompt;
    this.batch.replaceChildren(
      ...images.map((im, i) => {
        const thumb = h("img", { src: im.url, alt: "" });
        pixelateIfSmall(thumb);
        const b = h("button", { type: "button", "aria-label": `Image ${i + 1} of ${images.length}, seed ${im.seed}`, "aria-pressed": "false" }, thumb);
        b.addEventListener("click", () => this.select(i));
        return b;
      }),
    );
    this.batch.hidden = images.length < 2;
    this.tabExplain.disabled = !hasExplain;
    this.tabExplain.title = hasExplain ? "" : "Tick “Record the explain view” and generate again";
    this.compare.set(before);
    this.useResult.hidden = images.length === 0;
    this.select(0);
  }

  /** @param {number} i */
  select(i) {
    const im = this.images[i];
    if (!im) return;
    this.selected = i;
    this.batch.querySelectorAll("button").forEach((b, k) => b.setAttribute("aria-pressed", String(k === i)));
    this.showFrame(im.url, `Generated image: ${this.prompt || "(empty prompt)"}`);
    this.download.href = im.url;
    this.download.download = `sdts-${im.seed}.png`;
    this.download.hidden = false;
    this.meta.textContent = `Seed ${im.seed}` + (this.images.length > 1 ? ` · image ${i + 1} of ${this.images.length}` : "");
  }

  /** Shows a picture without changing the selection (explain view scrubbing). @param {string} src @param {string} alt */
  showFrame(src, alt) {
    this.empty.hidden = true;
    this.img.hidden = false;
    this.img.alt = alt;
    if (this.img.getAttribute("src") !== src) this.img.src = src;
    this.frame.classList.add("has-image");
  }

  /** The overlay canvas, shown or hidden; the caller paints it. @param {boolean} on @param {number} [opacity] */
  setOverlay(on, opacity = 0.7) {
    this.overlay.hidden = !on;
    this.frame.classList.toggle("heat", on);
    this.overlay.style.opacity = String(opacity);
  }

  /** @param {"image" | "explain"} tab */
  setTab(tab) {
    if (tab === "explain" && this.tabExplain.disabled) return;
    const explain = tab === "explain";
    this.tabImage.setAttribute("aria-selected", String(!explain));
    this.tabExplain.setAttribute("aria-selected", String(explain));
    this.tabImage.tabIndex = explain ? -1 : 0;
    this.tabExplain.tabIndex = explain ? 0 : -1;
    this.viewImage.hidden = explain;
    this.viewExplain.hidden = !explain;
    this.batch.hidden = explain || this.images.length < 2;
    if (explain) this.compare.setOn(false);
    else {
      this.setOverlay(false);
      this.select(this.selected);
    }
    this.onTab(tab);
  }

  /** Arrow keys move between tabs (WAI-ARIA tabs pattern). @param {KeyboardEvent} ev */
  tabKeys(ev) {
    if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
    const next = this.tabImage.getAttribute("aria-selected") === "true" ? "explain" : "image";
    this.setTab(next);
    (next === "explain" ? this.tabExplain : this.tabImage).focus();
    ev.preventDefault();
  }
}
