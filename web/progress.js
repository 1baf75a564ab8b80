// @ts-check
/** The progress bar under the image: queue position, step / total and an ETA. */
import { byId, formatDuration } from "./dom.js";

/** Shows how far a job has got. */
export class ProgressView {
  constructor() {
    this.root = byId("progress");
    this.bar = byId("progress-bar");
    this.fill = byId("progress-fill");
    this.stepText = byId("progress-step");
    this.etaText = byId("progress-eta");
    /** Time of the first progress event and the step it reported: the ETA runs from there. */
    this.t0 = 0;
    this.step0 = 0;
  }

  /** @param {number | null} position place in the queue (0 = next), or unknown */
  queued(position) {
    this.root.hidden = false;
    this.root.classList.remove("finished");
    this.root.classList.add("queued");
    this.stepText.textContent =
      position === null ? "Sending…" : position > 0 ? `Waiting in the queue — ${position} ahead` : "Waiting for the model…";
    this.etaText.textContent = "";
    this.setFraction(0);
  }

  /** @param {number} total */
  start(total) {
    this.root.hidden = false;
    this.root.classList.remove("queued", "finished");
    this.t0 = 0;
    this.stepText.textContent = `Step 0 / ${total}`;
    this.etaText.textContent = "";
    this.setFraction(0);
  }

  /** @param {number} step @param {number} total */
  step(step, total) {
    this.root.classList.remove("queued");
    const now = performance.now();
    if (this.t0 === 0) {
      this.t0 = now;
      this.step0 = step;
    }
    this.stepText.textContent = `Step ${step} / ${total}`;
    const done = step - this.step0;
    if (done >= 1 && step < total) {
      const perStep = (now - this.t0) / 1000 / done;
      this.etaText.textContent = `about ${formatDuration(perStep * (total - step))} left`;
    } else if (step >= total) {
      this.etaText.textContent = "decoding…";
    }
    this.setFraction(total > 0 ? step / total : 0);
  }

  /** Leaves a final word in place of the bar: "Done in 3 s", "Cancelled at step 4 / 20". @param {string} text */
  finish(text) {
    this.root.classList.remove("queued");
    this.root.classList.add("finished");
    this.stepText.textContent = text;
    this.etaText.textContent = "";
  }

  hide() {
    this.root.hidden = true;
  }

  /** @param {number} f */
  setFraction(f) {
    const pct = Math.round(Math.min(1, Math.max(0, f)) * 100);
    this.fill.style.width = `${pct}%`;
    this.bar.setAttribute("aria-valuenow", String(pct));
  }
}
