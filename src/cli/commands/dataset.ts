/** `sdts dataset emoji <out-dir>`: builds the emoji training set (images + same-named .txt captions). */
import { defineCommand } from "citty";
import { buildEmojiDataset } from "../../index.js";
import { ProgressBar } from "../progress.js";

const emoji = defineCommand({
  meta: { name: "emoji", description: "Noto + Twemoji 64×64 PNGs on white with captions, from the emoji-datasource-google/-twitter npm packages (npm install --no-save emoji-datasource-google emoji-datasource-twitter)" },
  args: { out: { type: "positional", description: "output folder", required: true } },
  async run({ args }) {
    const bar = new ProgressBar("emoji");
    const r = await buildEmojiDataset(args.out, { onProgress: (done, total) => bar.update(done, total) });
    const styles = Object.entries(r.perStyle).map(([s, n]) => `${n} ${s}`).join(", ");
    console.log(`${args.out}: ${r.images} images (${styles})${r.missing > 0 ? `; ${r.missing} listed images were missing from the packages` : ""}`);
  },
});

export default defineCommand({
  meta: { name: "dataset", description: "Build a training set in the common layout (image + same-named .txt)" },
  subCommands: { emoji },
});
