/**
 * TorchGenerator must reproduce torch.randn on a seeded CPU generator bit for bit: the goldens
 * store every draw the reference made (initial noise, scheduler draws, VAE posterior draws).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { TorchGenerator, randn } from "../../../src/schedulers/torch-random.js";
import { InputError } from "../../../src/errors.js";
import { GOLDEN, f32, readSafetensors } from "./golden.js";

/** Index of the first element whose float32 bits differ, or −1. */
function firstBitDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

function assertBitwise(actual: Float32Array, expected: Float32Array, what: string): void {
  const at = firstBitDiff(actual, expected);
  assert.equal(at, -1, `${what}: first difference at ${at}: ${actual[at]} vs ${expected[at]} (lengths ${actual.length}, ${expected.length})`);
}

const hexToF32 = (hex: readonly string[]): Float32Array => new Float32Array(Uint32Array.from(hex, (h) => parseInt(h, 16)).buffer);

test("x0 of the scheduler goldens: randn([1,4,8,8], seed 0)", () => {
  const x0 = f32(readSafetensors(`${GOLDEN}/schedulers/x0.safetensors`), "x0");
  assertBitwise(randn([1, 4, 8, 8], 0).data, x0, "x0");
});

test("tiny-pipeline cases: initial noise, then every scheduler draw from the same generator", () => {
  const index = JSON.parse(readFileSync(`${GOLDEN}/tiny-pipeline/cases/index.json`, "utf8")) as {
    cases: { name: string; seed: number }[];
  };
  let draws = 0;
  for (const c of index.cases) {
    const meta = JSON.parse(readFileSync(`${GOLDEN}/tiny-pipeline/cases/${c.name}.json`, "utf8")) as {
      num_scheduler_noise_draws: number;
      shapes: Record<string, number[]>;
    };
    const file = readSafetensors(`${GOLDEN}/tiny-pipeline/cases/${c.name}.safetensors`);
    const shape = meta.shapes.noise ?? [];
    const g = new TorchGenerator(c.seed);
    assertBitwise(g.randn(shape).data, f32(file, "noise"), `${c.name} noise`);
    for (let k = 0; k < meta.num_scheduler_noise_draws; k++) {
      const name = `scheduler_noise.${String(k).padStart(3, "0")}`;
      assertBitwise(g.randn(shape).data, f32(file, name), `${c.name} ${name}`);
      draws++;
    }
  }
  assert.ok(draws >= 10, `expected the Euler and Euler a cases to hold draws (got ${draws})`);
});

test("edit cases: every draw.NNN in generator order (VAE posterior, noise, scheduler)", () => {
  for (const dir of ["img2img", "inpaint"]) {
    const index = JSON.parse(readFileSync(`${GOLDEN}/edit/${dir}/index.json`, "utf8")) as { cases: { name: string }[] };
    for (const { name } of index.cases) {
      const meta = JSON.parse(readFileSync(`${GOLDEN}/edit/${dir}/${name}.json`, "utf8")) as { seed: number; num_draws: number };
      const file = readSafetensors(`${GOLDEN}/edit/${dir}/${name}.safetensors`);
      const g = new TorchGenerator(meta.seed);
      assert.ok(meta.num_draws >= 2, `${name}: expected the posterior and noise draws at least`);
      for (let k = 0; k < meta.num_draws; k++) {
        const key = `draw.${String(k).padStart(3, "0")}`;
        const shape = file.get(key)?.shape ?? [];
        assertBitwise(g.randn(shape).data, f32(file, key), `${dir}/${name} ${key}`);
      }
    }
  }
});

test("scheduler goldens: step noise = consecutive draws of manual_seed(1234)", () => {
  const index = JSON.parse(readFileSync(`${GOLDEN}/schedulers/index.json`, "utf8")) as {
    runs: { name: string; file: string; num_inference_steps: number; noise_steps: number[] }[];
  };
  let checked = 0;
  for (const run of index.runs) {
    if (run.noise_steps.length === 0) continue;
    const file = readSafetensors(`${GOLDEN}/schedulers/${run.file}`);
    const g = new TorchGenerator(1234);
    for (const s of run.noise_steps) {
      const key = `step${String(s).padStart(3, "0")}.noise`;
      assertBitwise(g.randn([1, 4, 8, 8]).data, f32(file, key), `${run.name} n${run.num_inference_steps} ${key}`);
      checked++;
    }
  }
  assert.ok(checked > 100);
});

// No golden holds a tensor of < 16 elements or a size that is not a multiple of 16, so these
// values were produced by the goldens' PyTorch build (Debian python3-torch 1.13.1, x86-64 AVX2):
// g = torch.Generator().manual_seed(0); randn(3), randn(5), randn(20), randn(1), randn(2, 3).
const SEQ0 = [
  ["3fc53f5c", "be963c50", "c00b7149"],
  ["3f1184b6", "bf8ad1a1", "bfb3052d", "3ece837a", "3f5688e5"],
  ["bfad23c2", "bfd91446", "3f111004", "3f4b235d", "3ee11fd0", "3de637d6", "3f240af8", "3ee1df3c", "be5d0b42", "bf3e17a3",
    "3f100e82", "3e84ede2", "3f05da2f", "40135755", "bfbc04b7", "bfcb189e", "3f9a033c", "3dad2087", "bf999e2b", "bb9cd1ae"],
  ["bfa52cfa"],
  ["bf4a85b5", "bcab0b6e", "bf37ee4f", "3f04c561", "bfa800b8", "3e449a5b"],
];
const SEQ0_SHAPES = [[3], [5], [20], [1], [2, 3]];

test("scalar path (< 16 elements) with its cached Box–Muller value, and the redrawn tail of 20", () => {
  const g = new TorchGenerator(0);
  SEQ0_SHAPES.forEach((shape, k) => {
    const t = g.randn(shape);
    assert.deepEqual(t.shape, shape);
    assertBitwise(t.data, hexToF32(SEQ0[k] ?? []), `draw ${k} [${shape.join(", ")}]`);
  });
});

test("seeding uses the low 32 bits, like torch's mt19937 (2^32 + 42 ≡ 42, −1 ≡ 2^32 − 1)", () => {
  const expected = hexToF32(["3eac62ae", "3e03e69d", "3e7016e7", "3e6bdc6c", "bf8fb9c2", "be3eccd8", "400d532c"]);
  assertBitwise(randn([7], 42).data, expected, "seed 42");
  assertBitwise(randn([7], 2 ** 32 + 42).data, expected, "seed 2^32 + 42");
  assertBitwise(randn([40], -1).data, randn([40], 2 ** 32 - 1).data, "seed −1");
  assert.throws(() => new TorchGenerator(0.5), InputError);
  assert.throws(() => new TorchGenerator(2 ** 53), InputError);
  assert.throws(() => randn([2, -1], 0), InputError);
});

test("one draw of a shape equals one flat draw of its size; clone() continues identically", () => {
  assertBitwise(randn([2, 4, 5, 5], 9).data, randn([200], 9).data, "shape vs flat");
  const a = new TorchGenerator(77);
  a.randn([5]);
  const b = a.clone();
  assertBitwise(a.randn([3]).data, b.randn([3]).data, "clone scalar (cached value carried)");
  assertBitwise(a.randn([64]).data, b.randn([64]).data, "clone vector");
  assert.equal(randn([0], 1).data.length, 0);
});

test("tiny-sd2 pipeline case: noise and Euler's scheduler draws of seed 4321", () => {
  const file = readSafetensors(`${GOLDEN}/tiny-sd2/cases/pipeline_euler_v.safetensors`);
  const g = new TorchGenerator(4321);
  const shape = file.get("noise")?.shape ?? [];
  assertBitwise(g.randn(shape).data, f32(file, "noise"), "noise");
  for (let k = 0; k < 5; k++) {
    const key = `scheduler_noise.${String(k).padStart(3, "0")}`;
    assertBitwise(g.randn(shape).data, f32(file, key), key);
  }
});
