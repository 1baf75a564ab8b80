/** Reading finished runs of earlier stages (VAE, CLIP) for the stages that build on them, and their inference graphs. */
import { join } from "node:path";
import { input } from "../graph/apply.js";
import { type CompiledGraph, compile } from "../graph/compile.js";
import type { Tensor } from "../graph/tensor.js";
import { pathExists, readJsonFile } from "../io/run-files.js";
import { openSafetensors } from "../io/safetensors.js";
import { loadTokenizerFiles } from "../io/tokenizer-files.js";
import { type ClipTextConfig, parseClipTextConfig } from "../models/clip/config.js";
import { ClipTextEncoder } from "../models/clip/text-encoder.js";
import { ClipTokenizer } from "../models/clip/tokenizer.js";
import { type VaeConfig, parseVaeConfig, vaeScaleFactor } from "../models/vae/config.js";
import type { UNetConfig } from "../models/unet/config.js";
import { pooledContextRows } from "../models/unet/text-context.js";
import { buildUNetGraph } from "../models/unet/unet.js";
import { VaeDecoder, VaeEncoder } from "../models/vae/vae.js";
import { ParamRegistry, Scope } from "../nn/scope.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Provider } from "../runtime/providers.js";
import { loadCheckpoint, readFloat32Tensors } from "./checkpoint.js";
import { RUN_FILES, readRunConfig } from "./run.js";

/** A finished VAE run (or an exported model's VAE): its config, weights and image size. */
export interface VaeRun {
  readonly config: VaeConfig;
  readonly json: Record<string, unknown>;
  readonly params: ReadonlyMap<string, HostTensor>;
  /** The side of the square images it was trained on. */
  readonly imageSize: number;
}

/** A finished CLIP run (or an exported model's text encoder): config, tokenizer folder and weights (a run's image tower included). */
export interface ClipRun {
  readonly config: ClipTextConfig;
  readonly json: Record<string, unknown>;
  readonly tokenizerDir: string;
  readonly tokenizer: ClipTokenizer;
  readonly params: ReadonlyMap<string, HostTensor>;
}

/** `dir/part` when `dir` is an exported diffusers model folder (model_index.json) with that part, else undefined. */
function modelPart(dir: string, part: string): string | undefined {
  return pathExists(join(dir, "model_index.json")) && pathExists(join(dir, part, "config.json")) ? join(dir, part) : undefined;
}

/** Every tensor of a safetensors file, widened to float32 (an exported model's fp16 weights). */
async function float32Weights(path: string): Promise<Map<string, HostTensor>> {
  const file = await openSafetensors(path);
  try {
    return await readFloat32Tensors(file);
  } finally {
    await file.close();
  }
}

/** Reads a VAE run folder, or the VAE of an exported model folder (e.g. models/default). */
export async function readVaeRun(dir: string): Promise<VaeRun> {
  const part = modelPart(dir, "vae");
  if (part !== undefined) {
    const json = await readJsonFile(join(part, "config.json"));
    const config = parseVaeConfig(json);
    return { config, json, params: await float32Weights(join(part, "diffusion_pytorch_model.safetensors")), imageSize: Number(json.sample_size ?? 64) };
  }
  const run = await readRunConfig(dir);
  const json = run.model as Record<string, unknown>;
  const ck = await loadCheckpoint(join(dir, RUN_FILES.checkpoint), "vae");
  return { config: parseVaeConfig(json), json, params: ck.params, imageSize: Number(run.imageSize ?? 64) };
}

/** Reads a CLIP run folder, or the text encoder and tokenizer of an exported model folder. */
export async function readClipRun(dir: string): Promise<ClipRun> {
  const part = modelPart(dir, "text_encoder");
  const [json, params] =
    part !== undefined
      ? [await readJsonFile(join(part, "config.json")), await float32Weights(join(part, "model.safetensors"))]
      : [(await readRunConfig(dir)).model as Record<string, unknown>, (await loadCheckpoint(join(dir, RUN_FILES.checkpoint), "clip")).params];
  const tokenizerDir = join(dir, "tokenizer");
  return { config: parseClipTextConfig(json), json, tokenizerDir, tokenizer: new ClipTokenizer(await loadTokenizerFiles(tokenizerDir)), params };
}

/** A graph whose parameters are fed on every run from `values`, with `run(inputs)`. */
export interface FedGraph {
  run(inputs: Record<string, HostTensor>, values?: ReadonlyMap<string, HostTensor>): Promise<Record<string, HostTensor>>;
  dispose(): Promise<void>;
}

/** Compiles `build` (declaring parameters on a fresh scope) and feeds it parameters from `values` (or a per-run override). */
export async function fedGraph(name: string, build: (s: Scope) => Record<string, Tensor>, values: ReadonlyMap<string, HostTensor>, provider?: Provider): Promise<FedGraph> {
  const reg = new ParamRegistry();
  const outputs = build(Scope.root(reg));
  const graph: CompiledGraph = await compile(outputs, { name, ...(provider ? { provider } : {}) });
  return {
    async run(inputs, override) {
      const feeds: Record<string, HostTensor> = { ...inputs };
      for (const k of reg.params.keys()) feeds[k] = (override?.get(k) ?? values.get(k)) as HostTensor;
      return graph.run(feeds);
    },
    dispose: () => graph.dispose(),
  };
}

/** The VAE encoder (posterior mean and std) for batches of `batch` images of `size`². */
export function vaeEncoderGraph(v: VaeRun, batch: number, size: number, provider?: Provider): Promise<FedGraph> {
  return fedGraph("vae-encode", (s) => {
    const p = new VaeEncoder(s, v.config).forward(input("image", "float32", [batch, 3, size, size]));
    return { mean: p.mean, std: p.std };
  }, v.params, provider);
}

/** The VAE decoder for batches of `batch` latents of `size / f`². */
export function vaeDecoderGraph(v: VaeRun, batch: number, size: number, provider?: Provider): Promise<FedGraph> {
  const h = size / vaeScaleFactor(v.config);
  return fedGraph("vae-decode", (s) => ({ image: new VaeDecoder(s, v.config).forward(input("latent", "float32", [batch, v.config.latentChannels, h, h])) }), v.params, provider);
}

/**
 * A U-Net for batches of `batch` square latents of side `size` under `contextLength` text positions
 * (buildUNetGraph's inputs: sample, timestep, encoder_hidden_states, and class_labels where it has a
 * class embedding); weights from `values`, or fed per run.
 */
export function unetGraph(name: string, c: UNetConfig, o: { batch: number; size: number; contextLength: number; values?: ReadonlyMap<string, HostTensor>; provider?: Provider | undefined }): Promise<FedGraph> {
  return fedGraph(name, (s) => buildUNetGraph(s, c, { batch: o.batch, height: o.size, width: o.size, contextLength: o.contextLength }), o.values ?? new Map(), o.provider);
}

/** The text feeds of unetGraph from a textEncoderGraph run: the context (the token rows, or the pooled state in every row for a `textContext: "pooled"` U-Net), and the pooled rows where the U-Net has a class embedding. */
export function unetTextFeeds(encoded: Readonly<Record<string, HostTensor>>, c: UNetConfig): Record<string, HostTensor> {
  const hidden = encoded.hidden as HostTensor;
  const [b, l, d] = hidden.shape as [number, number, number];
  const rows: HostTensor = c.textContext === "pooled" ? { dtype: "float32", shape: [b, l, d], data: pooledContextRows((encoded.pooled as HostTensor).data as Float32Array, b, l, d) } : hidden;
  const context = { encoder_hidden_states: rows };
  return c.classEmbed === undefined ? context : { ...context, class_labels: encoded.pooled as HostTensor };
}

/** The pooled (EOS) states of `texts`, [texts.length · hiddenSize], encoded `batch` at a time. */
export async function pooledStates(c: ClipRun, texts: readonly string[], batch = 64): Promise<Float32Array> {
  const [L, D] = [c.config.maxPositions, c.config.hiddenSize];
  const graph = await textEncoderGraph(c, batch);
  const out = new Float32Array(texts.length * D);
  try {
    for (let s = 0; s < texts.length; s += batch) {
      const ids = new BigInt64Array(batch * L);
      for (let k = 0; k < batch && s + k < texts.length; k++) c.tokenizer.encode(texts[s + k] ?? "").forEach((id, j) => (ids[k * L + j] = BigInt(id)));
      const pooled = (await graph.run({ input_ids: { dtype: "int64", shape: [batch, L], data: ids } })).pooled?.data as Float32Array;
      out.set(pooled.subarray(0, Math.min(batch, texts.length - s) * D), s * D);
    }
  } finally {
    await graph.dispose();
  }
  return out;
}

/** The text encoder: ids [batch, 77] → `hidden` (last_hidden_state) and `pooled` (the EOS row). */
export function textEncoderGraph(c: ClipRun, batch: number, provider?: Provider): Promise<FedGraph> {
  return fedGraph("text-encode", (s) => {
    const r = new ClipTextEncoder(s, c.config).forward(input("input_ids", "int64", [batch, c.config.maxPositions]));
    return { hidden: r.lastHiddenState, pooled: r.pooled };
  }, c.params, provider);
}
