import assert from "node:assert/strict";
import { test } from "node:test";
import { captionPrior, snapToCaptions } from "../../../src/models/clip/caption-prior.js";

const states = Float32Array.from([1, 0, 0, 1, 1, 1, -1, 0]); // four 2-d caption states

test("snapToCaptions: softmax over the k nearest by cosine, weights exp((cos − best)/T)", () => {
  // v = (1, 0.1): nearest (1, 0) at cos 0.99504, then (1, 1) at cos 0.77389; (0, 1) and (−1, 0) are left out at k = 2
  const v = Float32Array.from([1, 0.1]);
  const w2 = Math.exp((1.1 / Math.sqrt(2 * 1.01) - 1 / Math.sqrt(1.01)) / 0.1);
  const out = snapToCaptions(captionPrior(states, 2, 2, 0.1), v);
  assert.ok(Math.abs((out[0] ?? 0) - 1) < 1e-6);
  assert.ok(Math.abs((out[1] ?? 0) - w2 / (1 + w2)) < 1e-6, `${out[1]} vs ${w2 / (1 + w2)}`);
});

test("snapToCaptions: k = 1 returns the nearest caption state itself; scale does not matter (cosine)", () => {
  assert.deepEqual([...snapToCaptions(captionPrior(states, 2, 1, 0.02), Float32Array.from([-5, 0.5]))], [-1, 0]);
  assert.deepEqual([...snapToCaptions(captionPrior(states, 2, 1, 0.02), Float32Array.from([0.3, 0.31]))], [1, 1]);
});

test("snapToCaptions: a small temperature makes it the nearest state, a large one the mean of the k", () => {
  const v = Float32Array.from([1, 0.1]);
  const cold = snapToCaptions(captionPrior(states, 2, 2, 1e-4), v);
  assert.deepEqual([...cold], [1, 0]);
  const hot = snapToCaptions(captionPrior(states, 2, 2, 1e6), v);
  assert.ok(Math.abs((hot[0] ?? 0) - 1) < 1e-6 && Math.abs((hot[1] ?? 0) - 0.5) < 1e-5, `${[...hot]}`);
});
