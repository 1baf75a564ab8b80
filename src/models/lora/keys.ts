/**
 * LoRA tensor names → the model's modules. Layouts read:
 *
 * - kohya / AUTOMATIC1111 (`lora_unet_<module>.lora_down.weight`, `.lora_up.weight`, `.alpha`;
 *   `lora_te_` / `lora_te1_` for the text encoder). `<module>` is the module path with every "."
 *   turned into "_", in diffusers names (sd-scripts' `LoRANetwork`) or in the original CompVis
 *   names (`lora_unet_input_blocks_1_1_proj_in`). Underscores are ambiguous (`to_q`,
 *   `transformer_blocks`), so names are matched whole against the joined paths of the modules
 *   the model actually has, in both U-Net layouts (unet/keys.ts translates CompVis paths).
 *   https://github.com/kohya-ss/sd-scripts/blob/main/networks/lora.py
 * - diffusers / PEFT (`unet.<path>.lora_A.weight` / `lora_B`, `text_encoder.<path>…`), and the
 *   older diffusers names `<path>.lora.down.weight`, `<path>.lora_linear_layer.up.weight`,
 *   `<attn>.processor.to_q_lora.down.weight`; optional `<path>.alpha`.
 *   https://github.com/huggingface/diffusers/blob/main/src/diffusers/loaders/lora_conversion_utils.py
 *
 * LyCORIS variants (LoHa, LoKr, Tucker `lora_mid`, DoRA, OFT…) are refused by name.
 */
import { ParamRegistry, Scope, type AdaptableModule } from "../../nn/scope.js";
import type { ClipTextConfig } from "../clip/config.js";
import { ClipTextEncoder } from "../clip/text-encoder.js";
import type { UNetConfig } from "../unet/config.js";
import { sourceUNetKey, unetLayout, unetPrefixRules } from "../unet/keys.js";
import { UNet2DConditionModel } from "../unet/unet.js";

/** Which network a LoRA module patches. */
export type LoraComponent = "unet" | "textEncoder";

/** What one LoRA tensor is. */
export interface LoraKey {
  readonly component: LoraComponent;
  /** Canonical module path ("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"). */
  readonly path: string;
  readonly role: "down" | "up" | "alpha";
}

/** How a tensor name resolved: a LoRA factor, a tensor with no effect on this model, or nothing known. */
export type KeyResolution =
  | { readonly kind: "lora"; readonly key: LoraKey }
  | { readonly kind: "ignored" }
  | { readonly kind: "unsupported"; readonly what: string }
  | { readonly kind: "unknown" };

/** The modules of one model that LoRA names resolve against. */
export interface LoraTargets {
  readonly modules: Readonly<Record<LoraComponent, ReadonlyMap<string, AdaptableModule>>>;
  /** "unet:" / "textEncoder:" + underscore-joined path (diffusers and CompVis) → canonical path. */
  readonly joined: ReadonlyMap<string, string>;
  /** Text encoder layers the model has: LoRA modules on later layers (unused here) are ignored. */
  readonly textLayers: number;
}

function adaptable(build: (root: Scope) => unknown): Map<string, AdaptableModule> {
  const reg = new ParamRegistry();
  build(Scope.root(reg));
  return new Map(reg.modules);
}

const joinPath = (path: string) => path.replaceAll(".", "_");

/** Every LoRA-adaptable module of a U-Net and text encoder with these configs, with their kohya names. */
export function loraTargets(unet: UNetConfig, clip: ClipTextConfig): LoraTargets {
  const modules = {
    unet: adaptable((s) => new UNet2DConditionModel(s, unet)),
    textEncoder: adaptable((s) => new ClipTextEncoder(s, clip)),
  };
  const joined = new Map<string, string>();
  const rules = unetPrefixRules(unetLayout(unet));
  for (const path of modules.unet.keys()) {
    joined.set(`unet:${joinPath(path)}`, path);
    const compvis = sourceUNetKey(`${path}.weight`, rules);
    if (compvis !== undefined) joined.set(`unet:${joinPath(compvis.slice(0, -".weight".length))}`, path);
  }
  for (const path of modules.textEncoder.keys()) joined.set(`textEncoder:${joinPath(path)}`, path);
  return { modules, joined, textLayers: clip.numLayers };
}

const KOHYA_PREFIX: ReadonlyArray<readonly [string, LoraComponent | "sdxl2"]> = [
  ["lora_unet_", "unet"],
  ["lora_te1_", "textEncoder"],
  ["lora_te2_", "sdxl2"],
  ["lora_te_", "textEncoder"],
];

const KOHYA_ROLE: Readonly<Record<string, LoraKey["role"]>> = { "lora_down.weight": "down", "lora_up.weight": "up", alpha: "alpha" };

/** LyCORIS and other non-LoRA module kinds, by a tensor-name suffix they carry. */
const UNSUPPORTED: ReadonlyArray<readonly [RegExp, string]> = [
  [/(^|\.)lora_mid\.weight$/, "LoCon with Tucker decomposition (lora_mid)"],
  [/(^|\.)hada_/, "LyCORIS LoHa (hada_*)"],
  [/(^|\.)lokr_/, "LyCORIS LoKr (lokr_*)"],
  [/(^|\.)dora_scale$/, "DoRA (dora_scale)"],
  [/(^|\.)oft_|(^|\.)oft_blocks$/, "OFT (oft_*)"],
  [/(^|\.)(diff|diff_b)$/, "full-weight difference (diff)"],
  [/(^|\.)(w_norm|b_norm)$/, "norm-layer weights (w_norm)"],
  [/(^|\.)(a1\.weight|b1\.weight|a2\.weight|b2\.weight)$/, "GLoRA"],
  [/(^|\.)on_input$/, "(IA)³"],
];

function unsupported(name: string): string | undefined {
  return UNSUPPORTED.find(([re]) => re.test(name))?.[1];
}

/** Text encoder layer index of a path, if it is inside one. */
function textLayer(path: string): number | undefined {
  const m = /^text_model[._]encoder[._]layers[._](\d+)[._]/.exec(path);
  return m === null ? undefined : Number(m[1]);
}

function kohya(name: string, t: LoraTargets): KeyResolution | undefined {
  const hit = KOHYA_PREFIX.find(([p]) => name.startsWith(p));
  if (hit === undefined) return undefined;
  const [prefix, component] = hit;
  const dot = name.indexOf(".");
  const module = name.slice(prefix.length, dot < 0 ? undefined : dot);
  const suffix = dot < 0 ? "" : name.slice(dot + 1);
  const role = KOHYA_ROLE[suffix];
  if (role === undefined) return { kind: "unsupported", what: unsupported(`.${suffix}`) ?? `tensor '.${suffix}'` };
  if (component === "sdxl2") return { kind: "unsupported", what: "SDXL's second text encoder (lora_te2_)" };
  const path = t.joined.get(`${component}:${module}`);
  if (path !== undefined) return { kind: "lora", key: { component, path, role } };
  const layer = component === "textEncoder" ? textLayer(module) : undefined;
  return layer !== undefined && layer >= t.textLayers ? { kind: "ignored" } : { kind: "unknown" };
}

const PEFT_ROLES: ReadonlyArray<readonly [RegExp, LoraKey["role"], (m: RegExpExecArray) => string]> = [
  [/^(.*)\.processor\.(to_[qkv]|to_out)_lora\.down\.weight$/, "down", (m) => `${m[1]}.${m[2] === "to_out" ? "to_out.0" : m[2]}`],
  [/^(.*)\.processor\.(to_[qkv]|to_out)_lora\.up\.weight$/, "up", (m) => `${m[1]}.${m[2] === "to_out" ? "to_out.0" : m[2]}`],
  [/^(.*)\.lora_A(?:\.default)?\.weight$/, "down", (m) => m[1] ?? ""],
  [/^(.*)\.lora_B(?:\.default)?\.weight$/, "up", (m) => m[1] ?? ""],
  [/^(.*)\.(?:lora|lora_layer|lora_linear_layer)\.down\.weight$/, "down", (m) => m[1] ?? ""],
  [/^(.*)\.(?:lora|lora_layer|lora_linear_layer)\.up\.weight$/, "up", (m) => m[1] ?? ""],
  [/^(.*)\.alpha$/, "alpha", (m) => m[1] ?? ""],
];

function peft(name: string, t: LoraTargets): KeyResolution {
  for (const [re, role, modulePath] of PEFT_ROLES) {
    const m = re.exec(name);
    if (m === null) continue;
    let path = modulePath(m).replace(/^base_model\.model\./, "");
    let component: LoraComponent = path.startsWith("text_model.") ? "textEncoder" : "unet";
    if (path.startsWith("unet.")) [component, path] = ["unet", path.slice("unet.".length)];
    else if (path.startsWith("text_encoder.")) [component, path] = ["textEncoder", path.slice("text_encoder.".length)];
    if (t.modules[component].has(path)) return { kind: "lora", key: { component, path, role } };
    const layer = component === "textEncoder" ? textLayer(path) : undefined;
    return layer !== undefined && layer >= t.textLayers ? { kind: "ignored" } : { kind: "unknown" };
  }
  const what = unsupported(name);
  return what === undefined ? { kind: "unknown" } : { kind: "unsupported", what };
}

/** Resolves one tensor name of a LoRA file against the model's modules. */
export function resolveLoraKey(name: string, t: LoraTargets): KeyResolution {
  return kohya(name, t) ?? peft(name, t);
}
