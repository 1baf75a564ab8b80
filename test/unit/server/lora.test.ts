/**
 * LoRAs and embeddings over HTTP (issue #7, items 4 and 6): `--lora-dir` / `--embeddings-dir`
 * reach loadModel through the worker; /sdapi/v1/loras, refresh-loras and embeddings in A1111's
 * shapes; `<lora:name:w>` in an A1111 prompt and `loras` in a native job both change the image
 * and are recorded in its infotext; bad LoRA requests are 422s.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { writeSafetensors } from "../../../src/io/safetensors.js";
import { readPngText } from "../../../src/index.js";
import type { SdtsServer } from "../../../src/server/app.js";
import { loraA, loraB, loraTensors, uniform } from "../models/lora-fixtures.js";
import { call, readEvents, start } from "./helpers.js";

let dir: string;
let loraDir: string;
let s: SdtsServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sdts-serve-lora-"));
  loraDir = join(dir, "loras");
  const emb = join(dir, "embeddings");
  await mkdir(loraDir);
  await mkdir(emb);
  await writeSafetensors(join(loraDir, "tiny-style.safetensors"), loraTensors(loraA(), "kohya"), { ss_output_name: "tinyStyle" });
  await writeSafetensors(join(emb, "shiny.safetensors"), new Map([["emb_params", { dtype: "F32", shape: [2, 32], data: uniform(5, 64, 0.5) }]]));
  await writeFile(join(emb, "old.pt"), "not really a pickle");
  s = await start({ loraDir, embeddingsDir: emb });
});

after(async () => {
  await s.close();
  await rm(dir, { recursive: true, force: true });
});

const png = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));
const TXT2IMG = { steps: 3, seed: 11, width: 32, height: 32, sampler_name: "Euler" };

test("GET /sdapi/v1/loras lists the LoRA folder in A1111's shape", async () => {
  const r = await call(s, "GET", "/sdapi/v1/loras");
  assert.equal(r.status, 200);
  assert.equal(r.body.length, 1);
  const [l] = r.body;
  assert.deepEqual(Object.keys(l).sort(), ["alias", "metadata", "name", "path"]);
  assert.equal(l.name, "tiny-style");
  assert.equal(l.alias, "tinyStyle", "the alias is ss_output_name from the file's metadata");
  assert.equal(l.path, join(loraDir, "tiny-style.safetensors"));
  assert.equal(l.metadata.ss_output_name, "tinyStyle");
});

test("txt2img with <lora:tiny-style:0.8>: the image changes and its infotext names the LoRA", async () => {
  const plain = await call(s, "POST", "/sdapi/v1/txt2img", { ...TXT2IMG, prompt: "a red cube" });
  const tagged = await call(s, "POST", "/sdapi/v1/txt2img", { ...TXT2IMG, prompt: "a red cube <lora:tiny-style:0.8>" });
  assert.equal(plain.status, 200, JSON.stringify(plain.body));
  assert.equal(tagged.status, 200, JSON.stringify(tagged.body));
  const text = readPngText(png(tagged.body.images[0]))["parameters"] ?? "";
  assert.match(text, /Lora hashes: "?tiny-style: [0-9a-f]{12}/);
  assert.match(text, /Lora weights: "?tiny-style: 0\.8/);
  assert.equal(JSON.parse(tagged.body.info).infotexts[0], text);
  assert.doesNotMatch(readPngText(png(plain.body.images[0]))["parameters"] ?? "", /Lora/);
  assert.notEqual(tagged.body.images[0], plain.body.images[0], "the LoRA changes the image");
  // By alias too, as A1111 finds it.
  const alias = await call(s, "POST", "/sdapi/v1/txt2img", { ...TXT2IMG, steps: 1, prompt: "x <lora:tinyStyle:1>" });
  assert.equal(alias.status, 200, JSON.stringify(alias.body));
});

test("txt2img naming an unknown LoRA is a 422 that lists the LoRAs there are", async () => {
  const r = await call(s, "POST", "/sdapi/v1/txt2img", { ...TXT2IMG, steps: 1, prompt: "x <lora:nope:1>" });
  assert.equal(r.status, 422, JSON.stringify(r.body));
  assert.match(r.body.error.message, /nope.*tiny-style/s);
});

test("refresh-loras re-reads the folder; GET loras keeps the last listing until then", async () => {
  const extra = join(loraDir, "extra.safetensors");
  await writeSafetensors(extra, loraTensors(loraB(), "peft"));
  try {
    assert.deepEqual((await call(s, "GET", "/sdapi/v1/loras")).body.map((l: { name: string }) => l.name), ["tiny-style"]);
    const r = await call(s, "POST", "/sdapi/v1/refresh-loras");
    assert.equal(r.status, 200);
    assert.equal(r.body, null);
    assert.deepEqual((await call(s, "GET", "/sdapi/v1/loras")).body.map((l: { name: string }) => l.name).sort(), ["extra", "tiny-style"]);
    assert.deepEqual((await call(s, "GET", "/api/info")).body.loras.sort(), ["extra", "tiny-style"]);
  } finally {
    await rm(extra);
    await call(s, "POST", "/sdapi/v1/refresh-loras");
  }
});

test("GET /sdapi/v1/embeddings: loaded and skipped in A1111's shape", async () => {
  const r = await call(s, "GET", "/sdapi/v1/embeddings");
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.loaded, { shiny: { step: null, sd_checkpoint: null, sd_checkpoint_name: null, shape: 32, vectors: 2 } });
  assert.deepEqual(Object.keys(r.body.skipped), ["old"]);
  assert.equal(r.body.skipped.old.vectors, 0);
  assert.match(r.body.skipped.old.reason, /pickle/);
});

test("/api/info lists LoRA and embedding names for the UI", async () => {
  const r = await call(s, "GET", "/api/info");
  assert.deepEqual(r.body.loras, ["tiny-style"]);
  assert.deepEqual(r.body.embeddings, ["shiny"]);
});

test("POST /api/jobs loras: applied and recorded; an unknown name fails the job with invalid_param", async () => {
  const sub = await call(s, "POST", "/api/jobs", { prompt: "a red cube", steps: 2, seed: 3, width: 32, height: 32, loras: [{ name: "tiny-style", weight: 0.5 }] });
  assert.equal(sub.status, 202, JSON.stringify(sub.body));
  const done = (await readEvents(s, sub.body.id)).at(-1);
  assert.equal(done?.event, "done", JSON.stringify(done));
  assert.match(done?.data.images[0].infotext, /Lora weights: "?tiny-style: 0\.5/);
  const bad = await call(s, "POST", "/api/jobs", { prompt: "x", steps: 1, width: 32, height: 32, loras: [{ name: "nope" }] });
  assert.equal(bad.status, 202);
  const err = (await readEvents(s, bad.body.id)).at(-1);
  assert.equal(err?.event, "error");
  assert.equal(err?.data.code, "invalid_param");
  assert.match(err?.data.message, /nope/);
});

test("POST /api/jobs loras: malformed lists are 422s naming the field", async () => {
  const cases: [unknown, string][] = [
    [{ name: "tiny-style" }, "loras"],
    [[{ weight: 1 }], "loras[0].name"],
    [[{ name: "tiny-style", weight: "1" }], "loras[0].weight"],
    [["tiny-style"], "loras[0]"],
    [[{ name: "tiny-style", weight: 11 }], "loras[0].weight"],
    [Array.from({ length: 17 }, () => ({ name: "tiny-style" })), "loras"],
  ];
  for (const [loras, field] of cases) {
    const r = await call(s, "POST", "/api/jobs", { prompt: "x", loras });
    assert.equal(r.status, 422, JSON.stringify(loras));
    assert.equal(r.body.error.field, field, JSON.stringify(r.body));
  }
});

test("without --lora-dir: empty lists, and a native loras list is a 422 saying how to set the folder", async () => {
  const bare = await start();
  try {
    assert.deepEqual((await call(bare, "GET", "/sdapi/v1/loras")).body, []);
    assert.deepEqual((await call(bare, "GET", "/sdapi/v1/embeddings")).body, { loaded: {}, skipped: {} });
    const info = (await call(bare, "GET", "/api/info")).body;
    assert.deepEqual([info.loras, info.embeddings], [[], []]);
    const r = await call(bare, "POST", "/api/jobs", { prompt: "x", loras: [{ name: "tiny-style" }] });
    assert.equal(r.status, 422);
    assert.match(r.body.error.message, /--lora-dir/);
  } finally {
    await bare.close();
  }
});
