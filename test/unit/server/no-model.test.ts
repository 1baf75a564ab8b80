/** Starting with no usable model: the server runs, generation is a clear 503, and setting sd_model_checkpoint brings a model in. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { SdtsServer } from "../../../src/server/app.js";
import { TINY, call, start } from "./helpers.js";

let s: SdtsServer;
before(async () => {
  s = await start({ model: "/nonexistent/model.safetensors" });
});
after(async () => {
  await s.close();
});

test("no model: generation answers 503 no_model naming the problem; the rest of the API works", async () => {
  const r = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 2 });
  assert.equal(r.status, 503);
  assert.equal(r.body.error.code, "no_model");
  assert.match(r.body.error.message, /nonexistent/);
  const n = await call(s, "POST", "/api/jobs", { prompt: "x" });
  assert.equal(n.status, 503);
  const info = await call(s, "GET", "/api/info");
  assert.equal(info.body.model, null);
  assert.match(info.body.modelError, /no such file/);
  assert.deepEqual((await call(s, "GET", "/sdapi/v1/sd-models")).body, []);
  assert.equal((await call(s, "GET", "/sdapi/v1/options")).body.sd_model_checkpoint, null);
});

test("POST /sdapi/v1/options sd_model_checkpoint loads a model; then txt2img works", async () => {
  const bad = await call(s, "POST", "/sdapi/v1/options", { sd_model_checkpoint: "/work" });
  assert.equal(bad.status, 422, JSON.stringify(bad.body));
  assert.equal(bad.body.error.field, "sd_model_checkpoint");
  const set = await call(s, "POST", "/sdapi/v1/options", { sd_model_checkpoint: TINY });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.equal((await call(s, "GET", "/sdapi/v1/options")).body.sd_model_checkpoint, "tiny-pipeline");
  const r = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 2 });
  assert.equal(r.status, 200);
  assert.equal(r.body.images.length, 1);
});
