/**
 * A1111's LoRA and textual-inversion lists (/sdapi/v1/loras, refresh-loras, embeddings), from the
 * loaded model's folders. Shapes follow A1111's Lora extension api
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/39ec4f06ffb2c26e1298b2c5d80874dc3fd693ac/extensions-builtin/Lora/scripts/lora_script.py)
 * and api.py's get_embeddings
 * (https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0050a35429b824cbb0a794694358fb32ce487ac4/modules/api/api.py).
 */
import type { EmbeddingList } from "../index.js";
import type { ServerContext } from "./context.js";

/** GET loras: `[{ name, alias, path, metadata }]` as listed when the model loaded or at the last refresh; an unreadable file adds `error` (an sdts field). */
export function loraItems(ctx: ServerContext): unknown {
  return (ctx.queue.model?.loras ?? []).map((l) => ({ name: l.name, alias: l.alias, path: l.path, metadata: { ...l.metadata }, ...(l.error === undefined ? {} : { error: l.error }) }));
}

/** POST refresh-loras: re-reads the LoRA folder; answers null as A1111 does. */
export async function refreshLoras(ctx: ServerContext): Promise<null> {
  await ctx.queue.refreshLoras();
  return null;
}

/**
 * GET embeddings: `{ loaded: { name: item }, skipped: { name: item } }`. sdts knows no training
 * step or source checkpoint (null); a skipped file was never read, so its `shape` and `vectors`
 * are 0 and `reason` (an sdts field) says why it was skipped.
 */
export function embeddingItems(ctx: ServerContext): unknown {
  const list: EmbeddingList = ctx.queue.model?.embeddings ?? { loaded: [], skipped: [] };
  const none = { step: null, sd_checkpoint: null, sd_checkpoint_name: null };
  return {
    loaded: Object.fromEntries(list.loaded.map((e) => [e.name, { ...none, shape: e.shape, vectors: e.vectors }])),
    skipped: Object.fromEntries(list.skipped.map((e) => [e.name, { ...none, shape: 0, vectors: 0, reason: e.reason }])),
  };
}
