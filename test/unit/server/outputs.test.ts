/** Outputs on disk: PNG + infotext, numbered, never overwritten (also under concurrent writes); the gallery index and paging. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { readPngText } from "../../../src/index.js";
import type { SdtsServer } from "../../../src/server/app.js";
import { Outputs, paramsFromInfotext } from "../../../src/server/outputs.js";
import { call, readEvents, start } from "./helpers.js";

let s: SdtsServer;
const dir = mkdtempSync(join(tmpdir(), "sdts-out-"));
// a file already there (e.g. from `sdts generate`) is never overwritten and joins the gallery
const EXISTING = Buffer.from("89504e470d0a1a0a", "hex");
writeFileSync(join(dir, "00000-5.png"), EXISTING);

before(async () => {
  s = await start({ outputs: dir });
});
after(async () => {
  await s.close();
});

test("native jobs write numbered PNGs with their infotext; nothing is overwritten", async () => {
  const sub = await call(s, "POST", "/api/jobs", { prompt: "a hat", steps: 2, seed: 5, width: 32, height: 32, batchSize: 2 });
  const done = (await readEvents(s, sub.body.id)).at(-1)!;
  assert.equal(done.event, "done");
  assert.deepEqual(done.data.images.map((i: { url: string }) => i.url), ["/outputs/00001-5.png", "/outputs/00002-6.png"]);
  assert.deepEqual(readFileSync(join(dir, "00000-5.png")), EXISTING);
  const text = readPngText(new Uint8Array(readFileSync(join(dir, "00002-6.png"))))["parameters"];
  assert.equal(text, done.data.images[1].infotext);
  assert.match(text ?? "", /^a hat\nSteps: 2, .*Seed: 6, Size: 32x32/);
  assert.ok(!readdirSync(dir).some((n) => n.startsWith(".tmp")), "no temp files left");
});

test("A1111 save_images writes files too; send_images false sends none", async () => {
  const r = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "saved", steps: 2, seed: 77, width: 32, height: 32, save_images: true, send_images: false });
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.images, []);
  assert.ok(readdirSync(dir).some((n) => /^\d{5}-77\.png$/.test(n)));
});

test("gallery: newest first, paged with before=, with params for 'use these settings'", async () => {
  const all = await call(s, "GET", "/api/gallery");
  const files = all.body.items.map((i: { url: string }) => i.url);
  assert.equal(files[0], "/outputs/00003-77.png");
  assert.ok(files.includes("/outputs/00000-5.png"), "the pre-existing file is listed");
  const first = all.body.items[1];
  assert.deepEqual(first.params, { prompt: "a hat", negativePrompt: "", steps: 2, cfgScale: 7, sampler: "Euler a", seed: 6, width: 32, height: 32, model: "tiny-pipeline" });
  assert.equal(typeof first.createdAt, "string");
  const p1 = await call(s, "GET", "/api/gallery?limit=2");
  assert.equal(p1.body.items.length, 2);
  const p2 = await call(s, "GET", `/api/gallery?limit=2&before=${p1.body.next}`);
  assert.deepEqual(p2.body.items.map((i: { file: string }) => i.file), ["00001-5.png", "00000-5.png"]);
  assert.equal((await call(s, "GET", "/api/gallery?limit=0")).status, 422);
  assert.equal((await call(s, "GET", "/api/gallery?before=../x")).status, 422);
});

test("concurrent savers never collide; a fresh Outputs rebuilds the gallery from the index and the folder", async () => {
  const d = mkdtempSync(join(tmpdir(), "sdts-out2-"));
  const a = new Outputs(d);
  const b = new Outputs(d);
  const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex");
  const info = (seed: number) => ({ prompt: "p", negativePrompt: "", steps: 1, cfgScale: 7, sampler: "Euler", seed, seeds: [seed], width: 8, height: 8, batchSize: 1, model: "m", infotexts: [`p\nSteps: 1, Sampler: Euler, Seed: ${seed}`] });
  const res = (seed: number) => ({ images: [new Uint8Array(png)], seeds: [seed], info: info(seed) });
  const saved = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).save(res(i))));
  const names = saved.flat().map((x) => x.file);
  assert.equal(new Set(names).size, 10);
  assert.equal(readdirSync(d).filter((n) => n.endsWith(".png")).length, 10);
  const fresh = new Outputs(d);
  const listed = await fresh.list(100);
  assert.equal(listed.items.length, 10);
  assert.equal(paramsFromInfotext("p\nSteps: 1, Sampler: Euler, Seed: 3").seed, 3);
});
