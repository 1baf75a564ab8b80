/**
 * A1111's extra-network prompt tags for LoRA: `<lora:name>`, `<lora:name:weight>`,
 * `<lora:name:te:unet>` (text-encoder and U-Net multipliers) or named `te=`/`unet=` items;
 * `<lyco:…>` is the same. As in AUTOMATIC1111 (modules/extra_networks.py, `parse_prompt`), a tag is
 * `<type:item:item…>` and is cut out of the prompt, leaving the text around it as it was.
 */
import { InputError } from "../errors.js";

/** One LoRA named in a prompt. */
export interface LoraTag {
  readonly name: string;
  /** Text-encoder multiplier (and the U-Net's unless `unetWeight` is given); default 1. */
  readonly weight: number;
  readonly unetWeight?: number;
}

const TAG = /<(\w+):([^>]+)>/g;
const LORA_TYPES = new Set(["lora", "lyco"]);

function num(v: string, tag: string): number {
  const x = Number(v.trim());
  if (v.trim() === "" || !Number.isFinite(x)) throw new InputError(`LoRA weight '${v}' in ${tag} is not a number; write e.g. <lora:name:0.8>`);
  return x;
}

function parseTag(items: readonly string[], tag: string): LoraTag {
  const positional = items.filter((i) => !i.includes("="));
  const named = new Map(items.filter((i) => i.includes("=")).map((i) => [i.slice(0, i.indexOf("=")).trim(), i.slice(i.indexOf("=") + 1)] as const));
  const name = positional[0] ?? "";
  if (name.trim() === "") throw new InputError(`${tag} names no LoRA; write <lora:name:weight>`);
  const te = named.has("te") ? num(named.get("te") ?? "", tag) : positional[1] !== undefined ? num(positional[1], tag) : 1;
  const unet = named.has("unet") ? num(named.get("unet") ?? "", tag) : positional[2] !== undefined ? num(positional[2], tag) : undefined;
  return unet === undefined || unet === te ? { name, weight: te } : { name, weight: te, unetWeight: unet };
}

/** The prompt without its `<lora:…>` / `<lyco:…>` tags, and the LoRAs they name in order. Other `<type:…>` tags stay in the text. */
export function extractLoraTags(prompt: string): { prompt: string; loras: LoraTag[] } {
  const loras: LoraTag[] = [];
  const text = prompt.replace(TAG, (tag: string, type: string, body: string) => {
    if (!LORA_TYPES.has(type.toLowerCase())) return tag;
    loras.push(parseTag(body.split(":"), tag));
    return "";
  });
  return { prompt: text, loras };
}
