/** The HTTP thread's handle on the generation worker: spawn, load, run, cancel, restart after a crash. */
import { Worker } from "node:worker_threads";
import type { LoraInfo } from "../index.js";
import { CANCEL_SLOT, type FromWorker, type LoadOptions, type LoadedModel, type PassProgress, type RunParams, type RunResult, type ToWorker } from "./protocol.js";

/** An error raised inside the worker, with the library's error name (InputError, CheckpointError, …). */
export class WorkerError extends Error {
  constructor(
    readonly errorName: string,
    message: string,
  ) {
    super(message);
  }
}

/** Progress of a run, as the worker reports it. */
export interface RunProgress extends PassProgress {
  readonly preview?: Uint8Array;
}

interface Pending {
  resolve: (msg: FromWorker) => void;
  reject: (e: Error) => void;
  onProgress?: (p: RunProgress) => void;
}

/** Drops the flags that load tsx: a worker started from a .ts file registers tsx itself (see spawn). */
function workerExecArgv(): string[] {
  const out: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? "";
    const next = args[i + 1] ?? "";
    if ((a === "--import" || a === "--require" || a === "-r" || a === "--loader") && next.includes("tsx")) i++;
    else if (!a.includes("tsx")) out.push(a);
  }
  return out;
}

/**
 * Starts the worker. From dist (.js) it is a plain worker file; from source (.ts, under tsx)
 * `--import tsx` in execArgv does not reach a worker's entry module on Node 20, so a tiny
 * bootstrap registers tsx's ESM hooks first and then imports worker.ts.
 */
function spawn(flags: SharedArrayBuffer): Worker {
  const fromSource = import.meta.url.endsWith(".ts");
  const target = new URL(fromSource ? "./worker.ts" : "./worker.js", import.meta.url);
  const opts = { workerData: { flags }, execArgv: workerExecArgv() };
  if (!fromSource) return new Worker(target, opts);
  const api = import.meta.resolve("tsx/esm/api");
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(target.href)}); });`;
  return new Worker(boot, { ...opts, eval: true });
}

/** One worker thread running one request at a time; restarts (and reloads the last model) if it dies. */
export class GenerationWorker {
  private worker: Worker | undefined;
  private readonly flags = new SharedArrayBuffer(4);
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private lastLoad: { source: string; options: LoadOptions } | undefined;
  private closed = false;

  /** Loads a model in the worker (replacing the current one once the new one is ready). */
  async load(source: string, options: LoadOptions): Promise<LoadedModel> {
    const msg = await this.request({ type: "load", seq: 0, source, options });
    if (msg.type !== "loaded") throw new Error(`unexpected worker reply ${msg.type}`);
    this.lastLoad = { source, options };
    return msg.model;
  }

  /**
   * Re-lists the loaded model's LoRA folder. Not queued: it only reads file headers, so it may run
   * beside a generation. After a crash it does not reload the model (only the queue loads models).
   */
  async listLoras(): Promise<LoraInfo[]> {
    if (this.worker === undefined) throw new WorkerError("WorkerCrash", "the generation worker is not running; it restarts with the next job");
    const msg = await this.request({ type: "list-loras", seq: 0 });
    if (msg.type !== "loras") throw new Error(`unexpected worker reply ${msg.type}`);
    return msg.loras;
  }

  /** Runs txt2img, img2img or inpainting (by `params.kind`); resolves to the result, or "cancelled" after `cancel(seq)`. `started` gets the run's seq. */
  async run(params: RunParams, previewEvery: number, onProgress: (p: RunProgress) => void, started: (seq: number) => void): Promise<RunResult | "cancelled"> {
    if (this.worker === undefined && this.lastLoad !== undefined) await this.load(this.lastLoad.source, this.lastLoad.options);
    const msg = await this.request({ type: "run", seq: 0, params, previewEvery }, onProgress, started);
    if (msg.type === "cancelled") return "cancelled";
    if (msg.type !== "done") throw new Error(`unexpected worker reply ${msg.type}`);
    return msg.result;
  }

  /** Asks the run `seq` to stop after its current step. */
  cancel(seq: number): void {
    Atomics.store(new Int32Array(this.flags), CANCEL_SLOT, seq);
  }

  /** Stops the worker thread. */
  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }

  private request(msg: ToWorker, onProgress?: (p: RunProgress) => void, started?: (seq: number) => void): Promise<FromWorker> {
    if (this.closed) return Promise.reject(new Error("the server is shutting down"));
    const seq = ++this.seq;
    const w = this.ensureWorker();
    return new Promise<FromWorker>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject, ...(onProgress ? { onProgress } : {}) });
      started?.(seq);
      w.postMessage({ ...msg, seq });
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = spawn(this.flags);
    w.unref();
    w.on("message", (m: FromWorker) => this.receive(m));
    const fail = (e: Error) => {
      if (this.worker !== w) return;
      this.worker = undefined;
      for (const [seq, p] of this.pending) {
        this.pending.delete(seq);
        p.reject(new WorkerError("WorkerCrash", `the generation worker stopped (${e.message}); it restarts with the next job`));
      }
    };
    w.on("error", fail);
    w.on("exit", (code) => fail(new Error(`exit code ${code}`)));
    this.worker = w;
    return w;
  }

  private receive(m: FromWorker): void {
    const p = this.pending.get(m.seq);
    if (p === undefined) return;
    if (m.type === "progress") {
      p.onProgress?.({ ...m.progress, ...(m.preview ? { preview: m.preview } : {}) });
      return;
    }
    this.pending.delete(m.seq);
    if (m.type === "error") p.reject(new WorkerError(m.name, m.message));
    else p.resolve(m);
  }
}
