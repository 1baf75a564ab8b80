/** The model cache folder: hard links into it, its data-file fallback and atomic model writes. */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type DataPart, defaultCacheRoot, openModelDir } from "../../../src/runtime/model-cache.js";

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
