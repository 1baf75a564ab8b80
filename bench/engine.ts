/**
 * Engine overhead: the same conv and matmul built by sdts (IR → export → session) and written by
 * hand as a one-node ONNX model, timed in one process with the same session options; then the
 * share of a ~10M-parameter training step spent moving tensors in and out of onnxruntime.
 *
 * Run: npm run bench:engine. The last line is `engine overhead ratio: R`.
 */
import os from "node:os";
import { input } from "../src/graph/apply.js";
import { compile } from "../src/graph/compile.js";
import type { InitializerData } from "../src/graph/onnx/export.js";
import { type OnnxAttr, encodeModel } from "../src/graph/onnx/proto.js";
import * as g from "../src/graph/ops.js";
import type { Tensor } from "../src/graph/tensor.js";
import type { HostTensor } from "../src/runtime/host-tensor.js";
import { zerosTensor } from "../src/runtime/host-tensor.js";
import { type Session, createSession } from "../src/runtime/session.js";
import { adamNames } from "../src/train/adamw.js";
import { type FlatGroup, Trainer, buildTrainStep, flatNames, packGroup } from "../src/train/train-step.js";
import { bytesOf, fmt, geomean, medians, pairedRatio, randomF32, timeInterleaved } from "./util.js";

const F32 = 1; // ONNX FLOAT

/** One op, two ways: the weight (and bias) are initializers in both models; `x` is fed. */
interface OpCase {
  readonly title: string;
  readonly flops: number;
  readonly x: HostTensor;
  readonly weights: readonly { name: string; data: Float32Array; dims: number[] }[];
  /** The op through sdts: graph output `y`. */
  readonly build: (x: Tensor, w: readonly Tensor[]) => Tensor;
  /** The same op as one hand-written ONNX node. */
  readonly node: { opType: string; attrs: OnnxAttr[] };
  readonly outDims: number[];
  readonly runs: number;
}

/** Compiles the case through sdts and as a hand-written model; returns both sessions. */
async function openBoth(c: OpCase): Promise<{ sdts: Session; hand: Session }> {
  const x = input("x", "float32", c.x.shape);
  const ws = c.weights.map((w) => input(w.name, "float32", w.dims));
  const inits = new Map<string, InitializerData>(c.weights.map((w) => [w.name, { kind: "inline", bytes: bytesOf(w.data) }]));
  const compiled = await compile({ y: c.build(x, ws) }, { name: `sdts-${c.node.opType}`, initializers: inits });
  const bytes = encodeModel({
    opsetVersion: 21,
    graph: {
      name: `hand-${c.node.opType}`,
      nodes: [{ opType: c.node.opType, inputs: ["x", ...c.weights.map((w) => w.name)], outputs: ["y"], attrs: c.node.attrs }],
      inputs: [{ name: "x", elemType: F32, dims: c.x.shape }],
      outputs: [{ name: "y", elemType: F32, dims: c.outDims }],
      initializers: c.weights.map((w) => ({ name: w.name, elemType: F32, dims: w.dims, raw: bytesOf(w.data) })),
    },
  });
  const hand = await createSession(bytes, { provider: "cpu", graphName: `hand-${c.node.opType}` });
  return { sdts: compiled.session, hand };
}

/** Times both sessions interleaved; prints one line; returns sdts time / hand-written time. */
async function compareOp(c: OpCase): Promise<number> {
  const { sdts, hand } = await openBoth(c);
  try {
    const feeds = { x: c.x };
    const s = await timeInterleaved({ sdts: () => sdts.run(feeds), hand: () => hand.run(feeds) }, { warmup: 1, runs: c.runs, settle: 1 });
    const ms = medians(s);
    const gflops = (t: number): number => c.flops / (t * 1e6);
    const ratio = pairedRatio(s.sdts, s.hand);
    console.log(
      `${c.title}: sdts ${fmt(gflops(ms.sdts))} GFLOP/s (${fmt(ms.sdts, 2)} ms), ` +
        `hand-written ONNX ${fmt(gflops(ms.hand))} GFLOP/s (${fmt(ms.hand, 2)} ms), time ratio ${fmt(ratio, 3)} (median of ${c.runs} paired rounds)`,
    );
    return ratio;
  } finally {
    await sdts.dispose();
    await hand.dispose();
  }
}

/** 3×3 conv 320→320 on [1, 320, 64, 64], pad 1, with bias. */
function convCase(): OpCase {
  const [n, c, h, w, k] = [1, 320, 64, 64, 3];
  return {
    title: `conv3x3 ${c}→${c} ${h}×${w}`,
    flops: 2 * n * c * h * w * c * k * k,
    x: { dtype: "float32", shape: [n, c, h, w], data: randomF32(n * c * h * w, 1) },
    weights: [
      { name: "conv.weight", data: randomF32(c * c * k * k, 2, 0.02), dims: [c, c, k, k] },
      { name: "conv.bias", data: randomF32(c, 3, 0.1), dims: [c] },
    ],
    build: (x, [wt, b]) => g.conv2d(x, wt as Tensor, b, { padding: 1 }),
    node: { opType: "Conv", attrs: [{ name: "pads", type: "ints", value: [1, 1, 1, 1] }] },
    outDims: [n, c, h, w],
    runs: 15,
  };
}

/** [2048, 2048] @ [2048, 2048]; A fed, B an initializer. */
function matmulCase(): OpCase {
  const n = 2048;
  return {
    title: `matmul ${n}×${n}×${n}`,
    flops: 2 * n * n * n,
    x: { dtype: "float32", shape: [n, n], data: randomF32(n * n, 4) },
    weights: [{ name: "b", data: randomF32(n * n, 5, 0.02), dims: [n, n] }],
    build: (x, [b]) => g.matmul(x, b as Tensor),
    node: { opType: "MatMul", attrs: [] },
    outDims: [n, n],
    runs: 11,
  };
}

/** An MLP with tanh between layers and an MSE loss; weights stored [in, out]. */
function mlp(widths: readonly number[], batch: number) {
  const params = new Map<string, Tensor>();
  const init = new Map<string, HostTensor>();
  const x = input("x", "float32", [batch, widths[0] as number]);
  const y = input("y", "float32", [batch, widths.at(-1) as number]);
  let h = x;
  for (let i = 0; i + 1 < widths.length; i++) {
    const [fin, fout] = [widths[i] as number, widths[i + 1] as number];
    const w = input(`l${i}.weight`, "float32", [fin, fout]);
    const b = input(`l${i}.bias`, "float32", [fout]);
    params.set(`l${i}.weight`, w).set(`l${i}.bias`, b);
    init.set(`l${i}.weight`, { dtype: "float32", shape: [fin, fout], data: randomF32(fin * fout, 10 + i, 1 / Math.sqrt(fin)) });
    init.set(`l${i}.bias`, { dtype: "float32", shape: [fout], data: new Float32Array(fout) });
    h = g.add(g.matmul(h, w), b); // [batch, fout]
    if (i + 2 < widths.length) h = g.tanh(h);
  }
  const d = g.sub(h, y);
  const loss = g.reduceMean(g.mul(d, d), [0, 1]);
  const feeds: Record<string, HostTensor> = {
    x: { dtype: "float32", shape: x.shape as number[], data: randomF32(batch * (widths[0] as number), 20) },
    y: { dtype: "float32", shape: y.shape as number[], data: randomF32(batch * (widths.at(-1) as number), 21) },
  };
  return { params, init, loss, x, y, feeds };
}

/** The step's tensor traffic with no maths: each group's flat (params, m, v) and the batch in → the same out and a loss, all Identity. */
function trafficGraph(groups: readonly FlatGroup[], x: Tensor, y: Tensor): Record<string, Tensor> {
  const d = g.sub(x, y);
  const outs: Record<string, Tensor> = { loss: g.reduceMean(g.mul(d, d), [0, 1]) };
  for (const gr of groups) {
    outs[flatNames.newParam(gr.name)] = input(flatNames.param(gr.name), gr.dtype, [gr.size]);
    outs[flatNames.newM(gr.name)] = input(flatNames.m(gr.name), gr.dtype, [gr.size]);
    outs[flatNames.newV(gr.name)] = input(flatNames.v(gr.name), gr.dtype, [gr.size]);
  }
  return outs;
}

/** The flat (params, m, v) feeds of each group, as the Trainer holds them: parameters packed from `init`, zero moments. */
function flatFeeds(groups: readonly FlatGroup[], init: ReadonlyMap<string, HostTensor>): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const gr of groups) {
    feeds[flatNames.param(gr.name)] = packGroup(gr, init, "initial value");
    feeds[flatNames.m(gr.name)] = zerosTensor(gr.dtype as HostTensor["dtype"], [gr.size]);
    feeds[flatNames.v(gr.name)] = zerosTensor(gr.dtype as HostTensor["dtype"], [gr.size]);
  }
  return feeds;
}

/**
 * The same step graph run with `runInto`: params and moments double-buffered in preallocated
 * host tensors (read set A, write set B, swap). onnxruntime-node 1.30 still hands back a fresh
 * copy of every output (even a preallocated one), which the session wrapper drops.
 */
async function residentStep(m: ReturnType<typeof mlp>, init: ReadonlyMap<string, HostTensor>) {
  const step = buildTrainStep(m.loss, m.params);
  const graph = await compile(step.outputs, { name: "train-step-runinto" });
  const flatIn = flatFeeds(step.groups, init);
  let a: Record<string, HostTensor> = { ...m.feeds, ...flatIn };
  let b: Record<string, HostTensor> = {};
  const pairs = step.groups.flatMap((gr) => [
    [flatNames.param(gr.name), flatNames.newParam(gr.name)],
    [flatNames.m(gr.name), flatNames.newM(gr.name)],
    [flatNames.v(gr.name), flatNames.newV(gr.name)],
  ]) as [string, string][];
  for (const [i, o] of pairs) b[o] = zerosTensor((flatIn[i] as HostTensor).dtype, (flatIn[i] as HostTensor).shape);
  const scalars = { loss: zerosTensor("float32", []), gradNorm: zerosTensor("float32", []) };
  let count = 0;
  const run = async (): Promise<void> => {
    count += 1;
    const feeds = { ...a, [adamNames.step]: f32(count), [adamNames.lr]: f32(1e-4) };
    await graph.runInto(feeds, { ...b, ...scalars });
    const next: Record<string, HostTensor> = { ...m.feeds };
    const prev: Record<string, HostTensor> = {};
    for (const [i, o] of pairs) [next[i], prev[o]] = [b[o] as HostTensor, a[i] as HostTensor];
    [a, b] = [next, prev];
  };
  return { run, groups: step.groups, dispose: () => graph.dispose() };
}

const f32 = (v: number): HostTensor => ({ dtype: "float32", shape: [], data: Float32Array.of(v) });

/** Prints the step time, the tensor-traffic time and their ratio. */
async function trainingTraffic(): Promise<void> {
  const widths = [1024, 2560, 2048, 1024];
  const batch = 64;
  const m = mlp(widths, batch);
  const numParams = [...m.init.values()].reduce((s, h) => s + h.data.length, 0);
  const trainer = await Trainer.create(m.loss, m.params, m.init);
  const resident = await residentStep(m, m.init);
  const traffic = await compile(trafficGraph(resident.groups, m.x, m.y), { name: "train-traffic" });
  const trafficIn = { ...m.feeds, ...flatFeeds(resident.groups, m.init) };
  const outs: Record<string, HostTensor> = {};
  for (const o of traffic.model.outputs) outs[o.name] = zerosTensor(o.dtype as "float32", o.shape as number[]);
  try {
    const samples = await timeInterleaved(
      {
        step: () => trainer.step(m.feeds, 1e-4),
        io: () => traffic.run(trafficIn),
        ioInto: () => traffic.runInto(trafficIn, outs),
        stepInto: () => resident.run(),
      },
      { warmup: 1, runs: 7, settle: 1 },
    );
    const ms = medians(samples);
    const mb = (numParams * 4 * 3) / 2 ** 20;
    const saved = ms.step - ms.stepInto;
    console.log(
      `train step, MLP ${widths.join("→")} (${fmt(numParams / 1e6, 2)}M params), batch ${batch}, MSE + AdamW: ` +
        `Trainer.step ${fmt(ms.step)} ms; same graph via runInto into double-buffered preallocated outputs ` +
        `${fmt(ms.stepInto)} ms (difference ${fmt(saved)} ms, ${fmt((100 * saved) / ms.step)}%)`,
    );
    console.log(
      `tensor traffic, Identity graph over the same tensors (params+m+v ${fmt(mb)} MiB in and out, batch in): ` +
        `run ${fmt(ms.io)} ms, runInto preallocated ${fmt(ms.ioInto)} ms`,
    );
    console.log(
      `share of a training step spent moving params in/out of onnxruntime: ${fmt((100 * ms.io) / ms.step)}% ` +
        `(io ${fmt(ms.io)} ms / step ${fmt(ms.step)} ms; an upper bound: each Identity adds a copy the real step does not make)`,
    );
  } finally {
    await trainer.dispose();
    await traffic.dispose();
    await resident.dispose();
  }
}

async function main(): Promise<void> {
  console.log(`engine bench: onnxruntime-node cpu, ${os.availableParallelism()} threads, median of interleaved runs`);
  const ratios = [await compareOp(convCase()), await compareOp(matmulCase())];
  await trainingTraffic();
  console.log("overhead ratio = geometric mean over conv and matmul of the median per-round time ratio sdts / hand-written");
  console.log(`engine overhead ratio: ${fmt(geomean(ratios), 3)}`);
}

await main();
