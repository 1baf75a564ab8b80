// @ts-check
/** Settings of image-to-image: denoising strength, resize mode, inpainting (mask blur, masked content, area) and outpainting. */
import { byId, h, linkRange, loadJson, readNumber, saveJson, setNumber } from "./dom.js";

/** @typedef {import("./api.js").ServerInfo} ServerInfo */
/** @typedef {import("./api.js").EditFields} EditFields */
/** @typedef {{ left: number, right: number, top: number, bottom: number }} Grow */

const STORAGE_KEY = "sdts.edit.v1";
/** A1111's names for the server's `fill` and `resizeMode` values. */
const FILL_LABELS = /** @type {Record<string, string>} */ ({ fill: "Fill", original: "Original", "latent-noise": "Latent noise", "latent-nothing": "Latent nothing" });
const RESIZE_LABELS = /** @type {Record<string, string>} */ ({ "just-resize": "Just resize", "crop-and-resize": "Crop and resize", "resize-and-fill": "Resize and fill" });
const SIDES = /** @type {const} */ (["left", "right", "top", "bottom"]);

/** The image-to-image, inpainting and outpainting fieldsets. */
export class EditSettings {
  constructor() {
    this.strength = byId("strength", HTMLInputElement);
    this.resizeMode = byId("resizeMode", HTMLSelectElement);
    this.maskBlur = byId("maskBlur", HTMLInputElement);
    this.fill = byId("fill", HTMLSelectElement);
    this.onlyMasked = byId("area-masked", HTMLInputElement);
    this.padding = byId("onlyMaskedPadding", HTMLInputElement);
    /** @type {Record<keyof Grow, HTMLInputElement>} */
    this.grow = { left: byId("outpaint-left", HTMLInputElement), right: byId("outpaint-right", HTMLInputElement), top: byId("outpaint-top", HTMLInputElement), bottom: byId("outpaint-bottom", HTMLInputElement) };
    /** Runs when an outpaint border changes (the output size follows it). */
    this.onGrow = () => {};
    const save = () => this.save();
    linkRange(this.strength, byId("strength-range", HTMLInputElement), save);
    linkRange(this.maskBlur, byId("maskBlur-range", HTMLInputElement), save);
    for (const el of [this.resizeMode, this.fill, this.padding]) el.addEventListener("change", save);
    for (const id of ["area-whole", "area-masked"]) byId(id, HTMLInputElement).addEventListener("change", () => this.updateArea());
    for (const side of SIDES) this.grow[side].addEventListener("input", () => this.onGrow());
  }

  /** Fills the choices and defaults from `/api/info`, then what this browser saved. @param {ServerInfo} info */
  applyInfo(info) {
    const e = info.edit;
    if (!e) return;
    const saved = loadJson(STORAGE_KEY); // before write(), which saves
    this.resizeMode.replaceChildren(...e.resizeModes.map((m) => h("option", { value: m }, RESIZE_LABELS[m] ?? m)));
    this.fill.replaceChildren(...e.fills.map((f) => h("option", { value: f }, FILL_LABELS[f] ?? f)));
    this.write(e);
    if (saved) this.write(saved);
  }

  /** @param {Partial<EditFields>} p */
  write(p) {
    if (typeof p.strength === "number") setNumber(this.strength, p.strength);
    if (typeof p.maskBlur === "number") setNumber(this.maskBlur, p.maskBlur);
    if (typeof p.onlyMaskedPadding === "number") setNumber(this.padding, p.onlyMaskedPadding);
    if (typeof p.resizeMode === "string" && hasOption(this.resizeMode, p.resizeMode)) this.resizeMode.value = p.resizeMode;
    if (typeof p.fill === "string" && hasOption(this.fill, p.fill)) this.fill.value = p.fill;
    if (typeof p.onlyMasked === "boolean") byId(p.onlyMasked ? "area-masked" : "area-whole", HTMLInputElement).checked = true;
    this.updateArea();
  }

  updateArea() {
    this.padding.disabled = !this.onlyMasked.checked;
    this.save();
  }

  /** The outpaint borders as typed (anything that is not a whole number counts as 0 here; read() reports it). */
  borders() {
    /** @type {Grow} */
    const g = { left: 0, right: 0, top: 0, bottom: 0 };
    for (const side of SIDES) {
      const v = Number(this.grow[side].value);
      g[side] = Number.isInteger(v) && v > 0 ? v : 0;
    }
    return g;
  }

  /**
   * The request's image fields (mask and image aside), or the first field that is not a number.
   * @returns {{ fields: EditFields } | { error: string, field: string }}
   */
  read() {
    /** @type {Record<string, number>} */
    const n = {};
    for (const [input, label] of /** @type {[HTMLInputElement, string][]} */ ([
      [this.strength, "Denoising strength"],
      [this.maskBlur, "Mask blur"],
      [this.padding, "Only-masked padding"],
      ...SIDES.map((s) => [this.grow[s], `Outpaint ${s}`]),
    ])) {
      if (input.value.trim() === "" && input.name.startsWith("outpaint.")) continue;
      const r = readNumber(input, label);
      if ("error" in r) return r;
      n[input.name] = r.value;
    }
    /** @type {EditFields} */
    const fields = {
      strength: n.strength ?? 0.75,
      resizeMode: this.resizeMode.value,
      maskBlur: n.maskBlur ?? 4,
      fill: this.fill.value,
      onlyMasked: this.onlyMasked.checked,
      onlyMaskedPadding: n.onlyMaskedPadding ?? 32,
    };
    const grow = Object.fromEntries(SIDES.map((s) => [s, n[`outpaint.${s}`] ?? 0]));
    if (SIDES.some((s) => grow[s] !== 0)) fields.outpaint = /** @type {Grow} */ (grow);
    return { fields };
  }

  save() {
    saveJson(STORAGE_KEY, {
      strength: Number(this.strength.value),
      maskBlur: Number(this.maskBlur.value),
      onlyMaskedPadding: Number(this.padding.value),
      resizeMode: this.resizeMode.value,
      fill: this.fill.value,
      onlyMasked: this.onlyMasked.checked,
    });
  }
}

/** @param {HTMLSelectElement} select @param {string} value */
function hasOption(select, value) {
  return [...select.options].some((o) => o.value === value);
}
