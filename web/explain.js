// @ts-check
/**
 * The explain view: a filmstrip of the sampler's predicted image at each step (scrubbable) and,
 * per word of the prompt, where the U-Net's cross-attention put it, drawn over the image.
 */
import { byId, h, pixelateIfSmall } from "./dom.js";
import { drawHeatmap } from "./heatmap.js";

/** @typedef {import("./api.js").Explain} Explain */
/** @typedef {import("./api.js").Heatmap} Heatmap */

/** CLIP's BPE marks a word end with "</w>"; people read the word. @param {string} t */
export function tokenLabel(t) {
  return t.replace(/<\/w>$/, "").trim() || t;
}

/** Drives the Explain tab of the stage. */
export class ExplainView {
  /** @param {import("./stage.js").Stage} stage */
  constructor(stage) {
    this.stage = stage;
    this.scrub = byId("scrub", HTMLInputElement);
    this.scrubLabel = byId("scrub-label", HTMLOutputElement);
    this.strip = byId("filmstrip");
    this.tokens = byId("tokens");
    this.opacity = byId("opacity", HTMLInputElement);
    /** @type {string[]} step frames, then the final image */
    this.frames = [];
    /** @type {Heatmap[]} */
    this.maps = [];
    /** index into maps, or -1 for no overlay */
    this.token = -1;
    this.active = false;
    this.scrub.addEventListener("input", () => this.showFrame(Number(this.scrub.value)));
    this.opacity.addEventListener("input", () => this.paintOverlay());
  }

  /**
   * Loads a finished job's explain data; the final image closes the filmstrip.
   * @param {Explain} ex
   * @param {string} finalUrl
   */
  load(ex, finalUrl) {
    this.frames = [...(ex.filmstrip ?? []), finalUrl];
    this.maps = (ex.heatmaps ?? []).filter((m) => m.width > 0 && m.height > 0);
    this.token = -1;
    this.scrub.max = String(this.frames.length - 1);
    this.scrub.value = this.scrub.max;
    this.strip.replaceChildren(...this.frames.map((src, i) => this.frameButton(src, i)));
    this.tokens.replaceChildren(this.tokenButton(-1, "none"), ...this.maps.map((m, i) => this.tokenButton(i, tokenLabel(m.token))));
    if (this.maps.length === 0) {
      const why = ex.context === "pooled"
        ? "This model reads the prompt as one vector (its pooled text state in every row the U-Net attends to), so no word has a map of its own."
        : "The server sent no attention maps for this prompt.";
      this.tokens.append(h("p", { class: "hint" }, why));
    }
    this.showFrame(this.frames.length - 1);
    this.selectToken(this.maps.length > 0 ? 0 : -1);
  }

  /** @param {"image" | "explain"} tab */
  onTab(tab) {
    this.active = tab === "explain";
    if (this.active) {
      this.stage.select(0);
      this.showFrame(Number(this.scrub.value));
      this.paintOverlay();
    }
  }

  /** @param {string} src @param {number} i */
  frameButton(src, i) {
    const last = i === this.frames.length - 1;
    const img = h("img", { src, alt: "", loading: "lazy" });
    pixelateIfSmall(img);
    const b = h(
      "button",
      { type: "button", class: "frame-button", "aria-label": last ? "Final image" : `Step ${i + 1}`, "aria-pressed": "false" },
      img,
      h("span", { class: "step-no", "aria-hidden": "true" }, last ? "final" : String(i + 1)),
    );
    b.addEventListener("click", () => this.showFrame(i));
    return b;
  }

  /** @param {number} i @param {string} label */
  tokenButton(i, label) {
    const b = h("button", { type: "button", class: i < 0 ? "token none" : "token", "aria-pressed": "false", "data-token": i }, label);
    const map = this.maps[i];
    if (map) {
      const c = h("canvas", { "aria-hidden": "true" });
      drawHeatmap(c, map, { alphaFloor: 1 });
      b.prepend(c);
      b.setAttribute("aria-label", `Attention map for “${label}”`);
    } else {
      b.setAttribute("aria-label", "Hide the attention map");
    }
    b.addEventListener("click", () => this.selectToken(i));
    return b;
  }

  /** @param {number} i index into frames */
  showFrame(i) {
    const n = this.frames.length;
    if (n === 0) return;
    const k = Math.min(n - 1, Math.max(0, i));
    this.scrub.value = String(k);
    const last = k === n - 1;
    this.scrubLabel.value = last ? "final image" : `step ${k + 1} of ${n - 1}`;
    this.strip.querySelectorAll("button").forEach((b, j) => {
      b.setAttribute("aria-pressed", String(j === k));
      if (j === k && this.active) b.scrollIntoView({ block: "nearest", inline: "nearest" });
    });
    if (this.active) this.stage.showFrame(/** @type {string} */ (this.frames[k]), last ? "Final image" : `Predicted image at step ${k + 1}`);
  }

  /** @param {number} i index into maps, −1 for none */
  selectToken(i) {
    this.token = i;
    this.tokens.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(Number(b.dataset.token) === i)));
    this.paintOverlay();
  }

  paintOverlay() {
    const map = this.maps[this.token];
    if (!this.active || !map) {
      this.stage.setOverlay(false);
      return;
    }
    drawHeatmap(this.stage.overlay, map);
    this.stage.setOverlay(true, Number(this.opacity.value));
  }
}
