/** Arguments shared by the generating commands, and their conversion to pipeline parameters. */
import { InputError, type LoadModelOptions, type Provider } from "../../index.js";

/** citty argument definitions common to generate, img2img and inpaint. */
export const COMMON_ARGS = {
  model: { type: "string", description: "a .safetensors checkpoint or a diffusers folder (default: the embedded model)", default: "default" },
  negative: { type: "string", description: "negative prompt", default: "" },
  steps: { type: "string", description: "sampling steps (default 20)" },
  cfg: { type: "string", description: "classifier-free guidance scale (default: the model's, 7 unless it names one)" },
  sampler: { type: "string", description: "sampler, A1111 name (default: the model's, Euler a unless it names one)" },
  seed: { type: "string", description: "seed; -1 = random (default)" },
  width: { type: "string", description: "width in pixels, a multiple of 8" },
  height: { type: "string", description: "height in pixels, a multiple of 8" },
  batch: { type: "string", description: "images per run (default 1)" },
  out: { type: "string", description: "output folder (default ./outputs)", default: "outputs" },
  provider: { type: "string", description: "cpu | webgpu | cuda (default cpu)", default: "cpu" },
  "lora-dir": { type: "string", description: "folder of LoRA .safetensors files, used by <lora:name:weight> in the prompt" },
  "embeddings-dir": { type: "string", description: "folder of textual-inversion embeddings (.safetensors), used by file name in the prompt" },
  "plain-prompt": { type: "boolean", description: "read the prompt as plain text (no A1111 (x:1.2), [a:b:N], AND syntax)" },
} as const;

/** loadModel options from --provider, --lora-dir and --embeddings-dir. */
export function loadOptions(args: Record<string, unknown>): LoadModelOptions & { provider: Provider } {
  const s = (k: string) => (typeof args[k] === "string" ? (args[k] as string) : undefined);
  const loraDir = s("lora-dir");
  const embeddingsDir = s("embeddings-dir");
  if (loraDir?.trim() === "") throw new InputError("--lora-dir must be a folder path");
  if (embeddingsDir?.trim() === "") throw new InputError("--embeddings-dir must be a folder path");
  return {
    // loadModel checks the provider's name.
    provider: (s("provider") ?? "cpu") as Provider,
    ...(loraDir !== undefined ? { loraDir } : {}),
    ...(embeddingsDir !== undefined ? { embeddingsDir } : {}),
  };
}

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new InputError(`--${name} must be a number (got '${v}')`);
  return n;
}

/** Pipeline parameters from the common arguments; absent ones stay absent (pipeline defaults). */
export function commonParams(args: Record<string, unknown>): {
  prompt: string;
  negativePrompt: string;
  steps?: number;
  cfgScale?: number;
  sampler?: string;
  seed?: number;
  width?: number;
  height?: number;
  batchSize?: number;
  promptSyntax: "plain" | "a1111";
} {
  const s = (k: string) => (typeof args[k] === "string" ? (args[k] as string) : undefined);
  const out: ReturnType<typeof commonParams> = {
    prompt: s("prompt") ?? "",
    negativePrompt: s("negative") ?? "",
    promptSyntax: args["plain-prompt"] === true ? "plain" : "a1111",
  };
  const steps = num(s("steps"), "steps");
  const cfg = num(s("cfg"), "cfg");
  const seed = num(s("seed"), "seed");
  const width = num(s("width"), "width");
  const height = num(s("height"), "height");
  const batch = num(s("batch"), "batch");
  if (steps !== undefined) out.steps = steps;
  if (cfg !== undefined) out.cfgScale = cfg;
  if (s("sampler") !== undefined) out.sampler = s("sampler");
  if (seed !== undefined) out.seed = seed;
  if (width !== undefined) out.width = width;
  if (height !== undefined) out.height = height;
  if (batch !== undefined) out.batchSize = batch;
  return out;
}
