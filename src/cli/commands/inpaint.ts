/** `sdts inpaint <image> "<prompt>" --mask m.png | --outpaint l,r,t,b`: repaint part of an image or grow it. */
import { readFile } from "node:fs/promises";
import { defineCommand } from "citty";
import { InputError, loadModel, writeNumbered } from "../../index.js";
import { ProgressBar } from "../progress.js";
import { COMMON_ARGS, commonParams, loadOptions } from "./common.js";

function parseOutpaint(v: string): { left: number; right: number; top: number; bottom: number } {
  const parts = v.split(",").map((x) => Number(x.trim()));
  if (parts.length !== 4 || parts.some((n) => !Number.isInteger(n) || n < 0)) {
    throw new InputError(`--outpaint takes four whole numbers left,right,top,bottom (got '${v}')`);
  }
  const [left, right, top, bottom] = parts as [number, number, number, number];
  return { left, right, top, bottom };
}

export default defineCommand({
  meta: { name: "inpaint", description: "Repaint the white part of a mask, or extend the canvas (--outpaint)" },
  args: {
    image: { type: "positional", description: "input image (PNG/JPEG/WebP)", required: true },
    prompt: { type: "positional", description: "what to draw in the masked area", required: true },
    mask: { type: "string", description: "mask image: white = repaint" },
    outpaint: { type: "string", description: "grow the canvas: left,right,top,bottom pixels" },
    strength: { type: "string", description: "denoising strength 0–1 (default 1)" },
    "mask-blur": { type: "string", description: "mask blur in pixels (default 4)" },
    fill: { type: "string", description: "original | fill | latent-noise | latent-nothing" },
    "only-masked": { type: "boolean", description: "work on the mask's box at full resolution" },
    padding: { type: "string", description: "only-masked padding in pixels (default 32)" },
    ...COMMON_ARGS,
  },
  async run({ args }) {
    if (args.mask === undefined && args.outpaint === undefined) throw new InputError("give --mask <png> or --outpaint left,right,top,bottom");
    const image = new Uint8Array(await readFile(args.image));
    const mask = args.mask !== undefined ? new Uint8Array(await readFile(args.mask)) : undefined;
    const model = await loadModel(args.model, loadOptions(args));
    try {
      const bar = new ProgressBar("inpaint");
      const res = await model.inpaint({
        image,
        ...(mask ? { mask } : {}),
        ...(args.outpaint !== undefined ? { outpaint: parseOutpaint(args.outpaint) } : {}),
        ...commonParams(args),
        ...(args.strength !== undefined ? { strength: Number(args.strength) } : {}),
        maskBlur: args["mask-blur"] !== undefined ? Number(args["mask-blur"]) : 4,
        ...(args.fill !== undefined ? { fill: args.fill as "original" } : {}),
        ...(args["only-masked"] === true ? { onlyMasked: true } : {}),
        ...(args.padding !== undefined ? { onlyMaskedPadding: Number(args.padding) } : {}),
        onProgress: (p) => bar.update(p.step, p.total),
      });
      for (const [i, png] of res.images.entries()) console.log(await writeNumbered(args.out, `${res.seeds[i] ?? 0}.png`, png));
    } finally {
      await model.dispose();
    }
  },
});
