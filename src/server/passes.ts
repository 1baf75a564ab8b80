/** Progress over the sampling passes of one run (the hires fix samples more than once). */
import type { PassProgress, RunParams } from "./protocol.js";

/** How many sampling passes a run makes: hires with a latent upscaler 2, with an image upscaler 1 + one per image; else 1. */
export function passesOf(p: RunParams): number {
  if (p.kind !== "txt2img" || p.hires === undefined) return 1;
  return p.hires.upscaler.toLowerCase().startsWith("latent") ? 2 : 1 + p.batchSize;
}

/**
 * Turns the library's per-pass progress into a run's progress. A pass starts when the step
 * count goes back (every pass counts from 1). Later passes are estimated from the first
 * until they start.
 */
export function passCounter(p: RunParams): (step: number, total: number) => PassProgress {
  const hires = p.kind === "txt2img" ? p.hires : undefined;
  const passes = passesOf(p);
  let pass = 0;
  let last = 0;
  let lastTotal = 0;
  let done = 0;
  let later = 0;
  return (step, total) => {
    if (step <= last) {
      pass = Math.min(pass + 1, passes - 1);
      done += lastTotal;
    }
    last = step;
    lastTotal = total;
    // A second pass denoises floor(steps × strength) of its steps (diffusers' arithmetic), at this pass's calls per step.
    if (pass === 0 && hires !== undefined) later = Math.round((total / p.steps) * Math.floor((hires.steps || p.steps) * hires.denoisingStrength));
    else if (pass > 0) later = total;
    const remaining = passes - 1 - pass;
    return { step: done + step, total: done + total + remaining * later, pass, passes, passStep: step, passTotal: total };
  };
}
