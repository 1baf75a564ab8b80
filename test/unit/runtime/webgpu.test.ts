/**
 * WebGPU vs CPU on a small conv + softmax-attention graph.
 *
 * Dawn (inside ORT's WebGPU EP) dlopens libvulkan.so.1 when the first WebGPU session is
 * made. LD_LIBRARY_PATH is only read at process start, and Chromium's SwiftShader ships its
 * own libvulkan.so.1 beside the ICD, so the WebGPU part runs in a child `node` started with
 * VK_ICD_FILENAMES (and LD_LIBRARY_PATH) set; this same file is the child's entry point.
 * The child also runs three training steps of an MLP with 28 parameter tensors: the optimizer
 * splits its flat update into one output per tensor, more outputs than one WebGPU shader may bind.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { input } from "../../../src/graph/apply.js";
import { toHost } from "../../../src/graph/host.js";
import { encodeModel, type OnnxTensor } from "../../../src/graph/onnx/proto.js";
import * as g from "../../../src/graph/ops.js";
import type { Tensor } from "../../../src/graph/tensor.js";
import type { HostTensor } from "../../../src/runtime/host-tensor.js";
import type { Provider } from "../../../src/runtime/providers.js";
import { providerStatus } from "../../../src/runtime/providers.js";
import { createSession } from "../../../src/runtime/session.js";
import { Trainer } from "../../../src/train/train-step.js";

const CHILD_FLAG = "SDTS_WEBGPU_TEST_CHILD";
const SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";
const SYSTEM_ICD_DIRS = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];

/** Deterministic weights in [-scale, scale) (mulberry32). */
function randoms(n: number, seed: number, scale: number): number[] {
  let a = seed >>> 0;
  return Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1) * scale;
  });
}

const floats = (name: string, dims: number[], seed: number, scale = 0.5): OnnxTensor => {
  const n = dims.reduce((p, d) => p * d, 1);
  return { name, elemType: 1, dims, raw: new Uint8Array(Float32Array.from(randoms(n, seed, scale)).buffer) };
};

/** x [1, 4, 6, 6] → conv 3×3 [1, 8, 6, 6] → tokens [1, 36, 8] → single-head attention [1, 36, 8]. */
function attentionModel(): Uint8Array {
  const perm = { name: "perm", type: "ints", value: [0, 2, 1] } as const;
  return encodeModel({
    opsetVersion: 17,
    graph: {
      name: "conv-attention",
      inputs: [{ name: "x", elemType: 1, dims: [1, 4, 6, 6] }],
      outputs: [{ name: "conv", elemType: 1, dims: [1, 8, 6, 6] }, { name: "attn", elemType: 1, dims: [1, 36, 8] }],
      initializers: [
        floats("k", [8, 4, 3, 3], 1),
        floats("b", [8], 2),
        floats("wq", [8, 8], 3),
        floats("wk", [8, 8], 4),
        floats("wv", [8, 8], 5),
        { name: "tokens", elemType: 7, dims: [3], raw: new Uint8Array(BigInt64Array.from([1n, 8n, 36n]).buffer) },
        { name: "scale", elemType: 1, dims: [], raw: new Uint8Array(Float32Array.from([1 / Math.sqrt(8)]).buffer) },
      ],
      nodes: [
        { opType: "Conv", inputs: ["x", "k", "b"], outputs: ["conv"], attrs: [{ name: "pads", type: "ints", value: [1, 1, 1, 1] }] },
        { opType: "Reshape", inputs: ["conv", "tokens"], outputs: ["r"] }, // [1, 8, 36]
        { opType: "Transpose", inputs: ["r"], outputs: ["t"], attrs: [perm] }, // [1, 36, 8]
        { opType: "MatMul", inputs: ["t", "wq"], outputs: ["q"] },
        { opType: "MatMul", inputs: ["t", "wk"], outputs: ["kk"] },
        { opType: "MatMul", inputs: ["t", "wv"], outputs: ["v"] },
        { opType: "Transpose", inputs: ["kk"], outputs: ["kt"], attrs: [perm] }, // [1, 8, 36]
        { opType: "MatMul", inputs: ["q", "kt"], outputs: ["s"] }, // [1, 36, 36]
        { opType: "Mul", inputs: ["s", "scale"], outputs: ["s2"] },
        { opType: "Softmax", inputs: ["s2"], outputs: ["p"], attrs: [{ name: "axis", type: "int", value: -1 }] },
        { opType: "MatMul", inputs: ["p", "v"], outputs: ["attn"] },
      ],
    },
  });
}

const MLP_LAYERS = 14;

/** Three AdamW steps of a 14-layer tanh MLP (8 wide) regressing random targets: losses and the last layer's new weight. */
async function trainMlp(provider: Provider): Promise<{ losses: number[]; weight: number[] }> {
  const params = new Map<string, Tensor>();
  const init = new Map<string, HostTensor>();
  let h = input("x", "float32", [16, 8]);
  for (let l = 0; l < MLP_LAYERS; l++) {
    const w = input(`l${l}.weight`, "float32", [8, 8]);
    const b = input(`l${l}.bias`, "float32", [8]);
    params.set(`l${l}.weight`, w).set(`l${l}.bias`, b);
    init.set(`l${l}.weight`, toHost("float32", [8, 8], randoms(64, 100 + l, 0.6)));
    init.set(`l${l}.bias`, toHost("float32", [8], randoms(8, 200 + l, 0.1)));
    h = g.tanh(g.add(g.matmul(h, w), b));
  }
  const d = g.sub(h, input("y", "float32", [16, 8]));
  const trainer = await Trainer.create(g.reduceMean(g.mul(d, d), [0, 1]), params, init, { provider, name: "mlp-train" });
  try {
    const batch = { x: toHost("float32", [16, 8], randoms(128, 7, 1)), y: toHost("float32", [16, 8], randoms(128, 8, 0.9)) };
    const losses: number[] = [];
    for (let i = 0; i < 3; i++) losses.push((await trainer.step(batch, 1e-2)).loss);
    return { losses, weight: [...trainer.params.get(`l${MLP_LAYERS - 1}.weight`)!.data].map(Number) };
  } finally {
    await trainer.dispose();
  }
}

/** Child entry: runs the graph and the training steps on cpu and webgpu, prints `{ cpu, webgpu }` as JSON. */
async function childMain(): Promise<void> {
  const model = attentionModel();
  const x = Float32Array.from(randoms(4 * 36, 9, 1));
  const results: Record<string, Record<string, number[]>> = {};
  for (const provider of ["cpu", "webgpu"] as Provider[]) {
    const s = await createSession(model, { provider, graphName: "conv-attention", threads: 1 });
    try {
      const out = await s.run({ x: { dtype: "float32", shape: [1, 4, 6, 6], data: x } });
      const mlp = await trainMlp(provider);
      results[provider] = { conv: [...out.conv!.data].map(Number), attn: [...out.attn!.data].map(Number), trainLoss: mlp.losses, trainWeight: mlp.weight };
    } finally {
      await s.dispose();
    }
  }
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

/** Env for the child that lets Vulkan find a driver, or why there is none. */
function vulkanEnv(): { env: Record<string, string> } | { skip: string } {
  const given = process.env.VK_ICD_FILENAMES;
  if (given && given.split(":").every((f) => fs.existsSync(f))) return { env: {} };
  if (fs.existsSync(SWIFTSHADER_ICD)) {
    const dir = path.dirname(SWIFTSHADER_ICD);
    const ld = [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":");
    return { env: { VK_ICD_FILENAMES: SWIFTSHADER_ICD, LD_LIBRARY_PATH: ld } };
  }
  const system = SYSTEM_ICD_DIRS.some((d) => fs.existsSync(d) && fs.readdirSync(d).some((f) => f.endsWith(".json")));
  if (system) return { env: {} };
  return { skip: `no Vulkan ICD (${SWIFTSHADER_ICD} or ${SYSTEM_ICD_DIRS.join(", ")}); apt-get install chromium` };
}

function maxAbsDiff(a: readonly number[], b: readonly number[]): { maxAbs: number; at: number } {
  assert.equal(a.length, b.length);
  let maxAbs = 0;
  let at = -1;
  a.forEach((v, i) => {
    const d = Math.abs(v - b[i]!);
    if (d > maxAbs) [maxAbs, at] = [d, i];
  });
  return { maxAbs, at };
}

if (process.env[CHILD_FLAG] === "1") {
  await childMain();
} else {
  test("webgpu matches cpu on conv + softmax attention (within 1e-4)", (t) => {
    if (!providerStatus("webgpu").available) return t.skip(`onnxruntime-node has no webgpu build for ${process.platform}/${process.arch}`);
    const vk = vulkanEnv();
    if ("skip" in vk) return t.skip(vk.skip);
    const child = spawnSync(process.execPath, ["--import", import.meta.resolve("tsx"), fileURLToPath(import.meta.url)], {
      env: { ...process.env, ...vk.env, [CHILD_FLAG]: "1" },
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(child.status, 0, `webgpu child failed:\n${child.stderr}\n${child.stdout}`);
    const lines = child.stdout.trim().split("\n");
    const out = JSON.parse(lines[lines.length - 1]!) as Record<"cpu" | "webgpu", Record<"conv" | "attn" | "trainLoss" | "trainWeight", number[]>>;
    const losses = out.cpu.trainLoss;
    assert.ok(losses[2]! < losses[0]!, `the MLP's loss does not fall on cpu: ${losses.join(", ")}`);
    for (const name of ["conv", "attn", "trainLoss", "trainWeight"] as const) {
      const { maxAbs, at } = maxAbsDiff(out.webgpu[name], out.cpu[name]);
      assert.ok(maxAbs <= 1e-4, `${name}: maxAbs ${maxAbs} at ${at} (webgpu ${out.webgpu[name][at]}, cpu ${out.cpu[name][at]})`);
      assert.ok(out.cpu[name].some((v) => Math.abs(v) > 0.1), `${name} output is trivially small`);
    }
  });
}
