/**
 * The native POST /api/jobs body (camelCase, strict types): txt2img, with the hires fix under
 * `hires`; img2img when `initImage` is sent; inpainting when `mask` or `outpaint` is sent too.
 * Defaults follow A1111's web UI (not its API): masked content "original", whole-picture
 * inpainting, 32 px only-masked padding. See README.md here.
 */
import { invalid } from "./http.js";
import { checkHiresTarget, hiresTarget, upscalerField } from "./hires.js";
import { Fields, randomSeed } from "./params.js";
import { type BaseRun, type HiresRun, type Img2ImgRun, type InpaintRun, type LoraRun, NO_MODEL_DEFAULTS, type OutpaintRun, type RunParams } from "./protocol.js";
import type { ServerContext } from "./context.js";

/** Defaults of the native API (the model's size and sampler fill in the rest). */
export const NATIVE_DEFAULTS = { steps: 20, cfgScale: 7, seed: -1, batchSize: 1 } as const;

/** Names of A1111's masked-content modes (`fill` 0–3) and resize modes (`resizeMode` 0–2), as the library spells them. */
export const FILLS = ["fill", "original", "latent-noise", "latent-nothing"] as const;
export const RESIZE_MODES = ["just-resize", "crop-and-resize", "resize-and-fill"] as const;

/** Defaults of the image fields (A1111's web UI defaults). */
export const EDIT_DEFAULTS = { strength: 0.75, maskBlur: 4, fill: "original", invertMask: false, onlyMasked: false, onlyMaskedPadding: 32, resizeMode: "just-resize" } as const;

/** Defaults of `hires` (A1111's web UI: ×2, Latent, same steps, strength 0.7). */
export const HIRES_DEFAULTS = { scale: 2, upscaler: "Latent", steps: 0, denoisingStrength: 0.7 } as const;

/** `hires: { scale?, width?, height?, upscaler?, steps?, denoisingStrength? }` → the second pass. */
function parseHires(body: Readonly<Record<string, unknown>>, base: BaseRun, ctx: ServerContext): HiresRun {
  const f = new Fields(body, false, "hires.");
  const l = ctx.opts.limits;
  const scale = f.num("scale", HIRES_DEFAULTS.scale, 1, 8);
  const width = f.missing("width") ? 0 : f.size("width", 0, l.maxWidth);
  const height = f.missing("height") ? 0 : f.size("height", 0, l.maxHeight);
  const target = hiresTarget(base, scale, width, height);
  checkHiresTarget(target, l, width > 0 ? "hires.width" : "hires.scale", height > 0 ? "hires.height" : "hires.scale");
  return {
    scale,
    ...target,
    upscaler: upscalerField(f.str("upscaler", HIRES_DEFAULTS.upscaler), "hires.upscaler"),
    steps: f.int("steps", HIRES_DEFAULTS.steps, 0, l.maxSteps),
    denoisingStrength: f.num("denoisingStrength", HIRES_DEFAULTS.denoisingStrength, 0, 1),
  };
}

/** Most LoRAs one job may name (besides its prompt's tags). */
export const MAX_LORAS = 16;

/**
 * `loras: [{ name, weight? }]`: names only, never paths, so a client cannot make the server open
 * files outside its LoRA folder. The library resolves the names (file name, alias, path within
 * the folder) and answers an unknown one with the list of those it has.
 */
function parseLoras(value: unknown, ctx: ServerContext): LoraRun[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid("loras", `must be a list of { name, weight? } (got ${typeof value})`);
  if (value.length > MAX_LORAS) throw invalid("loras", `may name at most ${MAX_LORAS} LoRAs (got ${value.length})`);
  if (value.length > 0 && ctx.opts.loraDir === undefined) throw invalid("loras", "the server has no LoRA folder; start it with --lora-dir <folder>");
  return value.map((item: unknown, i) => {
    const at = `loras[${i}]`;
    if (typeof item !== "object" || item === null || Array.isArray(item)) throw invalid(at, "must be an object { name, weight? }");
    const f = new Fields(item as Readonly<Record<string, unknown>>, false, `${at}.`);
    const name = f.str("name", "");
    if (name.trim() === "") throw invalid(`${at}.name`, "is required: a LoRA name from /api/info loras");
    return { name, weight: f.num("weight", 1, -10, 10) };
  });
}

/** `outpaint: { left?, right?, top?, bottom? }` in pixels (at least one above 0). */
function parseOutpaint(body: Readonly<Record<string, unknown>>, ctx: ServerContext): OutpaintRun {
  const f = new Fields(body, false, "outpaint.");
  const max = Math.max(ctx.opts.limits.maxWidth, ctx.opts.limits.maxHeight);
  const o = { left: f.int("left", 0, 0, max), right: f.int("right", 0, 0, max), top: f.int("top", 0, 0, max), bottom: f.int("bottom", 0, 0, max) };
  if (o.left + o.right + o.top + o.bottom === 0) throw invalid("outpaint", "must grow the canvas on at least one side ({ left, right, top, bottom } in pixels)");
  return o;
}

/** img2img or inpainting fields, given an init image. */
function parseEdit(f: Fields, base: BaseRun, image: Uint8Array, ctx: ServerContext): Img2ImgRun | InpaintRun {
  const strength = f.num("strength", EDIT_DEFAULTS.strength, 0, 1);
  const resizeMode = f.choice("resizeMode", RESIZE_MODES, 0) as Img2ImgRun["resizeMode"];
  const mask = f.image("mask");
  const outpaint = f.missing("outpaint") ? undefined : parseOutpaint(f.obj("outpaint"), ctx);
  // Checked even without a mask, so a typo is not silently ignored.
  const inpaint = {
    maskBlur: f.num("maskBlur", EDIT_DEFAULTS.maskBlur, 0, 64),
    fill: f.choice("fill", FILLS, FILLS.indexOf(EDIT_DEFAULTS.fill)) as InpaintRun["fill"],
    invertMask: f.bool("invertMask", EDIT_DEFAULTS.invertMask),
    onlyMasked: f.bool("onlyMasked", EDIT_DEFAULTS.onlyMasked),
    onlyMaskedPadding: f.int("onlyMaskedPadding", EDIT_DEFAULTS.onlyMaskedPadding, 0, 1024),
  };
  if (mask === undefined && outpaint === undefined) return { kind: "img2img", ...base, image, strength, resizeMode };
  return { kind: "inpaint", ...base, image, strength, resizeMode, ...inpaint, ...(mask ? { mask } : {}), ...(outpaint ? { outpaint } : {}) };
}

/** Parses a POST /api/jobs body into one worker run. */
export function parseJob(body: Readonly<Record<string, unknown>>, ctx: ServerContext): RunParams {
  const f = new Fields(body, false);
  const d = ctx.queue.model?.defaults ?? NO_MODEL_DEFAULTS;
  const l = ctx.opts.limits;
  if (f.missing("prompt")) throw invalid("prompt", "is required (a string; may be empty)");
  const seed = f.seed("seed");
  const loras = parseLoras(body["loras"], ctx);
  const base: BaseRun = {
    prompt: f.str("prompt", ""),
    negativePrompt: f.str("negativePrompt", ""),
    steps: f.int("steps", NATIVE_DEFAULTS.steps, 1, l.maxSteps),
    cfgScale: f.num("cfgScale", d.cfgScale ?? NATIVE_DEFAULTS.cfgScale, 0, 100),
    sampler: f.sampler("sampler", d.sampler),
    seed: seed === -1 ? randomSeed() : seed,
    width: f.size("width", d.width, l.maxWidth),
    height: f.size("height", d.height, l.maxHeight),
    batchSize: f.int("batchSize", NATIVE_DEFAULTS.batchSize, 1, l.maxBatch),
    ...(loras.length > 0 ? { loras } : {}),
  };
  const explain = f.bool("explain", false);
  const image = f.image("initImage");
  if (image === undefined) {
    for (const k of ["mask", "outpaint"]) if (!f.missing(k)) throw invalid(k, "needs an initImage to work on");
    const hires = f.missing("hires") ? undefined : parseHires(f.obj("hires"), base, ctx);
    if (hires && explain) throw invalid("explain", "is only available without hires (the explain view follows one sampling pass); send false");
    return { kind: "txt2img", ...base, explain, ...(hires ? { hires } : {}) };
  }
  if (!f.missing("hires")) throw invalid("hires", "is for text to image only; send null with an initImage");
  if (explain) throw invalid("explain", "is only available for text to image; send false with an initImage");
  return parseEdit(f, base, image, ctx);
}
