/** Prompt → U-Net context, with the unconditional (negative) rows first as diffusers batches them. */
import { extractLoraTags } from "./lora-tags.js";
import type { Components, Tensor } from "./types.js";

/** Repeats each row of a [k, L, D] tensor `times` times, row-major: [a, a, b, b] for times 2. */
export function repeatRows(x: Tensor, times: number): Tensor {
  const [k, ...rest] = x.shape as [number, ...number[]];
  const per = rest.reduce((a, b) => a * b, 1);
  const out = new Float32Array(k * times * per);
  for (let r = 0; r < k; r++) for (let t = 0; t < times; t++) out.set(x.data.subarray(r * per, (r + 1) * per), (r * times + t) * per);
  return { data: out, shape: [k * times, ...rest] };
}

/** Context [2·batch, L, D] = [negative × batch, prompt × batch] when guided, else [prompt × batch]. */
export async function encodePrompts(c: Components, prompt: string, negative: string, batch: number, guided: boolean): Promise<Tensor> {
  // <lora:…> tags choose LoRAs (Model applies them); they are not text to encode.
  const [p, n] = [extractLoraTags(prompt).prompt, extractLoraTags(negative).prompt];
  const ids = guided ? [c.tokenizer.encode(n), c.tokenizer.encode(p)] : [c.tokenizer.encode(p)];
  const emb = await c.textEncoder.encode(ids);
  return repeatRows(emb, batch);
}
