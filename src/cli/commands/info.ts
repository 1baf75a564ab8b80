/** `sdts info <checkpoint>`: the detected family, configs and a tensor summary. */
import { defineCommand } from "citty";
import { inspectModel, openSafetensors } from "../../index.js";

export default defineCommand({
  meta: { name: "info", description: "Show what a checkpoint is: family, prediction, configs, tensors" },
  args: { file: { type: "positional", description: "a .safetensors file or a diffusers folder", required: true } },
  async run({ args }) {
    if (args.file.toLowerCase().endsWith(".safetensors")) {
      const f = await openSafetensors(args.file);
      try {
        const dtypes = new Map<string, number>();
        let params = 0;
        for (const t of f.tensors.values()) {
          dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + 1);
          params += t.shape.reduce((a, b) => a * b, 1);
        }
        console.log(`${args.file}: ${f.tensors.size} tensors, ${(params / 1e6).toFixed(2)}M parameters`);
        console.log(`dtypes: ${[...dtypes].map(([d, n]) => `${d}×${n}`).join(", ")}`);
      } finally {
        await f.close();
      }
    }
    const info = await inspectModel(args.file);
    console.log(`family: ${info.family}, prediction: ${info.prediction}${info.inpainting ? ", inpainting (9-channel U-Net)" : ""}`);
    console.log(JSON.stringify(info.configs, null, 2));
  },
});
