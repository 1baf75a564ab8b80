/** Seeds and starting noise, equal to torch.randn on a seeded CPU generator. */
import { randomInt } from "node:crypto";
import { InputError } from "../errors.js";
import type { NoiseSource } from "../schedulers/common.js";
import { TorchGenerator } from "../schedulers/torch-random.js";
import type { Tensor } from "./types.js";

/** Largest seed A1111 hands out for −1 (2³² − 1). */
const MAX_RANDOM_SEED = 4294967295;

/** The seed to use: a given one is checked; −1 or undefined picks a random one. */
export function resolveSeed(seed: number | undefined): number {
  if (seed === undefined || seed === -1) return randomInt(0, MAX_RANDOM_SEED);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new InputError(`seed must be a whole number ≥ 0, or −1 for random (got ${String(seed)})`);
  }
  return seed;
}

/** Draws from several generators, one per batch row, so each image's noise depends only on its own seed. */
class PerImageNoise implements NoiseSource {
  constructor(private readonly gens: readonly TorchGenerator[]) {}
  /** `shape` may be the batch shape or flat; either way row i's share comes from generator i. */
  randn(shape: readonly number[]): { data: Float32Array } {
    const rows = this.gens.length;
    const total = shape.reduce((a, b) => a * b, 1);
    const per = total / rows;
    const data = new Float32Array(total);
    this.gens.forEach((g, i) => data.set(g.randn([per]).data, i * per));
    return { data };
  }
}

/**
 * Initial noise for a batch and the generator the sampler keeps drawing from. "per-image":
 * image i uses seed + i (A1111), so any image can be made again alone; "batch": one generator
 * for the whole batch (diffusers).
 */
export function batchNoise(shape: readonly number[], seed: number, mode: "per-image" | "batch"): { noise: Tensor; rng: NoiseSource; seeds: number[] } {
  const { rng, seeds } = noiseSource(shape[0] ?? 1, seed, mode);
  return { noise: draw(rng, shape), rng, seeds };
}

/** The generator(s) of a batch: one per image (seed + i) or one for all. */
export function noiseSource(batch: number, seed: number, mode: "per-image" | "batch"): { rng: NoiseSource; seeds: number[] } {
  const seeds = Array.from({ length: batch }, (_, i) => seed + i);
  const rng: NoiseSource = mode === "batch" || batch === 1 ? new TorchGenerator(seed) : new PerImageNoise(seeds.map((s) => new TorchGenerator(s)));
  return { rng, seeds };
}

/** The next normal draw of `shape` from a source. */
export function draw(rng: NoiseSource, shape: readonly number[]): Tensor {
  return { data: rng.randn(shape).data, shape: [...shape] };
}
