/** Jobs over HTTP: queue limit 503 + Retry-After, A1111 interrupt, native cancel, SSE order, disconnect cancels. */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { SdtsServer } from "../../../src/server/app.js";
import { call, readEvents, start, until } from "./helpers.js";

let s: SdtsServer;
before(async () => {
  s = await start({ queueLimit: 1 });
});
after(async () => {
  await s.close();
});

const LONG = { prompt: "slow", steps: 150, width: 32, height: 32, seed: 1 };
const idle = () => until(() => s.context.queue.current === undefined && s.context.queue.waitingCount === 0);

test("SSE: start → progress (steps rising, previews as data URLs) → done with image URLs", async () => {
  const sub = await call(s, "POST", "/api/jobs", { prompt: "a boat", steps: 4, seed: 11, width: 32, height: 32, unknownField: true });
  assert.equal(sub.status, 202);
  assert.match(sub.body.id, /^[0-9a-f]+$/);
  assert.equal(sub.body.position, 0);
  const events = await readEvents(s, sub.body.id);
  const names = events.map((e) => e.event);
  assert.equal(names[0], "start", names.join());
  assert.equal(names[names.length - 1], "done");
  const steps = events.filter((e) => e.event === "progress").map((e) => e.data.step as number);
  assert.deepEqual(steps, [...steps].sort((a, b) => a - b), "steps never go back");
  assert.equal(steps[steps.length - 1], 4);
  assert.ok(events.some((e) => e.event === "progress" && /^data:image\/png;base64,/.test(e.data.preview ?? "")), "a preview came");
  const done = events[events.length - 1]!.data;
  assert.equal(done.images.length, 1);
  assert.equal(done.images[0].seed, 11);
  assert.match(done.images[0].url, /^\/outputs\/\d{5}-11\.png$/);
  assert.match(done.images[0].infotext, /Seed: 11/);
  assert.equal(done.info.steps, 4);
  const img = await fetch(`${s.url}${done.images[0].url}`);
  assert.equal(img.headers.get("content-type"), "image/png");
  const snap = await call(s, "GET", `/api/jobs/${sub.body.id}`);
  assert.equal(snap.body.state, "done");
  // a late subscriber gets the end state at once
  const late = await readEvents(s, sub.body.id);
  assert.deepEqual(late.map((e) => e.event), ["done"]);
});

test("a job waiting in the queue hears queued {position}, then its turn", async () => {
  const a = await call(s, "POST", "/api/jobs", { ...LONG, steps: 6 });
  const b = await call(s, "POST", "/api/jobs", { prompt: "second", steps: 2, width: 32, height: 32 });
  assert.equal(b.body.position, 1);
  const events = await readEvents(s, b.body.id);
  assert.deepEqual(events[0], { event: "queued", data: { position: 1 } });
  const names = events.map((e) => e.event);
  assert.ok(names.indexOf("start") > 0 && names.at(-1) === "done", names.join());
  assert.equal((await call(s, "GET", `/api/jobs/${a.body.id}`)).body.state, "done");
});

test("queue limit: one running, one waiting, the next is 503 with Retry-After", async () => {
  await idle();
  const running = await call(s, "POST", "/api/jobs", LONG);
  const waiting = await call(s, "POST", "/api/jobs", LONG);
  assert.equal(running.status, 202);
  assert.equal(waiting.status, 202);
  const full = await call(s, "POST", "/api/jobs", LONG);
  assert.equal(full.status, 503);
  assert.equal(full.body.error.code, "queue_full");
  assert.ok(Number(full.headers.get("retry-after")) >= 1);
  const a1111 = await call(s, "POST", "/sdapi/v1/txt2img", LONG);
  assert.equal(a1111.status, 503);
  assert.ok(Number(a1111.headers.get("retry-after")) >= 1);
  // DELETE: the waiting job goes at once, the running one after its current step
  const del = await call(s, "DELETE", `/api/jobs/${waiting.body.id}`);
  assert.equal(del.body.state, "cancelled");
  await until(async () => (await call(s, "GET", `/api/jobs/${running.body.id}`)).body.step > 0);
  await call(s, "DELETE", `/api/jobs/${running.body.id}`);
  const ev = await readEvents(s, running.body.id);
  assert.equal(ev.at(-1)?.event, "cancelled");
  const snap = await call(s, "GET", `/api/jobs/${running.body.id}`);
  assert.equal(snap.body.state, "cancelled");
  assert.ok(snap.body.step < 150, "stopped early");
  assert.equal((await call(s, "DELETE", "/api/jobs/00ff")).status, 404);
});

test("A1111 interrupt: the running txt2img stops, answers, and /progress says interrupted", async () => {
  await idle();
  const pending = call(s, "POST", "/sdapi/v1/txt2img", { ...LONG, n_iter: 3 });
  let seen: { body: { state: { sampling_step: number; job_count: number }; progress: number; current_image: string | null } } | undefined;
  await until(async () => {
    seen = await call(s, "GET", "/sdapi/v1/progress");
    return seen.body.state.sampling_step >= 2;
  });
  assert.equal(seen!.body.state.job_count, 3);
  assert.ok(seen!.body.progress > 0 && seen!.body.progress < 1);
  assert.equal(typeof seen!.body.current_image, "string");
  const skipCheck = await call(s, "GET", "/sdapi/v1/progress?skip_current_image=true");
  assert.equal(skipCheck.body.current_image, null);
  assert.deepEqual((await call(s, "POST", "/sdapi/v1/interrupt")).body, {});
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body.images.length, 0, "the interrupted run makes no image and the later runs do not start");
  const after = await call(s, "GET", "/sdapi/v1/progress");
  assert.equal(after.body.state.interrupted, true);
  assert.equal(after.body.state.job_count, 0);
});

test("a client that drops its event stream cancels its job", async () => {
  await idle();
  const sub = await call(s, "POST", "/api/jobs", LONG);
  const seen = await readEvents(s, sub.body.id, (e) => e.event === "progress");
  assert.equal(seen.at(-1)?.event, "progress");
  await until(async () => (await call(s, "GET", `/api/jobs/${sub.body.id}`)).body.state === "cancelled");
  // the queue moves on
  const next = await call(s, "POST", "/api/jobs", { prompt: "after", steps: 2, width: 32, height: 32 });
  assert.equal((await readEvents(s, next.body.id)).at(-1)?.event, "done");
});

test("native API: 422 naming the field, strict types", async () => {
  for (const [body, field] of [
    [{}, "prompt"],
    [{ prompt: "x", steps: "20" }, "steps"],
    [{ prompt: "x", width: 33 }, "width"],
    [{ prompt: "x", sampler: "bogus" }, "sampler"],
    [{ prompt: "x", explain: "yes" }, "explain"],
    [{ prompt: "x", batchSize: 0 }, "batchSize"],
  ] as const) {
    const r = await call(s, "POST", "/api/jobs", body);
    assert.equal(r.status, 422, JSON.stringify(body));
    assert.equal(r.body.error.field, field);
  }
  const info = await call(s, "GET", "/api/info");
  assert.equal(info.body.model, "tiny-pipeline");
  assert.ok(info.body.samplers.some((x: { name: string }) => x.name === "Euler a"));
  assert.deepEqual(Object.keys(info.body.limits).sort(), ["maxBatch", "maxHeight", "maxSteps", "maxWidth", "queueLimit"]);
  assert.equal(info.body.defaults.width, 32);
});

test("explain: the done event carries tokens, heatmaps (h×w numbers) and filmstrip frame URLs", async () => {
  await idle();
  const sub = await call(s, "POST", "/api/jobs", { prompt: "red cube", steps: 3, seed: 2, width: 32, height: 32, explain: true });
  const done = (await readEvents(s, sub.body.id)).at(-1)!;
  assert.equal(done.event, "done");
  const ex = done.data.explain;
  assert.ok(Array.isArray(ex.tokens) && ex.tokens.length > 0, JSON.stringify(ex.tokens));
  assert.ok(ex.heatmaps.length > 0);
  for (const h of ex.heatmaps) assert.equal(h.data.length, h.width * h.height);
  assert.equal(ex.filmstrip.length, 3);
  const frame = await fetch(`${s.url}${ex.filmstrip[0]}`);
  assert.equal(frame.status, 200);
  assert.equal(frame.headers.get("content-type"), "image/png");
});
