/** `sdts generate "<prompt>"`: text to image, with a progress bar; files numbered, never overwritten. */
import { defineCommand } from "citty";
import { InputError } from "../../errors.js";
import { loadModel, writeNumbered } from "../../index.js";
import { ProgressBar } from "../progress.js";

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new InputError(`--${name} must be a number (got '${v}')`);
  return n;
}

export default defineCommand({
  meta: { name: "generate", description: "Make images from a text prompt" },
  args: {
    prompt: { type: "positional", description: "what to draw", required: true },
    model: { type: "string", description: "a .safetensors checkpoint or a diffusers folder (default: the embedded model)", default: "default" },
    negative: { type: "string", description: "negative prompt", default: "" },
    steps: { type: "string", description: "sampling steps (default 20)" },
    cfg: { type: "string", description: "classifier-free guidance scale (default 7)" },
    sampler: { type: "string", description: "sampler, A1111 name (default Euler a)" },
    seed: { type: "string", description: "seed; -1 = random (default)" },
    width: { type: "string", description: "width in pixels, a multiple of 8" },
    height: { type: "string", description: "height in pixels, a multiple of 8" },
    batch: { type: "string", description: "images per run (default 1)" },
    out: { type: "string", description: "output folder (default ./outputs)", default: "outputs" },
    provider: { type: "string", description: "cpu | webgpu | cuda (default cpu)", default: "cpu" },
  },
  async run({ args }) {
    const model = await loadModel(args.model, { provider: args.provider as "cpu" });
    try {
      const bar = new ProgressBar("sampling");
      const steps = num(args.steps, "steps");
      const res = await model.txt2img({
        prompt: args.prompt,
        negativePrompt: args.negative,
        ...(steps !== undefined ? { steps } : {}),
        ...opt("cfgScale", num(args.cfg, "cfg")),
        ...(args.sampler !== undefined ? { sampler: args.sampler } : {}),
        ...opt("seed", num(args.seed, "seed")),
        ...opt("width", num(args.width, "width")),
        ...opt("height", num(args.height, "height")),
        ...opt("batchSize", num(args.batch, "batch")),
        onProgress: (p) => bar.update(p.step, p.total),
      });
      for (const [i, png] of res.images.entries()) {
        const path = await writeNumbered(args.out, `${res.seeds[i] ?? 0}.png`, png);
        console.log(path);
      }
    } finally {
      await model.dispose();
    }
  },
});

function opt<K extends string>(key: K, v: number | undefined): Partial<Record<K, number>> {
  return v === undefined ? {} : ({ [key]: v } as Record<K, number>);
}
