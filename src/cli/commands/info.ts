/** `sdts info <file>`: what a checkpoint holds. */
import { defineCommand } from "citty";
import { openSafetensors } from "../../io/safetensors.js";

export default defineCommand({
  meta: { name: "info", description: "Print the tensors of a .safetensors checkpoint: count, dtypes, parameters" },
  args: { file: { type: "positional", description: "path to a .safetensors file", required: true } },
  async run({ args }) {
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
  },
});
