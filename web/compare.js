// @ts-check
/** Before / after: the input image laid over the result, split by a slider that can be dragged anywhere on the picture. */
import { byId, pixelateIfSmall } from "./dom.js";

/**
 * The input of an image job as the result should be compared with it: the picture and how it
 * maps onto the output (`object-fit`: stretched, cropped or letterboxed, as the resize mode did).
 * @typedef {{ src: string, fit: "fill" | "cover" | "contain" }} BeforeImage
 */

/** The compare layer of the stage's frame and its toggle button. */
export class CompareView {
  constructor() {
    this.frame = byId("frame");
    this.before = byId("before", HTMLImageElement);
    this.layer = byId("compare");
    this.range = byId("compare-range", HTMLInputElement);
    this.toggle = byId("compare-toggle", HTMLButtonElement);
    /** @type {BeforeImage | null} */
    this.input = null;
    pixelateIfSmall(this.before);
    this.range.addEventListener("input", () => this.split());
    this.toggle.addEventListener("click", () => this.setOn(this.toggle.getAttribute("aria-pressed") !== "true"));
    this.split();
  }

  /** The input to compare the shown result with; null for a text-to-image result. @param {BeforeImage | null} input */
  set(input) {
    this.input = input;
    this.toggle.hidden = input === null;
    if (input) {
      this.before.src = input.src;
      this.before.style.objectFit = input.fit;
    } else {
      this.before.removeAttribute("src");
    }
    this.setOn(false);
  }

  /** @param {boolean} on */
  setOn(on) {
    const show = on && this.input !== null;
    this.toggle.setAttribute("aria-pressed", String(show));
    this.before.hidden = !show;
    this.layer.hidden = !show;
    this.frame.classList.toggle("comparing", show);
  }

  /** Moves the split to the slider's place: the input left of it, the result right. */
  split() {
    this.frame.style.setProperty("--split", `${this.range.value}%`);
  }
}
