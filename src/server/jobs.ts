/**
 * The job queue: FIFO, one job at a time on the one worker (as A1111 and ComfyUI run one
 * generation per model). A full queue is a 503 with Retry-After; a queued job can be
 * cancelled outright, a running one stops after its current step. Model loads go through the
 * same queue, so a switch never lands in the middle of a generation.
 */
import { HttpError } from "./http.js";
import { Job, type JobSpec } from "./job.js";
import type { Outputs } from "./outputs.js";
import { passesOf } from "./passes.js";
import type { LoraInfo } from "../index.js";
import { type LoadOptions, type LoadedModel, NO_MODEL, type RunParams } from "./protocol.js";
import { type GenerationWorker, type RunProgress, WorkerError } from "./worker-client.js";

/** Queue settings. */
export interface QueueOptions {
  /** Jobs that may wait behind the running one before new ones get 503. */
  readonly queueLimit: number;
  /** Preview every n sampler steps (0: none); A1111's show_progress_every_n_steps. */
  previewEvery: number;
  /** How models are loaded: provider, LoRA and embeddings folders. */
  readonly load: LoadOptions;
  readonly outputs: Outputs;
}

const KEEP_FINISHED = 64;
const KEEP_HEAVY = 8;

/** The FIFO of jobs in front of the generation worker. */
export class JobQueue {
  private readonly waiting: Job[] = [];
  private readonly jobs = new Map<string, Job>();
  private readonly durations: number[] = [];
  private closed = false;
  /** The running job, and the last generation started (A1111's progress state outlives the job). */
  current: Job | undefined;
  lastStarted: Job | undefined;
  /** The loaded model, or why there is none. */
  model: LoadedModel | undefined;
  modelError = "no model is loaded; start the server with --model <file.safetensors | diffusers folder>, or POST /sdapi/v1/options {\"sd_model_checkpoint\": \"<path or listed model>\"}";

  constructor(
    private readonly worker: GenerationWorker,
    readonly opts: QueueOptions,
  ) {}

  /** Queues a job; a generation gets 503 when the queue is full or no model is (being) loaded. */
  submit(spec: JobSpec): Job {
    if (this.closed) throw new HttpError(503, "shutting_down", "the server is shutting down");
    if (spec.kind === "generate") {
      const waitingGen = this.waiting.filter((j) => j.spec.kind === "generate").length;
      if (waitingGen >= this.opts.queueLimit) {
        const secs = this.retryAfter();
        throw new HttpError(503, "queue_full", `the queue is full (${waitingGen} jobs waiting, limit ${this.opts.queueLimit}); retry in about ${secs} s`, undefined, { "retry-after": String(secs) });
      }
      if (this.model === undefined && !this.loadPending()) throw new HttpError(503, "no_model", this.modelError);
    }
    const job = new Job(spec);
    this.jobs.set(job.id, job);
    this.waiting.push(job);
    this.pump();
    return job;
  }

  /** A job by id (finished ones are kept for a while). */
  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  /** Jobs ahead of this one, counting the running one; 0 when it runs. */
  position(job: Job): number {
    const i = this.waiting.indexOf(job);
    return i < 0 ? 0 : i + 1;
  }

  /** Jobs waiting (not counting the running one). */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** Cancels a job: a queued one at once, a running one after its current step. */
  cancel(id: string): Job | undefined {
    const job = this.jobs.get(id);
    if (job === undefined || job.terminal) return job;
    if (job.state === "queued") {
      this.waiting.splice(this.waiting.indexOf(job), 1);
      job.end("cancelled");
      this.announcePositions();
    } else if (job.spec.kind === "generate") this.stop(job, "cancel");
    return job;
  }

  /** A1111 interrupt: stops the running generation; its finished images are kept. */
  interrupt(): void {
    const job = this.current;
    if (job?.spec.kind !== "generate") return;
    job.interrupted = true;
    this.stop(job, "interrupt");
  }

  /** A1111 skip: stops the current run of the running job and goes on with the next. */
  skip(): void {
    const job = this.current;
    if (job?.spec.kind === "generate") this.stop(job, "skip");
  }

  /** Seconds a client should wait before retrying: the queue's length times the recent mean job time. */
  retryAfter(): number {
    const mean = this.durations.length === 0 ? 5000 : this.durations.reduce((a, b) => a + b, 0) / this.durations.length;
    return Math.min(3600, Math.max(1, Math.ceil(((this.waiting.length + 1) * mean) / 1000)));
  }

  /** Cancels everything and stops the worker. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.end("cancelled");
    if (this.current) this.stop(this.current, "cancel");
    await this.worker.close();
  }

  /** Resolves once every model load queued so far has finished (so the model's defaults are known). */
  async modelSettled(): Promise<void> {
    const loads = [...(this.current ? [this.current] : []), ...this.waiting].filter((j) => j.spec.kind === "load");
    await loads[loads.length - 1]?.finished;
  }

  /** Re-reads the loaded model's LoRA folder and keeps the list on `model` (empty without a model). */
  async refreshLoras(): Promise<readonly LoraInfo[]> {
    const m = this.model;
    if (m === undefined) return [];
    const loras = await this.worker.listLoras().catch((e: unknown) => {
      throw new HttpError(500, "internal", `cannot list the LoRA folder: ${e instanceof Error ? e.message : String(e)}`);
    });
    // A model switched meanwhile brought its own list.
    if (this.model === m) this.model = { ...m, loras, lorasError: undefined };
    return loras;
  }

  private loadPending(): boolean {
    return this.waiting.some((j) => j.spec.kind === "load") || this.current?.spec.kind === "load";
  }

  private stop(job: Job, how: "cancel" | "interrupt" | "skip"): void {
    if (job.stop !== "cancel" && job.stop !== "interrupt") job.stop = how;
    if (job.seq !== 0) this.worker.cancel(job.seq);
  }

  private announcePositions(): void {
    this.waiting.forEach((j, i) => j.emit({ type: "queued", position: i + 1 }));
  }

  private pump(): void {
    if (this.current !== undefined || this.closed) return;
    const job = this.waiting.shift();
    if (job === undefined) return;
    this.current = job;
    this.announcePositions();
    void this.execute(job).finally(() => {
      this.current = undefined;
      this.prune();
      this.pump();
    });
  }

  private async execute(job: Job): Promise<void> {
    job.state = "running";
    job.startedAt = Date.now();
    try {
      if (job.spec.kind === "load") await this.executeLoad(job, job.spec.source);
      else await this.executeRuns(job, job.spec.runs, job.spec.save);
    } catch (e) {
      job.end("error", e instanceof HttpError ? e : new HttpError(500, "internal", e instanceof Error ? e.message : String(e)));
    }
  }

  private async executeLoad(job: Job, source: string): Promise<void> {
    try {
      const m = await this.worker.load(source, this.opts.load);
      this.model = m;
      job.loaded = m;
      job.end("done");
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (this.model === undefined) this.modelError = `no model is loaded: ${msg}`;
      const userError = e instanceof WorkerError && e.errorName !== "WorkerCrash" && e.errorName !== "InternalError";
      throw new HttpError(userError ? 422 : 500, "model_load_failed", `cannot load ${source}: ${msg}`, "sd_model_checkpoint");
    }
  }

  private async executeRuns(job: Job, runs: readonly RunParams[], save: boolean): Promise<void> {
    if (this.model === undefined) throw new HttpError(503, "no_model", this.modelError);
    this.lastStarted = job;
    job.emit({ type: "start", total: runs[0]?.steps ?? 0 });
    for (const [i, params] of runs.entries()) {
      if (job.stop === "cancel" || job.stop === "interrupt") break;
      job.runIndex = i;
      job.step = 0;
      job.total = params.steps;
      job.pass = 0;
      job.passes = passesOf(params);
      job.passStep = 0;
      job.passTotal = params.steps;
      const res = await this.worker
        .run(
          params,
          this.opts.previewEvery,
          (p) => this.progress(job, p),
          (seq) => {
            job.seq = seq;
            if (job.stop !== undefined) this.worker.cancel(seq);
          },
        )
        .catch((e: unknown) => {
          throw runError(e);
        });
      job.seq = 0;
      if (res === "cancelled") {
        if (job.stop !== "skip") break;
        job.stop = undefined;
        job.skipped = true;
        continue;
      }
      job.results.push(res);
      if (save) job.saved.push(...(await this.opts.outputs.save(res)));
    }
    this.durations.push(Date.now() - job.startedAt);
    if (this.durations.length > 10) this.durations.shift();
    job.end(job.stop === "cancel" || job.stop === "interrupt" ? "cancelled" : "done");
  }

  private progress(job: Job, p: RunProgress): void {
    job.step = Math.max(job.step, p.step);
    job.total = Math.max(p.total, job.step);
    job.pass = p.pass;
    job.passes = p.passes;
    job.passStep = p.passStep;
    job.passTotal = p.passTotal;
    if (p.preview) job.preview = p.preview;
    job.emit({ type: "progress", step: job.step, total: job.total, ...(p.preview ? { preview: p.preview } : {}) });
  }

  /** Forgets old finished jobs; all but the last few also drop their images and explain data (outputs are on disk). */
  private prune(): void {
    const done = [...this.jobs.values()].filter((j) => j.terminal);
    for (const j of done.slice(0, -KEEP_HEAVY)) {
      for (const [i, r] of j.results.entries()) if (r.images.length > 0 || r.explain) j.results[i] = { images: [], seeds: r.seeds, info: r.info };
      j.preview = undefined;
      if (j.spec.kind === "generate") j.spec = { ...j.spec, runs: j.spec.runs.map(withoutImages) };
    }
    let finished = done.length;
    for (const [id, j] of this.jobs) {
      if (finished <= KEEP_FINISHED) break;
      if (j.terminal) {
        this.jobs.delete(id);
        finished--;
      }
    }
  }
}

/** A run without its input images (kept only while the job may still be asked about). */
function withoutImages(r: RunParams): RunParams {
  if (r.kind === "txt2img") return r;
  const empty = new Uint8Array(0);
  return r.kind === "inpaint" ? { ...r, image: empty, ...(r.mask ? { mask: empty } : {}) } : { ...r, image: empty };
}

/**
 * A failed run as an HTTP error: bad input 422, no model 503, anything else 500. A CheckpointError
 * during a run comes from a file the request named (a LoRA made for another model, a pickle), so
 * it is the request's: 422.
 */
function runError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof WorkerError && (e.errorName === "InputError" || e.errorName === "CheckpointError")) return new HttpError(422, "invalid_param", e.message);
  if (e instanceof WorkerError && e.errorName === NO_MODEL) return new HttpError(503, "no_model", e.message);
  return new HttpError(500, "generation_failed", `generation failed: ${e instanceof Error ? e.message : String(e)}`);
}
