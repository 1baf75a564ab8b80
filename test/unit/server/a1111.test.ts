/** A1111 API over HTTP: txt2img shapes and PNG infotext, null = default, unknown fields, 422s, probes, png-info. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { readPngText } from "../../../src/index.js";
import { parseA1111Txt2Img } from "../../../src/server/a1111-txt2img.js";
import type { SdtsServer } from "../../../src/server/app.js";
import { listCheckpoints, resolveCheckpoint } from "../../../src/server/checkpoints.js";
import { DEFAULT_LIMITS } from "../../../src/server/params.js";
import { TINY, call, start } from "./helpers.js";

let s: SdtsServer;
before(async () => {
  s = await start();
});
after(async () => {
  await s.close();
});

const png = (b64: string) => new Uint8Array(Buffer.from(b64, "base64"));

test("txt2img: A1111 response shape; PNGs carry the infotext; n_iter × batch_size images with seeds seed + i", async () => {
  const r = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "a red cube", negative_prompt: "blur", steps: 2, seed: 42, batch_size: 2, n_iter: 2, cfg_scale: 5, sampler_name: "Euler", width: 32, height: 32 });
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.body).sort(), ["images", "info", "parameters"]);
  assert.equal(r.body.images.length, 4);
  assert.equal(typeof r.body.info, "string");
  const info = JSON.parse(r.body.info);
  assert.deepEqual(info.all_seeds, [42, 43, 44, 45]);
  assert.equal(info.seed, 42);
  for (const k of ["prompt", "all_prompts", "negative_prompt", "all_negative_prompts", "subseed", "all_subseeds", "width", "height", "sampler_name", "cfg_scale", "steps", "batch_size", "infotexts", "sd_model_name", "job_timestamp"]) {
    assert.ok(k in info, `info.${k}`);
  }
  assert.equal(info.sampler_name, "Euler");
  assert.equal(info.cfg_scale, 5);
  assert.equal(info.steps, 2);
  assert.equal(info.infotexts.length, 4);
  assert.match(info.job_timestamp, /^\d{14}$/);
  for (const [i, b64] of r.body.images.entries()) {
    const text = readPngText(png(b64))["parameters"] ?? "";
    assert.equal(text, info.infotexts[i]);
    assert.match(text, new RegExp(`^a red cube\\nNegative prompt: blur\\nSteps: 2, Sampler: Euler, CFG scale: 5, Seed: ${42 + i}, Size: 32x32`));
  }
  assert.equal(r.body.parameters.seed, 42);
  assert.equal(r.body.parameters.n_iter, 2);
  assert.equal(r.body.parameters.send_images, true);
});

test("txt2img: null fields mean the default; unknown fields are ignored", async () => {
  const r = await call(s, "POST", "/sdapi/v1/txt2img", {
    prompt: "x", steps: 2, negative_prompt: null, cfg_scale: null, sampler_name: null, seed: null, width: null, height: null, batch_size: null, n_iter: null,
    styles: null, enable_hr: null, override_settings: null, script_name: null, alwayson_scripts: null, send_images: null, some_extension_field: { a: 1 },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.images.length, 1);
  const p = r.body.parameters;
  assert.equal(p.cfg_scale, 7);
  assert.equal(p.sampler_name, "Euler"); // A1111: sampler_name null falls back to sampler_index "Euler"
  assert.equal(p.seed, -1);
  assert.equal(p.batch_size, 1);
  assert.equal(p.negative_prompt, "");
  assert.ok(!("some_extension_field" in p));
  const info = JSON.parse(r.body.info);
  assert.ok(Number.isInteger(info.seed) && info.seed >= 0, "a random seed was drawn");
  assert.equal(info.width, s.context.queue.model?.defaults.width);
});

test("txt2img request parser: A1111 defaults (steps 50, cfg 7 or the model's, sampler Euler, 1×1) and numbers as strings", () => {
  const r = parseA1111Txt2Img({ steps: null, prompt: null }, { width: 512, height: 512 }, DEFAULT_LIMITS);
  assert.equal(r.runs.length, 1);
  const run = r.runs[0]!;
  assert.deepEqual([run.steps, run.cfgScale, run.sampler, run.width, run.height, run.batchSize, run.prompt], [50, 7, "Euler", 512, 512, 1, ""]);
  const lax = parseA1111Txt2Img({ steps: "12", cfg_scale: "4.5", sampler_name: "DPM++ 2M", scheduler: "Karras", seed: "7", n_iter: 3, batch_size: 2 }, { width: 64, height: 64 }, DEFAULT_LIMITS);
  assert.deepEqual(lax.runs.map((x) => x.seed), [7, 9, 11]);
  assert.equal(lax.runs[0]!.sampler, "DPM++ 2M Karras");
  assert.equal(lax.runs[0]!.steps, 12);
  assert.equal(lax.runs[0]!.cfgScale, 4.5);
  // a model whose folder names its own CFG (the embedded default: 5) gets it when the client sends none
  assert.equal(parseA1111Txt2Img({}, { width: 64, height: 64, cfgScale: 5 }, DEFAULT_LIMITS).runs[0]!.cfgScale, 5);
  assert.equal(parseA1111Txt2Img({ cfg_scale: 7 }, { width: 64, height: 64, cfgScale: 5 }, DEFAULT_LIMITS).runs[0]!.cfgScale, 7);
});

test("txt2img: invalid values are 422 naming the field (FastAPI detail + error)", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ steps: "many" }, "steps"],
    [{ steps: 0 }, "steps"],
    [{ steps: 2.5 }, "steps"],
    [{ width: 100 }, "width"],
    [{ height: 4096 }, "height"],
    [{ cfg_scale: "hot" }, "cfg_scale"],
    [{ sampler_name: "Nope" }, "sampler_name"],
    [{ seed: 1.5 }, "seed"],
    [{ batch_size: 99 }, "batch_size"],
    [{ prompt: 5 }, "prompt"],
    [{ enable_hr: true, hr_upscaler: "Bogus" }, "hr_upscaler"],
    [{ enable_hr: true, width: 512, hr_scale: 4 }, "hr_scale"],
    [{ script_name: "X/Y plot" }, "script_name"],
    [{ scheduler: "Exponential" }, "scheduler"],
  ];
  for (const [body, field] of cases) {
    const r = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "x", ...body });
    assert.equal(r.status, 422, `${JSON.stringify(body)} → ${r.status}`);
    assert.equal(r.body.error.code, "invalid_param");
    assert.equal(r.body.error.field, field);
    assert.match(r.body.error.message, new RegExp(`^${field}`));
    assert.deepEqual(r.body.detail[0].loc, ["body", field]);
    assert.equal(typeof r.body.detail[0].msg, "string");
  }
  const notObject = await call(s, "POST", "/sdapi/v1/txt2img", [1, 2]);
  assert.equal(notObject.status, 422);
  const badJson = await call(s, "POST", "/sdapi/v1/txt2img", "{nope");
  assert.equal(badJson.status, 400);
  assert.equal(badJson.body.error.code, "bad_json");
});

test("probed endpoints answer in A1111's shapes", async () => {
  const samplers = await call(s, "GET", "/sdapi/v1/samplers");
  assert.ok(samplers.body.some((x: { name: string }) => x.name === "Euler a"));
  for (const x of samplers.body) assert.deepEqual(Object.keys(x).sort(), ["aliases", "name", "options"]);
  const schedulers = await call(s, "GET", "/sdapi/v1/schedulers");
  assert.deepEqual(Object.keys(schedulers.body[0]).sort(), ["aliases", "default_rho", "label", "name", "need_inner_model"]);
  const models = await call(s, "GET", "/sdapi/v1/sd-models");
  assert.equal(models.body.length, 1);
  assert.deepEqual(Object.keys(models.body[0]).sort(), ["config", "filename", "hash", "model_name", "sha256", "title"]);
  assert.equal(models.body[0].title, "tiny-pipeline");
  assert.deepEqual((await call(s, "GET", "/sdapi/v1/scripts")).body, { txt2img: [], img2img: [] });
  assert.deepEqual((await call(s, "GET", "/sdapi/v1/embeddings")).body, { loaded: {}, skipped: {} });
  for (const p of ["loras", "hypernetworks", "face-restorers", "realesrgan-models", "prompt-styles", "sd-vae"]) {
    assert.deepEqual((await call(s, "GET", `/sdapi/v1/${p}`)).body, [], p);
  }
  const mem = await call(s, "GET", "/sdapi/v1/memory");
  assert.ok(mem.body.ram.total > 0);
  const flags = await call(s, "GET", "/sdapi/v1/cmd-flags");
  assert.equal(flags.body.api, true);
  const idle = await call(s, "GET", "/sdapi/v1/progress");
  assert.equal(idle.body.progress, 0);
  assert.equal(idle.body.current_image, null);
  for (const k of ["skipped", "interrupted", "job", "job_count", "job_timestamp", "job_no", "sampling_step", "sampling_steps"]) assert.ok(k in idle.body.state, k);
  assert.equal((await call(s, "GET", "/sdapi/v1/nope")).status, 404);
  assert.equal((await call(s, "GET", "/sdapi/v1/txt2img")).status, 405);
});

test("options: unknown options are kept and echoed; sd_model_checkpoint switches model (by path or title) or 422s", async () => {
  const set = await call(s, "POST", "/sdapi/v1/options", { some_setting: 3, sd_model_checkpoint: TINY });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  const got = await call(s, "GET", "/sdapi/v1/options");
  assert.equal(got.body.some_setting, 3);
  assert.equal(got.body.sd_model_checkpoint, "tiny-pipeline");
  const byTitle = await call(s, "POST", "/sdapi/v1/options", { sd_model_checkpoint: "tiny-pipeline [0123456789]" });
  assert.equal(byTitle.status, 200);
  const bad = await call(s, "POST", "/sdapi/v1/options", { sd_model_checkpoint: "no-such-model.safetensors" });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.field, "sd_model_checkpoint");
  assert.equal(s.context.queue.model?.name, "tiny-pipeline", "the loaded model stays");
});

test("png-info reads back what txt2img wrote (with or without a data: prefix)", async () => {
  const gen = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "a, b: c", negative_prompt: "d", steps: 2, seed: 9, width: 32, height: 32 });
  const b64 = gen.body.images[0] as string;
  for (const image of [b64, `data:image/png;base64,${b64}`]) {
    const r = await call(s, "POST", "/sdapi/v1/png-info", { image });
    assert.equal(r.status, 200);
    assert.equal(r.body.info, JSON.parse(gen.body.info).infotexts[0]);
    assert.equal(r.body.parameters.Prompt, "a, b: c");
    assert.equal(r.body.parameters["Negative prompt"], "d");
    assert.equal(r.body.parameters.Seed, "9");
    assert.equal(r.body.parameters.Steps, "2");
    assert.equal(r.body.parameters["Size-1"], "32");
    assert.deepEqual(r.body.items, {});
  }
  const bad = await call(s, "POST", "/sdapi/v1/png-info", { image: Buffer.from("not a png").toString("base64") });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.field, "image");
});

test("sd-models lists the models folder (.safetensors files, diffusers folders) and resolves A1111 titles", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sdts-models-"));
  mkdirSync(join(dir, "sub"));
  writeFileSync(join(dir, "sub", "v1-5.safetensors"), "");
  writeFileSync(join(dir, "notes.txt"), "");
  symlinkSync(TINY, join(dir, "tiny"));
  const list = await listCheckpoints(dir, { source: "/elsewhere/loaded.safetensors", name: "loaded" });
  assert.deepEqual(list.map((e) => e.title), ["loaded.safetensors", "sub/v1-5.safetensors", "tiny"]);
  assert.equal(list[1]?.model_name, "sub_v1-5");
  assert.equal(resolveCheckpoint("sub/v1-5.safetensors [6ce0161689]", list), join(dir, "sub", "v1-5.safetensors"));
  assert.equal(resolveCheckpoint("sub_v1-5", list), join(dir, "sub", "v1-5.safetensors"));
  assert.equal(resolveCheckpoint("nothing", list), undefined);
});
