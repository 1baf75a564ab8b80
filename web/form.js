// @ts-check
/** The settings form: reading and writing parameters, limits from the server, seed buttons, persistence. */
import { byId, h } from "./dom.js";

/** @typedef {import("./api.js").GenParams} GenParams */
/** @typedef {import("./api.js").ServerInfo} ServerInfo */

const STORAGE_KEY = "sdts.settings.v1";

/** Number fields, in form order, with the name a person reads in a message. */
const NUMBER_FIELDS = /** @type {const} */ ([
  ["steps", "Steps"],
  ["cfgScale", "CFG scale"],
  ["seed", "Seed"],
  ["width", "Width"],
  ["height", "Height"],
  ["batchSize", "Batch"],
]);

/** The form's controls, looked up once. */
export class SettingsForm {
  constructor() {
    this.form = byId("form", HTMLFormElement);
    this.prompt = byId("prompt", HTMLTextAreaElement);
    this.negativePrompt = byId("negativePrompt", HTMLTextAreaElement);
    this.sampler = byId("sampler", HTMLSelectElement);
    this.explain = byId("explain", HTMLInputElement);
    this.reuseSeed = byId("seed-reuse", HTMLButtonElement);
    /** @type {Record<string, HTMLInputElement>} */
    this.numbers = {};
    for (const [name] of NUMBER_FIELDS) this.numbers[name] = byId(name, HTMLInputElement);
    /** @type {number | null} */
    this.lastSeed = null;

    this.linkRange("steps");
    this.linkRange("cfgScale");
    byId("seed-random", HTMLButtonElement).addEventListener("click", () => this.setNumber("seed", -1));
    this.reuseSeed.addEventListener("click", () => {
      if (this.lastSeed !== null) this.setNumber("seed", this.lastSeed);
    });
    this.form.addEventListener("input", (ev) => {
      if (ev.target instanceof HTMLElement) ev.target.removeAttribute("aria-invalid");
      this.save();
    });
    this.form.addEventListener("change", () => this.save());
  }

  /**
   * Fills samplers, limits and defaults from `/api/info`, then any settings saved in this browser.
   * @param {ServerInfo} info
   */
  applyInfo(info) {
    this.sampler.replaceChildren(...info.samplers.map((s) => h("option", { value: s.name }, s.name)));
    const { limits, defaults } = info;
    this.setMax("steps", limits.maxSteps);
    this.setMax("width", limits.maxWidth);
    this.setMax("height", limits.maxHeight);
    this.setMax("batchSize", limits.maxBatch);
    this.write({ ...defaults, seed: -1, batchSize: 1 });
    const saved = this.loadSaved();
    if (saved) this.write(saved);
  }

  /**
   * The current parameters, or a message naming the first field that is not a number.
   * @returns {{ params: GenParams & { explain: boolean } } | { error: string, field: string }}
   */
  read() {
    /** @type {Record<string, number>} */
    const nums = {};
    for (const [name, label] of NUMBER_FIELDS) {
      const raw = this.numbers[name]?.value.trim() ?? "";
      const v = Number(raw);
      if (raw === "" || !Number.isFinite(v)) return { error: `${label} must be a number (got "${raw}").`, field: name };
      nums[name] = v;
    }
    return {
      params: {
        prompt: this.prompt.value,
        negativePrompt: this.negativePrompt.value,
        sampler: this.sampler.value,
        steps: nums.steps ?? 0,
        cfgScale: nums.cfgScale ?? 0,
        seed: nums.seed ?? -1,
        width: nums.width ?? 0,
        height: nums.height ?? 0,
        batchSize: nums.batchSize ?? 1,
        explain: this.explain.checked,
      },
    };
  }

  /**
   * Sets whichever parameters are given (a gallery item's, the defaults, saved ones).
   * @param {Partial<GenParams & { explain: boolean }>} p
   */
  write(p) {
    if (typeof p.prompt === "string") this.prompt.value = p.prompt;
    if (typeof p.negativePrompt === "string") this.negativePrompt.value = p.negativePrompt;
    if (typeof p.sampler === "string") {
      if (![...this.sampler.options].some((o) => o.value === p.sampler)) this.sampler.append(h("option", { value: p.sampler }, p.sampler));
      this.sampler.value = p.sampler;
    }
    for (const [name] of NUMBER_FIELDS) {
      const v = p[name];
      if (typeof v === "number" && Number.isFinite(v)) this.setNumber(name, v);
    }
    if (typeof p.explain === "boolean") this.explain.checked = p.explain;
    this.save();
  }

  /**
   * Remembers the seed of the last image for "reuse last seed".
   * @param {number} seed
   */
  setLastSeed(seed) {
    this.lastSeed = seed;
    this.reuseSeed.disabled = false;
    this.reuseSeed.title = `Reuse last seed (${seed})`;
  }

  /**
   * Marks a field as invalid (from a 422 answer) and moves focus to it.
   * @param {string} name
   * @returns {boolean} whether the form has such a field
   */
  markInvalid(name) {
    const el = this.form.elements.namedItem(name);
    if (!(el instanceof HTMLElement)) return false;
    el.setAttribute("aria-invalid", "true");
    el.focus();
    return true;
  }

  /** @param {boolean} busy */
  setBusy(busy) {
    this.form.setAttribute("aria-busy", String(busy));
  }

  /** @param {string} name @param {number} value */
  setNumber(name, value) {
    const input = this.numbers[name];
    if (!input) return;
    input.value = String(value);
    input.removeAttribute("aria-invalid");
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  /** @param {string} name @param {number} max */
  setMax(name, max) {
    if (!(Number.isFinite(max) && max > 0)) return;
    this.numbers[name]?.setAttribute("max", String(max));
    document.getElementById(`${name}-range`)?.setAttribute("max", String(max));
  }

  /** Keeps a slider and its number box in step. @param {string} name */
  linkRange(name) {
    const num = this.numbers[name];
    const range = byId(`${name}-range`, HTMLInputElement);
    if (!num) return;
    num.addEventListener("input", () => {
      if (num.value !== "" && Number.isFinite(Number(num.value))) range.value = num.value;
    });
    range.addEventListener("input", () => {
      num.value = range.value;
      num.removeAttribute("aria-invalid");
      this.save();
    });
  }

  save() {
    const r = this.read();
    const value = "params" in r ? r.params : { prompt: this.prompt.value, negativePrompt: this.negativePrompt.value };
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(value));
    } catch {
      // Private mode or storage full: settings just aren't remembered.
    }
  }

  /** @returns {Partial<GenParams & { explain: boolean }> | null} */
  loadSaved() {
    try {
      const raw = localStorage.getItem(STORAGE_KEY);
      return raw ? JSON.parse(raw) : null;
    } catch {
      return null;
    }
  }
}
