/** The three networks as runners over per-shape compiled graphs. */
import { ConfigError, ShapeError } from "../errors.js";
import { input } from "../graph/apply.js";
import type { ClipTokenizer } from "../models/clip/tokenizer.js";
import { EXTRA_TOKENS_INPUT, clipTextGraph } from "../models/clip/text-encoder.js";
import { pooledContextRows } from "../models/unet/text-context.js";
import { snapToCaptions } from "../models/clip/caption-prior.js";
import { buildUNetGraph } from "../models/unet/unet.js";
import { vaeScaleFactor } from "../models/vae/config.js";
import { splitVaeWeights } from "../models/vae/keys.js";
import { VaeDecoder, VaeEncoder } from "../models/vae/vae.js";
import type { Provider } from "../runtime/providers.js";
import type { LoraPlan } from "../models/lora/lora.js";
import type { ModelParts } from "./load-model.js";
import { type ExtraFeeds, ShapeCache, fromHost, graphFeeds, hostF32, idsTensor, loraFeeds } from "./runners.js";
import type { Components, Tensor, TextEncoderRunner, UNetRunner } from "./types.js";

/**
 * Batch 0 in a shape key stands for the symbolic batch "B": one session serves every batch
 * size (CFG's doubled batch included), so a model's weights are held once per resolution.
 */
function dim(b: number | undefined): number | string {
  return b === undefined || b === 0 ? "B" : b;
}

/** Textual-inversion vectors appended to the text encoder's token table: [count, width] row-major. */
export interface ExtraTokens {
  readonly count: number;
  readonly table: Float32Array;
}

/** The same components with LoRA branches in the text encoder and U-Net, and infotext entries for them. */
export type WithLoras = (plans: { readonly unet: LoraPlan | undefined; readonly textEncoder: LoraPlan | undefined }, infotext: Readonly<Record<string, string>>) => Components;

/** Components, a function releasing their sessions, and LoRA views sharing the same sessions. */
export function makeComponents(
  name: string,
  p: ModelParts,
  tokenizer: ClipTokenizer,
  provider: Provider,
  extraTokens?: ExtraTokens,
): { components: Components; dispose: () => Promise<void>; withLoras: WithLoras } {
  const classDim = p.unet.classEmbed?.inputDim;
  if (classDim !== undefined && classDim !== p.clip.hiddenSize) {
    throw new ConfigError(`${name}: the U-Net's class embedding reads ${classDim}-wide class_labels, but sdts feeds it the text encoder's pooled state (${p.clip.hiddenSize} wide); U-Nets conditioned on other vectors (unCLIP image embeddings) are not supported`);
  }
  const extraTokenCount = extraTokens?.count ?? 0;
  const clip = new ShapeCache("text-encoder", (root, [b, l]) => clipTextGraph(p.clip, { batch: dim(b), length: l ?? 77, extraTokenCount })(root), p.clipWeights, provider);
  const tiFeeds: ExtraFeeds = extraTokens && extraTokenCount > 0 ? { [EXTRA_TOKENS_INPUT]: { dtype: "float32", shape: [extraTokenCount, p.clip.hiddenSize], data: extraTokens.table } } : {};
  const unet = new ShapeCache(
    "unet",
    (root, [b, , h, w, l, maps]) => buildUNetGraph(root, p.unet, { batch: dim(b), height: h ?? 8, width: w ?? 8, contextLength: l ?? 77, attnMaps: maps === 1 }),
    p.unetWeights,
    provider,
  );
  const vaeW = splitVaeWeights(p.vaeWeights);
  const dec = new ShapeCache(
    "vae-decoder",
    (root, [b, c, h, w]) => ({ image: new VaeDecoder(root, p.vae).forward(input("latent", "float32", [dim(b), c ?? 4, h ?? 8, w ?? 8])) }),
    vaeW.decoder,
    provider,
  );
  const enc = new ShapeCache(
    "vae-encoder",
    (root, [b, c, h, w]) => {
      const post = new VaeEncoder(root, p.vae).forward(input("image", "float32", [dim(b), c ?? 3, h ?? 8, w ?? 8]));
      return { mean: post.mean, std: post.std };
    },
    vaeW.encoder,
    provider,
  );
  // Strict loading up front: missing, unexpected and mis-shaped tensors are reported by loadModel.
  clip.check([1, p.clip.maxPositions]);
  unet.check([1, p.unet.inChannels, 8, 8, 77, 0]);
  dec.check([1, p.vae.latentChannels, 8, 8]);
  enc.check([1, 3, 8 * vaeScaleFactor(p.vae), 8 * vaeScaleFactor(p.vae)]);
  const encodeImage = async (image: Tensor) => {
    const g = await enc.get([0, ...image.shape.slice(1)]);
    const out = await g.run({ image: hostF32(image) });
    return { mean: fromHost(out.mean, "vae encoder"), std: fromHost(out.std, "vae encoder") };
  };
  const runUnet = async (latent: Tensor, timestep: number | readonly number[], context: Tensor, pooled: Tensor | undefined, maps: boolean, lora?: LoraPlan, extra: ExtraFeeds = {}) => {
    const [b, c, h, w] = latent.shape as [number, number, number, number];
    const g = await unet.get([0, c, h, w, context.shape[1] ?? 77, maps ? 1 : 0], lora);
    const ts = typeof timestep === "number" ? new Float32Array(b).fill(timestep) : Float32Array.from(timestep);
    const feeds = { ...graphFeeds(g, extra), sample: hostF32(latent), timestep: { dtype: "float32", shape: [b], data: ts }, encoder_hidden_states: hostF32(context) } as const;
    if (classDim === undefined) return g.run(feeds);
    if (pooled === undefined || pooled.shape[0] !== b || pooled.shape[1] !== classDim) {
      throw new ShapeError(`${name}: this U-Net reads each prompt's pooled text state (class_labels [${b}, ${classDim}]); got ${pooled === undefined ? "none" : `[${pooled.shape.join(", ")}]`}`);
    }
    return g.run({ ...feeds, class_labels: hostF32(pooled) });
  };
  const textEncoderRunner = (lora?: LoraPlan): TextEncoderRunner => {
    const extra = { ...tiFeeds, ...loraFeeds(lora) };
    const encodeWithPooled = async (ids: number[][]) => {
      const g = await clip.get([0, ids[0]?.length ?? 77], lora);
      const out = await g.run({ ...graphFeeds(g, extra), input_ids: idsTensor(ids) });
      const context = fromHost(out.last_hidden_state, "text encoder");
      const pooled = fromHost(out.pooled, "text encoder pooled");
      if (p.unet.textContext !== "pooled") return { context, pooled };
      // a U-Net trained on the pooled state in every context row (see UNetConfig.textContext)
      const [k, l, d] = context.shape as [number, number, number];
      const rows = Float32Array.from(pooled.data);
      const prior = p.captionPrior;
      // Each prompt's state snapped onto the training captions' (caption-prior.ts), except the empty
      // prompt's (EOS right after BOS), which the U-Net trained on as itself.
      if (prior) ids.forEach((row, r) => row[1] !== tokenizer.eosId && rows.set(snapToCaptions(prior, rows.subarray(r * d, (r + 1) * d)), r * d));
      return { context: { data: pooledContextRows(rows, k, l, d), shape: [k, l, d] }, pooled };
    };
    return {
      encode: async (ids) => (await encodeWithPooled(ids)).context,
      encodeWithPooled,
    };
  };
  const unetRunner = (lora?: LoraPlan): UNetRunner => {
    const extra = loraFeeds(lora);
    return {
      inChannels: p.unet.inChannels,
      needsPooled: classDim !== undefined,
      textContext: p.unet.textContext ?? "tokens",
      predict: async (latent, timestep, context, pooled) => fromHost((await runUnet(latent, timestep, context, pooled, false, lora, extra)).out, "unet"),
      async predictWithAttention(latent, timestep, context, pooled) {
        const out = await runUnet(latent, timestep, context, pooled, true, lora, extra);
        return { out: fromHost(out.out, "unet"), attention: fromHost(out.attn_maps, "unet attention") };
      },
    };
  };
  const components: Components = {
    name,
    tokenizer,
    prediction: p.prediction,
    schedulerConfig: p.scheduler,
    textEncoder: textEncoderRunner(),
    unet: unetRunner(),
    vae: {
      scalingFactor: p.vae.scalingFactor,
      downscale: vaeScaleFactor(p.vae),
      latentChannels: p.vae.latentChannels,
      encode: async (image) => (await encodeImage(image)).mean,
      encodeDistribution: encodeImage,
      async decode(latent) {
        const g = await dec.get([0, ...latent.shape.slice(1)]);
        const out = await g.run({ latent: hostF32(latent) });
        return fromHost(out.image, "vae decoder");
      },
    },
  };
  const dispose = async () => {
    await clip.dispose();
    await unet.dispose();
    await dec.dispose();
    await enc.dispose();
  };
  const withLoras: WithLoras = (plans, infotext) => ({
    ...components,
    textEncoder: textEncoderRunner(plans.textEncoder),
    unet: unetRunner(plans.unet),
    infotext: { ...components.infotext, ...infotext },
  });
  return { components, dispose, withLoras };
}
