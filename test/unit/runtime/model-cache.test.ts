/** The model cache folder: hard links into it, its data-file fallback and atomic model writes. */
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { input } from "../../../src/graph/apply.js";
import { exportOnnx } from "../../../src/graph/onnx/export.js";
import * as g from "../../../src/graph/ops.js";
import { type DataPart, MAX_OPTIMIZED, defaultCacheRoot, openModelDir } from "../../../src/runtime/model-cache.js";

describe("model cache", () => {
  let root: string;
  let src: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "sdts-cache-test-"));
    src = join(root, "ckpt.safetensors");
    await writeFile(src, new Uint8Array(100).map((_, i) => i));
  });
  after(() => rm(root, { recursive: true, force: true }));

  test("cache root: SDTS_CACHE, else XDG_CACHE_HOME/sdts, else ~/.cache/sdts", () => {
    assert.equal(defaultCacheRoot({ SDTS_CACHE: "/x/y" }), "/x/y");
    assert.equal(defaultCacheRoot({ XDG_CACHE_HOME: "/c" }), "/c/sdts");
    assert.match(defaultCacheRoot({}), /\.cache\/sdts$/);
  });

  test("a checkpoint is hard-linked into a folder named by its identity; reopening reuses both", async () => {
    const cache = join(root, "c1");
    const a = await openModelDir([src], { root: cache });
    const name = a.location(src);
    assert.ok(name !== undefined);
    const [s, l] = await Promise.all([stat(src), stat(join(a.dir, name))]);
    assert.equal(l.ino, s.ino, "the link is the same file");
    const b = await openModelDir([src], { root: cache });
    assert.equal(b.dir, a.dir);
    assert.equal(b.location(src), name);
    // a changed checkpoint (new mtime) gets a fresh folder
    await utimes(src, new Date(), new Date(Date.now() + 5000));
    const c = await openModelDir([src], { root: cache });
    assert.notEqual(c.dir, a.dir);
  });

  test("when the filesystem cannot link (EXDEV), the file has no location; tensors go to a data file, reused later", async () => {
    const exdev = () => Promise.reject(Object.assign(new Error("cross-device link"), { code: "EXDEV" }));
    const dir = await openModelDir([src], { root: join(root, "c2"), link: exdev });
    assert.equal(dir.location(src), undefined);
    let reads = 0;
    const part = (key: string, bytes: number[]): DataPart => ({ key, length: bytes.length, read: async () => (reads++, Uint8Array.from(bytes)) });
    const parts = [part("a", [1, 2, 3]), part("b", [4, 5, 6, 7, 8])];
    const ranges = await dir.writeData("unet-x", parts);
    assert.deepEqual(ranges.get("a"), { location: "unet-x.bin", offset: 0, length: 3 });
    assert.deepEqual(ranges.get("b"), { location: "unet-x.bin", offset: 64, length: 5 }, "64-byte aligned");
    const bin = await readFile(join(dir.dir, "unet-x.bin"));
    assert.deepEqual([...bin.subarray(64, 69)], [4, 5, 6, 7, 8]);
    assert.equal(reads, 2);
    await dir.writeData("unet-x", parts);
    assert.equal(reads, 2, "an identical data file is reused, not rewritten");
  });

  test("other link errors are reported", async () => {
    const broken = () => Promise.reject(Object.assign(new Error("I/O error"), { code: "EIO" }));
    await assert.rejects(openModelDir([src], { root: join(root, "c3"), link: broken }), /BackendError|cannot hard-link/);
  });

  test("openSession saves the optimized graph, loads it next time, and deletes copies saved under another key", async () => {
    const dir = await openModelDir([src], { root: join(root, "c5") });
    await writeFile(join(dir.dir, "m-aaaaaaaaaaaa.opt.onnx"), "stale");
    await writeFile(join(dir.dir, "m-aaaaaaaaaaaa-bbbbbbbbbbbb.opt.bin"), "stale");
    await writeFile(join(dir.dir, "mm-aaaaaaaaaaaa.opt.onnx"), "another graph's");
    const x = input("x", "float32", [2]);
    const bytes = exportOnnx({ y: g.mul(g.add(x, 1), 2) }).bytes;
    const feeds = { x: { dtype: "float32", shape: [2], data: Float32Array.of(1, 2) } } as const;
    for (let i = 0; i < 2; i++) {
      const s = await dir.openSession("m", bytes, { provider: "cpu", graphName: "m", threads: 1 });
      try {
        assert.deepEqual([...((await s.run(feeds)).y?.data as Float32Array)], [4, 6]);
      } finally {
        await s.dispose();
      }
      const files = (await readdir(dir.dir)).sort();
      assert.equal(files.filter((f) => /^m-[0-9a-f]{12}\.opt\.onnx$/.test(f)).length, 1, files.join(", "));
      assert.ok(!files.includes("m-aaaaaaaaaaaa.opt.onnx") && !files.includes("m-aaaaaaaaaaaa-bbbbbbbbbbbb.opt.bin"), "stale copies removed");
      assert.ok(files.includes("mm-aaaaaaaaaaaa.opt.onnx"), "other stems untouched");
    }
  });

  test(`a folder keeps the ${MAX_OPTIMIZED} most recently used optimized copies (one per graph shape), deleting the oldest`, async () => {
    const dir = await openModelDir([src], { root: join(root, "c6") });
    const x = input("x", "float32", [2]);
    const bytes = exportOnnx({ y: g.mul(x, 3) }).bytes;
    const open = async (stem: string) => (await dir.openSession(stem, bytes, { provider: "cpu", graphName: stem, threads: 1 })).dispose();
    const copies = async () => (await readdir(dir.dir)).filter((f) => f.endsWith(".opt.onnx")).map((f) => f.split("-")[0]).sort();
    const stems = Array.from({ length: MAX_OPTIMIZED }, (_, i) => `s${i}`);
    for (const [i, s] of stems.entries()) {
      await open(s);
      const t = new Date(Date.now() - (10 - i) * 60_000); // s0 oldest
      for (const f of await readdir(dir.dir)) if (f.startsWith(`${s}-`) && f.endsWith(".opt.onnx")) await utimes(join(dir.dir, f), t, t);
    }
    const s1 = (await readdir(dir.dir)).find((f) => f.startsWith("s1-") && f.endsWith(".opt.onnx")) ?? "";
    await writeFile(join(dir.dir, s1.replace(".opt.onnx", "-bbbbbbbbbbbb.opt.bin")), "its weights"); // as a large graph's copy has
    await open("s0"); // used again: now the newest
    await open("late"); // one too many: s1, the least recently used, goes
    assert.deepEqual(await copies(), ["late", "s0", ...stems.slice(2)].sort());
    assert.ok(!(await readdir(dir.dir)).some((f) => f.startsWith("s1-") && f.endsWith(".opt.bin")), "its data file goes too");
  });

  test("writeModel writes atomically and leaves identical bytes alone", async () => {
    const dir = await openModelDir([src], { root: join(root, "c4") });
    const p = await dir.writeModel("m.onnx", Uint8Array.of(1, 2, 3));
    const t0 = (await stat(p)).mtimeMs;
    assert.equal(await dir.writeModel("m.onnx", Uint8Array.of(1, 2, 3)), p);
    assert.equal((await stat(p)).mtimeMs, t0);
    await dir.writeModel("m.onnx", Uint8Array.of(9));
    assert.deepEqual([...(await readFile(p))], [9]);
  });
});
