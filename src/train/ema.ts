/** Exponential moving average of the trainable parameters, updated in TS after each step. */
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Trainer } from "./train-step.js";

/** EMA weights of a trainer's trainable keys (Polyak averaging with a (1 + n)/(10 + n) warm-up of the decay). */
export class Ema {
  private readonly avg = new Map<string, Float32Array>();
  private updates: number;
  constructor(private readonly trainer: Trainer, private readonly decay: number, saved?: ReadonlyMap<string, HostTensor>) {
    for (const k of trainer.trainable) {
      const from = saved?.get(k) ?? trainer.params.get(k);
      this.avg.set(k, Float32Array.from(from?.data as Float32Array));
    }
    this.updates = trainer.state.step;
  }
  /** Moves the average toward the current parameters. */
  update(): void {
    this.updates += 1;
    const d = Math.min(this.decay, (1 + this.updates) / (10 + this.updates));
    for (const [k, a] of this.avg) {
      const p = this.trainer.params.get(k)?.data as Float32Array;
      for (let i = 0; i < a.length; i++) a[i] = d * (a[i] ?? 0) + (1 - d) * (p[i] ?? 0);
    }
  }
  /** The averaged weights as tensors (shapes of the parameters). */
  tensors(): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const [k, a] of this.avg) out.set(k, { dtype: "float32", shape: this.trainer.params.get(k)?.shape ?? [a.length], data: a });
    return out;
  }
}
