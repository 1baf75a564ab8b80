/** Auth (Bearer or Basic with the key as password), body size limit, routing errors, static UI, and the CLI's refusal to listen openly. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { SdtsServer } from "../../../src/server/app.js";
import { call, start } from "./helpers.js";

const KEY = "s3cret-key";
let s: SdtsServer;
const web = mkdtempSync(join(tmpdir(), "sdts-web-"));
writeFileSync(join(web, "index.html"), "<!doctype html><title>ui</title>");
writeFileSync(join(web, "app.js"), "export {};");

before(async () => {
  s = await start({ apiKey: KEY, maxBodyBytes: 4096, webRoot: web });
});
after(async () => {
  await s.close();
});

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;

test("401 without a key or with a wrong one; Bearer and Basic (any user) both pass", async () => {
  const wrong: Record<string, string>[] = [{}, { authorization: "Bearer nope" }, { authorization: basic("user", "nope") }, { authorization: `Token ${KEY}` }, { authorization: basic(KEY, "") }];
  for (const headers of wrong) {
    const r = await call(s, "GET", "/sdapi/v1/samplers", undefined, headers);
    assert.equal(r.status, 401, JSON.stringify(headers));
    assert.equal(r.body.error.code, "unauthorized");
    assert.match(r.headers.get("www-authenticate") ?? "", /^Basic/);
  }
  for (const authorization of [`Bearer ${KEY}`, basic("user", KEY), basic("", KEY)]) {
    const r = await call(s, "GET", "/sdapi/v1/samplers", undefined, { authorization });
    assert.equal(r.status, 200, authorization);
  }
  // the UI and images are behind the key too
  assert.equal((await fetch(`${s.url}/`)).status, 401);
  assert.equal((await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "x" })).status, 401);
});

const auth = { authorization: `Bearer ${KEY}` };

test("a body over the limit is 413; unknown routes 404; wrong methods 405", async () => {
  const big = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "x".repeat(5000) }, auth);
  assert.equal(big.status, 413);
  assert.equal(big.body.error.code, "body_too_large");
  assert.equal((await call(s, "GET", "/api/nothing", undefined, auth)).status, 404);
  assert.equal((await call(s, "DELETE", "/sdapi/v1/samplers", undefined, auth)).status, 405);
});

test("static UI: / is index.html, files by type, no escaping the folder", async () => {
  const index = await fetch(`${s.url}/`, { headers: auth });
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await index.text(), /<title>ui<\/title>/);
  const js = await fetch(`${s.url}/app.js`, { headers: auth });
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  for (const p of ["/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd", "/missing.css"]) {
    assert.equal((await fetch(`${s.url}${p}`, { headers: auth })).status, 404, p);
  }
  assert.equal((await fetch(`${s.url}/outputs/..%2fpackage.json`, { headers: auth })).status, 404);
});

test("sdts serve refuses a non-loopback host without --api-key (exit 2, one line)", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--host", "0.0.0.0", "--model", "/nonexistent"], { encoding: "utf8", timeout: 30000 });
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0] ?? "", /--api-key/);
});
