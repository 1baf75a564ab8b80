/**
 * onnxruntime-node inference sessions behind a small wrapper: host tensors in and out,
 * ORT tensors released in `finally`, ORT errors wrapped with provider and graph name.
 *
 * A model loaded from a path reads external data relative to the model file's folder.
 * ORT refuses external-data locations that are absolute, contain `..`, or resolve (through
 * a symlink) outside that folder: "External data path escapes model directory". Hard links
 * and files copied into the folder work, so a `.safetensors` checkpoint can be hard-linked
 * beside a generated model whose initializers point at byte ranges inside it.
 * A model loaded from bytes resolves external data against the working directory.
 */
import os from "node:os";
import * as ort from "onnxruntime-node";
import { BackendError, ShapeError } from "../errors.js";
import { elementCount, isHostDType, type HostTensor } from "./host-tensor.js";
import { providerHint, requireProvider, type Provider } from "./providers.js";

/** How a session is created. */
export interface SessionOptions {
  /** Execution provider; checked before ORT is asked. */
  readonly provider: Provider;
  /** Graph name used in every error message (e.g. "unet", "vae-decoder"). */
  readonly graphName: string;
  /** intraOpNumThreads; defaults to `os.availableParallelism()`. */
  readonly threads?: number;
  /** ORT graph optimization level; defaults to "all". */
  readonly optimization?: "disabled" | "basic" | "extended" | "all";
  /**
   * Also write the optimized graph to `model`, its initializers to `externalData` (a file name
   * in the same folder), so a later session can load it without optimizing again.
   */
  readonly saveOptimized?: { readonly model: string; readonly externalData: string };
}

/** A loaded model ready to run; call `dispose()` when done. */
export interface Session {
  /** The graph name given at creation. */
  readonly graphName: string;
  /** The provider the session runs on. */
  readonly provider: Provider;
  /** The model's input names, in graph order. */
  readonly inputNames: readonly string[];
  /** The model's output names, in graph order. */
  readonly outputNames: readonly string[];
  /** Runs the model; returns the named outputs (all outputs when `outputNames` is omitted). */
  run(feeds: Readonly<Record<string, HostTensor>>, outputNames?: readonly string[]): Promise<Record<string, HostTensor>>;
  /** Runs the model writing each named output into the given preallocated tensor's buffer. */
  runInto(feeds: Readonly<Record<string, HostTensor>>, outputs: Readonly<Record<string, HostTensor>>): Promise<void>;
  /** Releases the native session; idempotent. Later runs throw BackendError. */
  dispose(): Promise<void>;
}

/** Loads a model (ONNX bytes, or a path whose folder holds its external data) on a provider. */
export async function createSession(model: Uint8Array | string, options: SessionOptions): Promise<Session> {
  const { provider, graphName } = options;
  requireProvider(provider, graphName);
  const ortOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    intraOpNumThreads: options.threads ?? os.availableParallelism(),
    graphOptimizationLevel: options.optimization ?? "all",
    executionMode: "sequential",
    // Idle worker threads would otherwise spin after a run; with several sessions taking turns
    // (text encoder, U-Net, VAE) on few cores that costs 30–50% (measured by bench/engine.ts).
    extra: { session: { "intra_op.allow_spinning": "0", ...saveOptions(options.saveOptimized) } },
  };
  const profile = process.env.SDTS_ORT_PROFILE;
  if (profile) {
    // Developer switch: onnxruntime writes a per-node timing JSON (<prefix>_<date>.json) when the session is released.
    ortOptions.enableProfiling = true;
    ortOptions.profileFilePrefix = `${profile}-${graphName}`;
  }
  if (options.saveOptimized) {
    ortOptions.optimizedModelFilePath = options.saveOptimized.model;
    // ORT warns that an NCHWc-optimized copy suits only this machine: the cache key says so already.
    ortOptions.logSeverityLevel = 3;
  }
  let inner: ort.InferenceSession;
  try {
    inner =
      typeof model === "string"
        ? await ort.InferenceSession.create(model, ortOptions)
        : await ort.InferenceSession.create(model, ortOptions);
  } catch (e) {
    const from = typeof model === "string" ? ` from ${model}` : "";
    throw wrapOrtError(e, `creating session${from}`, provider, graphName);
  }
  return new OrtSession(inner, provider, graphName);
}

/** Session config entries (under "session.") that put a saved optimized model's initializers in one file. */
function saveOptions(save: SessionOptions["saveOptimized"]): Record<string, string> {
  if (save === undefined) return {};
  return { optimized_model_external_initializers_file_name: save.externalData, optimized_model_external_initializers_min_size_in_bytes: "64" };
}

/** Wraps an ORT failure in a BackendError naming the action, graph and provider. */
function wrapOrtError(e: unknown, action: string, provider: Provider, graphName: string): BackendError {
  const msg = e instanceof Error ? e.message : String(e);
  const hint = providerHint(provider, msg);
  const text = `onnxruntime failed ${action} for graph "${graphName}" on ${provider}: ${msg.trim()}`;
  return new BackendError(hint ? `${text}. ${hint}` : text, { cause: e });
}

/** A HostTensor viewed as an ORT tensor over the same buffer (no copy). */
function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data, t.shape);
}

class OrtSession implements Session {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  private disposed = false;

  constructor(
    private readonly inner: ort.InferenceSession,
    readonly provider: Provider,
    readonly graphName: string,
  ) {
    this.inputNames = [...inner.inputNames];
    this.outputNames = [...inner.outputNames];
  }

  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    outputNames: readonly string[] = this.outputNames,
  ): Promise<Record<string, HostTensor>> {
    this.checkFeeds(feeds);
    this.checkNames(outputNames, this.outputNames, "output");
    const fetches: Record<string, null> = {};
    for (const n of outputNames) fetches[n] = null;
    return this.runOrt(feeds, fetches, [], (result) => {
      const out: Record<string, HostTensor> = {};
      for (const n of outputNames) {
        const t = result[n];
        if (!t) throw new BackendError(`graph "${this.graphName}" on ${this.provider} returned no output "${n}"`);
        out[n] = this.toHost(n, t);
      }
      return out;
    });
  }

  async runInto(
    feeds: Readonly<Record<string, HostTensor>>,
    outputs: Readonly<Record<string, HostTensor>>,
  ): Promise<void> {
    this.checkFeeds(feeds);
    const names = Object.keys(outputs);
    this.checkNames(names, this.outputNames, "output");
    const fetches: Record<string, ort.Tensor> = {};
    for (const n of names) {
      this.checkData(outputs[n]!, `output "${n}"`);
      fetches[n] = toOrt(outputs[n]!);
    }
    // ORT-node writes each result into the fetch tensor's buffer (verified in runtime.test.ts).
    await this.runOrt(feeds, fetches, Object.values(fetches), () => undefined);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    try {
      if (process.env.SDTS_ORT_PROFILE) this.inner.endProfiling();
      await this.inner.release();
    } catch (e) {
      throw wrapOrtError(e, "releasing the session", this.provider, this.graphName);
    }
  }

  /**
   * Runs ORT on checked feeds, hands the result to `read`, then disposes every ORT tensor
   * made for the run (feeds, fetches, results). `read` must take what it needs first.
   */
  private async runOrt<T>(
    feeds: Readonly<Record<string, HostTensor>>,
    fetches: Record<string, ort.Tensor | null>,
    fetchTensors: readonly ort.Tensor[],
    read: (result: Record<string, ort.Tensor>) => T,
  ): Promise<T> {
    const made: ort.Tensor[] = [...fetchTensors];
    try {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [n, t] of Object.entries(feeds)) {
        if (t === undefined) throw new BackendError(`graph "${this.graphName}" on ${this.provider}: input "${n}" was given no tensor`);
        this.checkData(t, `input "${n}"`);
        made.push((ortFeeds[n] = toOrt(t)));
      }
      let result: Record<string, ort.Tensor>;
      try {
        result = await this.inner.run(ortFeeds, fetches);
      } catch (e) {
        throw wrapOrtError(e, "running", this.provider, this.graphName);
      }
      made.push(...Object.values(result));
      return read(result);
    } finally {
      for (const t of made) t.dispose();
    }
  }

  /** Throws BackendError when disposed, or when feed names do not match the graph's inputs. */
  private checkFeeds(feeds: Readonly<Record<string, HostTensor>>): void {
    if (this.disposed) {
      throw new BackendError(
        `session for graph "${this.graphName}" on ${this.provider} was disposed; create a new session to run it`,
      );
    }
    this.checkNames(Object.keys(feeds), this.inputNames, "input");
    const missing = this.inputNames.filter((n) => !(n in feeds));
    if (missing.length > 0) {
      throw new BackendError(
        `graph "${this.graphName}" on ${this.provider} needs input(s) ${missing.map((n) => `"${n}"`).join(", ")}; ` +
          `got ${Object.keys(feeds).join(", ") || "none"}`,
      );
    }
  }

  /** Throws BackendError for names this graph does not have; `kind` is "input" or "output". */
  private checkNames(names: readonly string[], known: readonly string[], kind: string): void {
    const unknown = names.filter((n) => !known.includes(n));
    if (unknown.length === 0) return;
    throw new BackendError(
      `graph "${this.graphName}" on ${this.provider} has no ${kind} ${unknown.map((n) => `"${n}"`).join(", ")}; ` +
        `its ${kind}s are: ${known.join(", ")}`,
    );
  }

  /** Throws ShapeError when a tensor's data length does not match its shape. */
  private checkData(t: HostTensor, what: string): void {
    const want = elementCount(t.shape);
    if (t.data.length !== want) {
      throw new ShapeError(
        `graph "${this.graphName}" ${what}: shape [${t.shape.join(", ")}] needs ${want} ${t.dtype} elements (got ${t.data.length})`,
      );
    }
  }

  /** Copies nothing: takes the output's typed array as a HostTensor. */
  private toHost(name: string, t: ort.Tensor): HostTensor {
    if (!isHostDType(t.type)) {
      throw new BackendError(
        `graph "${this.graphName}" output "${name}" has dtype ${t.type}, which sdts does not read; cast it in the graph`,
      );
    }
    let data = t.data as HostTensor["data"];
    // With a native Float16Array (newer Node), ORT returns float16 in it; keep the raw bits.
    if (t.type === "float16" && !(data instanceof Uint16Array)) {
      const v = data as unknown as ArrayBufferView;
      data = new Uint16Array(v.buffer, v.byteOffset, v.byteLength / 2);
    }
    return { dtype: t.type, shape: [...t.dims], data } as HostTensor;
  }
}
