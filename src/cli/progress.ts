/** A one-line terminal progress bar: step/total, it/s and ETA. */

/** Progress bar writing to a stream (stderr); redraws in place on a TTY, prints sparse lines otherwise. */
export class ProgressBar {
  private start = Date.now();
  private lastLine = 0;
  private base = 0;
  constructor(
    private readonly label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {}

  /** Restarts the clock (e.g. for the next image of a batch); `fromStep` is where counting resumes (a resumed training run). */
  reset(fromStep = 0): void {
    this.start = Date.now();
    this.base = fromStep;
  }

  /** Draws `step` of `total`, with an optional note (e.g. the loss). */
  update(step: number, total: number, note?: string): void {
    const secs = (Date.now() - this.start) / 1000;
    // no rate before any time has passed (a training run's first step starts the clock)
    const timed = secs >= 0.01 && step > this.base;
    const rate = (step - this.base) / Math.max(secs, 1e-6);
    const eta = (total - step) / Math.max(rate, 1e-9);
    const speed = timed ? `${rate.toFixed(2)} it/s  ETA ${eta.toFixed(1)}s` : "-- it/s  ETA --";
    const width = 24;
    const filled = Math.round((step / total) * width);
    const bar = "█".repeat(filled) + "░".repeat(width - filled);
    const line = `${this.label} ${bar} ${step}/${total}  ${speed}${note === undefined ? "" : `  ${note}`}`;
    if (this.out.isTTY) this.out.write(`\r${line}\x1b[K${step === total ? "\n" : ""}`);
    else if (step === total || Date.now() - this.lastLine > 2000) {
      this.out.write(`${line}\n`);
      this.lastLine = Date.now();
    }
  }
}
