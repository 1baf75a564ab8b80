/** `sdts generate "<prompt>"`: text to image, with a progress bar; files numbered, never overwritten. */
import { defineCommand } from "citty";
import { loadModel, writeNumbered } from "../../index.js";
import { ProgressBar } from "../progress.js";
import { COMMON_ARGS, commonParams, loadOptions } from "./common.js";

export default defineCommand({
  meta: { name: "generate", description: "Make images from a text prompt" },
  args: {
    prompt: { type: "positional", description: "what to draw", required: true },
    ...COMMON_ARGS,
  },
  async run({ args }) {
    const model = await loadModel(args.model, loadOptions(args));
    try {
      const bar = new ProgressBar("sampling");
      const res = await model.txt2img({ ...commonParams(args), onProgress: (p) => bar.update(p.step, p.total) });
      for (const [i, png] of res.images.entries()) console.log(await writeNumbered(args.out, `${res.seeds[i] ?? 0}.png`, png));
    } finally {
      await model.dispose();
    }
  },
});
