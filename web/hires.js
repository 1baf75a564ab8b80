// @ts-check
/** The hires fix of text-to-image: enable, scale, upscaler, second-pass steps and denoising strength. */
import { byId, h, linkRange, loadJson, readNumber, saveJson, setNumber } from "./dom.js";

/** @typedef {import("./api.js").ServerInfo} ServerInfo */
/** @typedef {import("./api.js").HiresFields} HiresFields */

const STORAGE_KEY = "sdts.hires.v1";

/** The "Hires fix" fieldset. */
export class HiresSettings {
  constructor() {
    this.enabled = byId("hires", HTMLInputElement);
    this.fields = byId("hires-fields");
    this.scale = byId("hires-scale", HTMLInputElement);
    this.upscaler = byId("hires-upscaler", HTMLSelectElement);
    this.steps = byId("hires-steps", HTMLInputElement);
    this.strength = byId("hires-strength", HTMLInputElement);
    this.sizeNote = byId("hires-size");
    /** Base size the note works from (the form's width and height). */
    this.base = { width: 0, height: 0 };
    /** Runs when the fix is switched on or off (the explain view is not offered with it). */
    this.onToggle = () => {};
    const changed = () => {
      this.describe();
      this.save();
    };
    linkRange(this.scale, byId("hires-scale-range", HTMLInputElement), changed);
    linkRange(this.strength, byId("hires-strength-range", HTMLInputElement), changed);
    this.steps.addEventListener("input", changed);
    this.upscaler.addEventListener("change", changed);
    this.enabled.addEventListener("change", () => {
      this.fields.hidden = !this.enabled.checked;
      changed();
      this.onToggle();
    });
  }

  /** Upscalers and defaults from `/api/info`, then what this browser saved. @param {ServerInfo} info */
  applyInfo(info) {
    const d = info.hires;
    if (!d) return;
    const saved = loadJson(STORAGE_KEY); // before write(), which saves
    this.upscaler.replaceChildren(...d.upscalers.map((u) => h("option", { value: u }, u)));
    this.write({ ...d, enabled: false });
    if (saved) this.write(saved);
  }

  /** @param {Partial<HiresFields> & { enabled?: boolean }} p */
  write(p) {
    if (typeof p.scale === "number") setNumber(this.scale, p.scale);
    if (typeof p.steps === "number") setNumber(this.steps, p.steps);
    if (typeof p.denoisingStrength === "number") setNumber(this.strength, p.denoisingStrength);
    if (typeof p.upscaler === "string" && [...this.upscaler.options].some((o) => o.value === p.upscaler)) this.upscaler.value = p.upscaler;
    if (typeof p.enabled === "boolean") {
      this.enabled.checked = p.enabled;
      this.fields.hidden = !p.enabled;
      this.onToggle();
    }
    this.describe();
    this.save();
  }

  /** @returns {boolean} */
  get on() {
    return this.enabled.checked;
  }

  /**
   * `hires` for the request (undefined when off), or the first field that is not a number.
   * @returns {{ hires?: HiresFields } | { error: string, field: string }}
   */
  read() {
    if (!this.on) return {};
    const scale = readNumber(this.scale, "Upscale by");
    if ("error" in scale) return scale;
    const steps = readNumber(this.steps, "Hires steps");
    if ("error" in steps) return steps;
    const strength = readNumber(this.strength, "Hires denoising strength");
    if ("error" in strength) return strength;
    return { hires: { scale: scale.value, upscaler: this.upscaler.value, steps: steps.value, denoisingStrength: strength.value } };
  }

  /** @param {number} width @param {number} height the first pass's size */
  setBase(width, height) {
    this.base = { width, height };
    this.describe();
  }

  /** "64 × 64 → 128 × 128", rounded down to a multiple of 8 as the server does. */
  describe() {
    const { width, height } = this.base;
    const k = Number(this.scale.value);
    if (!(width > 0 && height > 0 && k >= 1)) {
      this.sizeNote.textContent = "";
      return;
    }
    const floor8 = (/** @type {number} */ v) => Math.max(8, Math.floor(v / 8) * 8);
    this.sizeNote.textContent = `${width} × ${height} → ${floor8(width * k)} × ${floor8(height * k)}`;
  }

  save() {
    saveJson(STORAGE_KEY, {
      enabled: this.enabled.checked,
      scale: Number(this.scale.value),
      upscaler: this.upscaler.value,
      steps: Number(this.steps.value),
      denoisingStrength: Number(this.strength.value),
    });
  }
}
