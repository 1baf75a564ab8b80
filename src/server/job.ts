/** One job: what to do, where it is, what it made, and its event stream. */
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import type { HttpError } from "./http.js";
import type { GalleryItem } from "./outputs.js";
import type { LoadedModel, RunParams, RunResult } from "./protocol.js";

/** Where a job is in its life. */
export type JobState = "queued" | "running" | "done" | "error" | "cancelled";

/** What a job reports to its listeners. */
export type JobEvent =
  | { readonly type: "queued"; readonly position: number }
  | { readonly type: "start"; readonly total: number }
  | { readonly type: "progress"; readonly step: number; readonly total: number; readonly preview?: Uint8Array }
  | { readonly type: "done" }
  | { readonly type: "error"; readonly error: HttpError }
  | { readonly type: "cancelled" };

/**
 * What to do: generate (one worker run per entry of `runs`, each txt2img, img2img or inpaint;
 * A1111's n_iter) or load a model.
 */
export type JobSpec = { readonly kind: "generate"; readonly runs: readonly RunParams[]; readonly save: boolean } | { readonly kind: "load"; readonly source: string };

/** One queued or finished job. */
export class Job {
  readonly id = randomBytes(8).toString("hex");
  readonly createdAt = Date.now();
  state: JobState = "queued";
  startedAt = 0;
  finishedAt = 0;
  /** Which run of `runs` is going, its step (monotone) and the sampler's step count (over all passes of the run). */
  runIndex = 0;
  step = 0;
  total = 0;
  /** The sampling pass of the run (the hires fix has more than one) and the step within it. */
  pass = 0;
  passes = 1;
  passStep = 0;
  passTotal = 0;
  preview: Uint8Array | undefined;
  readonly results: RunResult[] = [];
  readonly saved: GalleryItem[] = [];
  loaded: LoadedModel | undefined;
  error: HttpError | undefined;
  /** A1111 state flags: interrupted (stop the job), skipped (a run was skipped). */
  interrupted = false;
  skipped = false;
  /** Open event streams watching this job. */
  listeners = 0;
  /** How the running job was asked to stop, if it was. */
  stop: "cancel" | "interrupt" | "skip" | undefined;
  /** The worker request of the current run. */
  seq = 0;
  /** Resolves when the job is done, failed or cancelled. */
  readonly finished: Promise<Job>;
  private settle!: (j: Job) => void;
  private readonly events = new EventEmitter();

  /** Not readonly: a finished job's input images are dropped (see JobQueue.prune). */
  constructor(public spec: JobSpec) {
    this.finished = new Promise((r) => (this.settle = r));
    this.events.setMaxListeners(0);
  }

  /** True once done, failed or cancelled. */
  get terminal(): boolean {
    return this.state === "done" || this.state === "error" || this.state === "cancelled";
  }

  /** Listens to this job's events; returns the unsubscribe function. */
  subscribe(fn: (e: JobEvent) => void): () => void {
    this.events.on("event", fn);
    return () => this.events.off("event", fn);
  }

  /** Sends an event to every listener. */
  emit(e: JobEvent): void {
    this.events.emit("event", e);
  }

  /** Ends the job; emits its last event. */
  end(state: "done" | "cancelled" | "error", error?: HttpError): void {
    if (this.terminal) return;
    this.state = state;
    this.finishedAt = Date.now();
    if (error) this.error = error;
    this.emit(state === "error" && error ? { type: "error", error } : state === "done" ? { type: "done" } : { type: "cancelled" });
    this.settle(this);
  }
}
