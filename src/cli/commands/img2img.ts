/** `sdts img2img <image> "<prompt>"`: redraw an image. */
import { readFile } from "node:fs/promises";
import { defineCommand } from "citty";
import { loadModel, writeNumbered } from "../../index.js";
import { ProgressBar } from "../progress.js";
import { COMMON_ARGS, commonParams, loadOptions } from "./common.js";

export default defineCommand({
  meta: { name: "img2img", description: "Redraw an image guided by a prompt" },
  args: {
    image: { type: "positional", description: "input image (PNG/JPEG/WebP)", required: true },
    prompt: { type: "positional", description: "what to draw", required: true },
    strength: { type: "string", description: "denoising strength 0–1 (default 0.75)" },
    resize: { type: "string", description: "just-resize | crop-and-resize | resize-and-fill" },
    ...COMMON_ARGS,
  },
  async run({ args }) {
    const image = new Uint8Array(await readFile(args.image));
    const model = await loadModel(args.model, loadOptions(args));
    try {
      const bar = new ProgressBar("img2img");
      const res = await model.img2img({
        image,
        ...commonParams(args),
        ...(args.strength !== undefined ? { strength: Number(args.strength) } : {}),
        ...(args.resize !== undefined ? { resizeMode: args.resize as "just-resize" } : {}),
        onProgress: (p) => bar.update(p.step, p.total),
      });
      for (const [i, png] of res.images.entries()) console.log(await writeNumbered(args.out, `${res.seeds[i] ?? 0}.png`, png));
    } finally {
      await model.dispose();
    }
  },
});
