import assert from "node:assert/strict";
import { test } from "node:test";
import { apply1, input } from "../../../src/graph/apply.js";
import { compile } from "../../../src/graph/compile.js";
import { evaluate } from "../../../src/graph/eval.js";
import { grad } from "../../../src/graph/grad.js";
import { hostToNumbers, valueToHost } from "../../../src/graph/host.js";
import type { ConvAttrs } from "../../../src/graph/op.js";
import { Op } from "../../../src/graph/op.js";
import * as g from "../../../src/graph/ops.js";
import type { Value } from "../../../src/graph/rule.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import { type OpCase, runOpCases } from "./harness.js";

type Pair = readonly [number, number];
const conv = (x: number[], w: number[], o: g.Conv2dOptions = {}, bias = true) => ({
  inputs: [{ name: "x", shape: x }, { name: "w", shape: w }, ...(bias ? [{ name: "b", shape: [w[0] ?? 1] }] : [])],
  build: ([a, k, b]: Tensor[]) => g.conv2d(a as Tensor, k as Tensor, b, o),
});
/** A conv with every attribute spelled out, asymmetric pads included (conv2d only makes symmetric ones). */
const rawConv = (x: number[], w: number[], strides: Pair, pads: readonly [number, number, number, number], dilations: Pair, group: number) => ({
  inputs: [{ name: "x", shape: x }, { name: "w", shape: w }],
  build: ([a, k]: Tensor[]) => apply1(Op.Conv, [a as Tensor, k as Tensor], { strides, pads, dilations, group }),
});
const convT = (x: number[], w: number[], o: g.Conv2dOptions & { outputPadding?: number | Pair } = {}, bias = true) => ({
  inputs: [{ name: "x", shape: x }, { name: "w", shape: w }, ...(bias ? [{ name: "b", shape: [(w[1] ?? 1) * (o.groups ?? 1)] }] : [])],
  build: ([a, k, b]: Tensor[]) => g.convTranspose2d(a as Tensor, k as Tensor, b, o),
});
const matmul = (a: number[], b: number[]) => ({
  inputs: [{ name: "a", shape: a }, { name: "b", shape: b }],
  build: ([p, q]: Tensor[]) => g.matmul(p as Tensor, q as Tensor),
});
const resize = (x: number[], scale: number | Pair) => ({
  inputs: [{ name: "x", shape: x }],
  build: ([a]: Tensor[]) => g.resizeNearest(a as Tensor, scale),
});

const mha = (q: number[], k: number[], v: number[], heads: number, scale?: number) => ({
  inputs: [{ name: "q", shape: q }, { name: "k", shape: k }, { name: "v", shape: v }],
  build: ([a, b, c]: Tensor[]) => g.multiHeadAttention(a as Tensor, b as Tensor, c as Tensor, heads, scale),
});

const cases: OpCase[] = [
  { name: "MatMul 2-D [3,4]×[4,5]", ...matmul([3, 4], [4, 5]) },
  { name: "MatMul batched 3-D×2-D [2,3,4]×[4,5]", ...matmul([2, 3, 4], [4, 5]) },
  { name: "MatMul 2-D×3-D [3,4]×[2,4,5]", ...matmul([3, 4], [2, 4, 5]) },
  { name: "MatMul 4-D×4-D [2,2,3,4]×[2,2,4,3]", ...matmul([2, 2, 3, 4], [2, 2, 4, 3]) },
  { name: "MatMul 4-D broadcast [2,1,3,4]×[1,3,4,2]", ...matmul([2, 1, 3, 4], [1, 3, 4, 2]) },
  { name: "Conv 3×3 pad 1 with bias", ...conv([2, 3, 5, 5], [4, 3, 3, 3], { padding: 1 }) },
  { name: "Conv stride 2 pad 1, odd input 7×7", ...conv([1, 2, 7, 7], [3, 2, 3, 3], { stride: 2, padding: 1 }) },
  { name: "Conv stride 2 no pad, even input (weight grad cropped)", ...conv([1, 2, 8, 6], [2, 2, 3, 3], { stride: 2 }, false) },
  { name: "Conv asymmetric pads [0,1,2,0], strides [2,1]", ...rawConv([1, 2, 6, 5], [3, 2, 3, 2], [2, 1], [0, 1, 2, 0], [1, 1], 1) },
  { name: "Conv VAE-style downsample pads [0,0,1,1] stride 2", ...rawConv([1, 2, 6, 6], [2, 2, 3, 3], [2, 2], [0, 0, 1, 1], [1, 1], 1) },
  { name: "Conv dilation 2", ...conv([1, 2, 7, 6], [2, 2, 3, 3], { padding: 1, dilation: 2 }) },
  { name: "Conv groups 2", ...conv([1, 4, 5, 5], [6, 2, 3, 3], { padding: 1, groups: 2 }) },
  { name: "Conv depthwise stride 2", ...conv([2, 3, 6, 6], [3, 1, 3, 3], { stride: 2, padding: 1, groups: 3 }) },
  { name: "Conv 16 input channels, 3×3 pad 1 (weight grad one GEMM per tap)", ...conv([2, 16, 4, 3], [3, 16, 3, 3], { padding: 1 }) },
  { name: "Conv 16 input channels, stride 2, asymmetric pads (per-tap weight grad)", ...rawConv([1, 16, 5, 6], [2, 16, 3, 2], [2, 1], [0, 1, 1, 0], [1, 1], 1) },
  { name: "Conv 1×1 no bias", ...conv([2, 4, 3, 3], [5, 4, 1, 1], {}, false) },
  { name: "Conv 1×1 pad 1 (pad beyond the kernel: input grad by transposed conv)", ...conv([1, 3, 3, 4], [2, 3, 1, 1], { padding: 1 }) },
  { name: "Conv 3×2 asymmetric pads [2,0,1,1], dilation [1,2] (flipped-kernel input grad)", ...rawConv([2, 3, 5, 6], [4, 3, 3, 2], [1, 1], [2, 0, 1, 1], [1, 2], 1) },
  { name: "Conv groups 2, stride 2, dilation 2, asymmetric pads", ...rawConv([2, 4, 9, 8], [4, 2, 3, 2], [2, 3], [1, 0, 2, 2], [2, 2], 2) },
  { name: "ConvTranspose stride 2 pad 1 output padding 1", ...convT([1, 4, 3, 3], [4, 2, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }) },
  { name: "ConvTranspose 4×4 stride 2 pad 1 (upsample)", ...convT([2, 3, 4, 4], [3, 2, 4, 4], { stride: 2, padding: 1 }, false) },
  { name: "ConvTranspose groups 2, stride 2, dilation 2, output padding 1", ...convT([1, 4, 3, 4], [4, 3, 3, 3], { groups: 2, stride: 2, dilation: 2, outputPadding: 1 }) },
  {
    name: "ConvTranspose asymmetric pads, strides [2,3]",
    inputs: [{ name: "x", shape: [1, 2, 3, 3] }, { name: "w", shape: [2, 2, 3, 2] }],
    build: ([a, k]: Tensor[]) => {
      const attrs: ConvAttrs = { strides: [2, 3], pads: [1, 0, 0, 1], dilations: [1, 1], group: 1 };
      return apply1(Op.ConvTranspose, [a as Tensor, k as Tensor], { ...attrs, outputPadding: [1, 2] });
    },
  },
  { name: "Resize ×2", ...resize([1, 2, 3, 4], 2) },
  { name: "Resize ×[3,2]", ...resize([2, 1, 2, 3], [3, 2]) },
  { name: "Resize ×0.5", ...resize([1, 2, 4, 6], 0.5) },
  { name: "Resize ×0.25 rank 2", ...resize([8, 4], 0.25) },
  { name: "Resize mixed [2, 0.5] rank 3", ...resize([2, 3, 4], [2, 0.5]) },
  { name: "MultiHeadAttention self, 2 heads [2,5,4]", ...mha([2, 5, 4], [2, 5, 4], [2, 5, 4], 2) },
  { name: "MultiHeadAttention cross, Lk 3, v width 6, scale 0.3", ...mha([2, 4, 6], [2, 3, 6], [2, 3, 9], 3, 0.3) },
];

runOpCases("linalg", cases);

const v = (shape: number[], data: number[]): Value => ({ dtype: "float32", shape, data: Float64Array.from(data) });
const run1 = (t: Tensor, feeds: Record<string, Value>): number[] => [...(evaluate([t], feeds)[0] as Value).data];
const iota = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);

test("hand-computed: matmul 2×3 · 3×2", () => {
  const a = input("a", "float32", [2, 3]);
  const b = input("b", "float32", [3, 2]);
  // [[1,2,3],[4,5,6]] · [[7,8],[9,10],[11,12]]
  assert.deepEqual(run1(g.matmul(a, b), { a: v([2, 3], iota(6)), b: v([3, 2], iota(6, 7)) }), [58, 64, 139, 154]);
});

test("hand-computed: conv sums under the kernel, with stride and padding", () => {
  const x = input("x", "float32", [1, 1, 3, 3]);
  const w = input("w", "float32", [1, 1, 2, 2]);
  const feeds = { x: v([1, 1, 3, 3], iota(9)), w: v([1, 1, 2, 2], [1, 1, 1, 1]) };
  assert.deepEqual(run1(g.conv2d(x, w), feeds), [12, 16, 24, 28]);
  // Padded by 1, stride 2: the windows see {1}, {2,3}, {4,7}, {5,6,8,9}.
  assert.deepEqual(run1(g.conv2d(x, w, undefined, { stride: 2, padding: 1 }), feeds), [1, 5, 11, 28]);
  // Groups: each output channel sees only its own input channel.
  const x2 = input("x2", "float32", [1, 2, 1, 1]);
  const w2 = input("w2", "float32", [2, 1, 1, 1]);
  assert.deepEqual(run1(g.conv2d(x2, w2, undefined, { groups: 2 }), { x2: v([1, 2, 1, 1], [3, 5]), w2: v([2, 1, 1, 1], [10, 100]) }), [30, 500]);
});

test("hand-computed: transposed conv scatters x·w blocks; resize repeats and subsamples", () => {
  const x = input("x", "float32", [1, 1, 2, 2]);
  const w = input("w", "float32", [1, 1, 2, 2]);
  const feeds = { x: v([1, 1, 2, 2], [1, 2, 3, 4]), w: v([1, 1, 2, 2], [1, 10, 100, 1000]) };
  assert.deepEqual(run1(g.convTranspose2d(x, w, undefined, { stride: 2 }), feeds), [
    1, 10, 2, 20, 100, 1000, 200, 2000, 3, 30, 4, 40, 300, 3000, 400, 4000,
  ]);
  assert.deepEqual(run1(g.resizeNearest(x, 2), feeds), [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  const y = input("y", "float32", [1, 1, 4, 4]);
  assert.deepEqual(run1(g.resizeNearest(y, 0.5), { y: v([1, 1, 4, 4], iota(16, 0)) }), [0, 2, 8, 10]);
});

test("infer errors name the op and say what was expected", () => {
  const f = (shape: (number | string)[], name = "t") => input(name, "float32", shape);
  assert.throws(() => g.matmul(f([2, 3]), f([4, 5])), /^ShapeError: MatMul: inner dims differ in \[2,3\] × \[4,5\]: a's last dim \(3\) must equal b's second-to-last \(4\)/);
  assert.throws(() => g.matmul(f([3]), f([3, 2])), /^ShapeError: MatMul: needs rank ≥ 2 on both sides, got \[3\] × \[3,2\]/);
  assert.throws(() => g.matmul(f([2, 3, 4]), f([3, 4, 5])), /^ShapeError: MatMul: batch dims of \[2,3,4\] × \[3,4,5\] do not broadcast/);
  assert.throws(() => g.conv2d(f([1, 4, 5, 5]), f([8, 3, 3, 3])), /^ShapeError: Conv: x has 4 channels but weight \[8,3,3,3\] with group 1 expects 3·1/);
  assert.throws(() => g.conv2d(f([1, 4, 5, 5]), f([3, 2, 3, 3]), undefined, { groups: 2 }), /^ShapeError: Conv: output channels 3 .* must divide by group 2/);
  assert.throws(() => g.conv2d(f([1, 3, 5, 5]), f([8, 3, 3, 3]), f([4], "b")), /^ShapeError: Conv: bias must have shape \[8\]/);
  assert.throws(() => g.conv2d(f([1, 3, 2, 2]), f([8, 3, 3, 3])), /^ShapeError: Conv: output height would be 0 \(input height 2, kernel 3/);
  assert.throws(() => g.conv2d(f([1, 3, 5, 5]), f([8, 3, 3, 3]), undefined, { stride: 0 }), /^ShapeError: Conv: strides must be two positive integers/);
  assert.throws(() => g.conv2d(f([1, 3, "H", 8]), f([8, 3, 3, 3]), undefined, { stride: 2, padding: 1 }), /^ShapeError: Conv: output height is not a single dim .*use concrete shapes/);
  assert.throws(() => g.conv2d(f([1, 3, "H", 8]), f([8, 3, 3, 3])), /^ShapeError: Conv: output height is not a single dim/);
  assert.throws(() => g.convTranspose2d(f([1, 4, 3, 3]), f([4, 2, 3, 3]), undefined, { stride: 2, dilation: 3, outputPadding: 2 }), /^ShapeError: ConvTranspose: outputPadding must be two integers in \[0, stride\)/);
  assert.throws(() => g.convTranspose2d(f([1, 4, 3, 3]), f([3, 2, 3, 3])), /^ShapeError: ConvTranspose: x has 4 channels but weight \[3,2,3,3\] expects 3/);
  assert.throws(() => g.resizeNearest(f([1, 1, 4, 4]), 0.3), /^ShapeError: Resize: scale 0.3 is not supported: use an integer ≥ 1 or 1\/2ⁿ/);
  assert.throws(() => g.resizeNearest(f([1, 1, 4, 5]), 0.5), /^ShapeError: Resize: Resize by 1\/2 needs dim 3 \(5\) to be a multiple of 2/);
  assert.throws(() => g.resizeNearest(f([4]), 2), /^ShapeError: Resize: .*needs rank ≥ 2/);
});

test("symbolic dims: same-size convs keep H, strided ones divide '2*h', transposed ones double it", () => {
  const x = input("x", "float32", ["B", 3, "H", "W"]);
  const w3 = input("w3", "float32", [8, 3, 3, 3]);
  assert.deepEqual(g.conv2d(x, w3, undefined, { padding: 1 }).shape, ["B", 8, "H", "W"]);
  assert.deepEqual(g.conv2d(x, input("w1", "float32", [8, 3, 1, 1])).shape, ["B", 8, "H", "W"]);
  const x2 = input("x2", "float32", ["B", 3, "2*h", "4*w"]);
  assert.deepEqual(g.conv2d(x2, w3, undefined, { stride: 2, padding: 1 }).shape, ["B", 8, "h", "2*w"]);
  const vae = apply1(Op.Conv, [x2, w3], { strides: [2, 2], pads: [0, 0, 1, 1], dilations: [1, 1], group: 1 });
  assert.deepEqual(vae.shape, ["B", 8, "h", "2*w"]);
  const up = g.convTranspose2d(input("z", "float32", ["B", 3, "h", "w"]), input("wt", "float32", [3, 5, 4, 4]), undefined, { stride: 2, padding: 1 });
  assert.deepEqual(up.shape, ["B", 5, "2*h", "2*w"]);
  assert.deepEqual(g.resizeNearest(x2, 0.5).shape, ["B", 3, "h", "2*w"]);
  assert.deepEqual(g.resizeNearest(x, 2).shape, ["B", 3, "2*H", "2*W"]);
  assert.deepEqual(g.matmul(input("a", "float32", ["B", "T", 4]), input("m", "float32", [4, 6])).shape, ["B", "T", 6]);
});

test("symbolic grouped strided conv, transposed conv and resize: ORT matches the evaluator, gradients included", async () => {
  const x = input("x", "float32", ["B", 4, "2*h", "2*w"]);
  const w = input("w", "float32", [6, 2, 3, 3]);
  const wt = input("wt", "float32", [6, 2, 4, 4]);
  const y = g.conv2d(x, w, undefined, { stride: 2, padding: 1, groups: 2 }); // [B, 6, h, w]
  const z = g.convTranspose2d(y, wt, undefined, { stride: 2, padding: 1, groups: 3 }); // [B, 6, 2h, 2w]
  const out = g.resizeNearest(g.mul(z, z), 0.5); // [B, 6, h, w]
  assert.deepEqual(out.shape, ["B", 6, "h", "w"]);
  const seed = input("gy", "float32", ["B", 6, "h", "w"]);
  const grads = grad(out, new Map([["x", x], ["w", w], ["wt", wt]]), seed);
  const gx = grads.get("x") as Tensor;
  const gw = grads.get("w") as Tensor;
  const gwt = grads.get("wt") as Tensor;
  assert.deepEqual([gx.shape, gw.shape, gwt.shape], [x.shape, w.shape, wt.shape]);
  const rnd = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 1.7 + 0.3));
  const feeds = { x: v([2, 4, 6, 4], rnd(192)), w: v([6, 2, 3, 3], rnd(108)), wt: v([6, 2, 4, 4], rnd(192)), gy: v([2, 6, 3, 2], rnd(72)) };
  const want = evaluate([out, gx, gw, gwt], feeds);
  const graph = await compile({ out, gx, gw, gwt }, { name: "symbolic-conv" });
  try {
    const res = await graph.run(Object.fromEntries(Object.entries(feeds).map(([k, val]) => [k, valueToHost(val)])));
    ["out", "gx", "gw", "gwt"].forEach((k, i) => {
      const got = hostToNumbers(res[k] as never);
      const ref = (want[i] as Value).data;
      assert.equal(got.length, ref.length, k);
      ref.forEach((r, j) => assert.ok(Math.abs((got[j] ?? NaN) - r) <= 1e-4 * Math.max(1, Math.abs(r)), `${k}[${j}]: ORT ${got[j]} vs ref ${r}`));
    });
  } finally {
    await graph.dispose();
  }
});
