/** Sample grids during U-Net training: fixed prompts, DDIM 20 steps with CFG 5, decoded by the frozen VAE. */
import type { ImageCaptionData } from "../io/image-folder.js";
import type { UNetConfig } from "../models/unet/config.js";
import { vaeScaleFactor } from "../models/vae/config.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Provider } from "../runtime/providers.js";
import { SD15_SCHEDULER_SETTINGS, parseSchedulerConfig } from "../schedulers/config.js";
import { INITIAL_STATE, createSchedule, scaleModelInput, step } from "../schedulers/index.js";
import { datasetRgb, gridPng, tensorImageRgb } from "./data.js";
import { type ClipRun, type VaeRun, textEncoderGraph, unetGraph, unetTextFeeds, vaeDecoderGraph } from "./frozen.js";
import { Rng } from "./rng.js";

/** What the grid sampler needs. */
export interface SamplerSetup {
  readonly vae: VaeRun;
  readonly clip: ClipRun;
  readonly unet: UNetConfig;
  readonly data: ImageCaptionData;
  readonly scale: number;
  /** The U-Net's target, `prediction_type` in diffusers' scheduler configs. */
  readonly prediction: "epsilon" | "v_prediction";
  readonly provider?: Provider | undefined;
}

/** Guidance scale of the training sample grids. */
export const GRID_CFG = 5;

/** Makes grids: top row the dataset images whose first caption is the prompt, bottom row the generated images. */
export async function unetSampler(o: SamplerSetup): Promise<{ grid(weights: ReadonlyMap<string, HostTensor>): Promise<Uint8Array>; dispose(): Promise<void> }> {
  const n = o.data.captions.length;
  const k = Math.min(8, n);
  const shown = Array.from({ length: k }, (_, i) => Math.floor((i * n) / k));
  const prompts = shown.map((i) => o.data.captions[i]?.[0] ?? "");
  const L = o.clip.config.maxPositions;
  const te = await textEncoderGraph(o.clip, 2 * k, o.provider);
  const ids = new BigInt64Array(2 * k * L);
  [...prompts.map(() => ""), ...prompts].forEach((p, r) => o.clip.tokenizer.encode(p).forEach((id, j) => (ids[r * L + j] = BigInt(id))));
  const cond = unetTextFeeds(await te.run({ input_ids: { dtype: "int64", shape: [2 * k, L], data: ids } }), o.unet);
  await te.dispose();
  const h = o.data.size / vaeScaleFactor(o.vae.config);
  const ch = o.unet.inChannels;
  const unet = await unetGraph("unet-sample", o.unet, { batch: 2 * k, size: h, contextLength: L, provider: o.provider });
  const dec = await vaeDecoderGraph(o.vae, k, o.data.size, o.provider);
  const schedule = createSchedule(parseSchedulerConfig(SD15_SCHEDULER_SETTINGS, { className: "DDIMScheduler", overrides: { prediction_type: o.prediction } }), 20);
  const per = ch * h * h;
  return {
    async grid(weights) {
      let x: Float32Array = new Rng(1234).normals(k * per).map((v) => v * schedule.initNoiseSigma);
      let state = INITIAL_STATE;
      for (let i = 0; i < schedule.calls; i++) {
        const xin = scaleModelInput(schedule, i, x);
        const both = new Float32Array(2 * k * per);
        both.set(xin, 0);
        both.set(xin, k * per);
        const t = new Float32Array(2 * k).fill(schedule.timesteps[i] ?? 0);
        const out = (await unet.run({ sample: { dtype: "float32", shape: [2 * k, ch, h, h], data: both }, timestep: { dtype: "float32", shape: [2 * k], data: t }, ...cond }, weights)).out?.data as Float32Array;
        const eps = new Float32Array(k * per);
        for (let j = 0; j < eps.length; j++) eps[j] = (out[j] ?? 0) + GRID_CFG * ((out[k * per + j] ?? 0) - (out[j] ?? 0));
        const r = step(schedule, i, x, eps, state);
        x = r.prevSample;
        state = r.state;
      }
      const img = (await dec.run({ latent: { dtype: "float32", shape: [k, ch, h, h], data: x.map((v) => v / o.scale) } })).image?.data as Float32Array;
      return gridPng([...shown.map((i) => datasetRgb(o.data, i)), ...shown.map((_, i) => tensorImageRgb(img, o.data.size, i))], o.data.size, k);
    },
    async dispose() {
      await unet.dispose();
      await dec.dispose();
    },
  };
}
