/** Test helpers: a real server on 127.0.0.1 (random port) with the tiny golden model, and small HTTP clients. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type SdtsServer, startServer } from "../../../src/server/app.js";
import type { ServerOptions } from "../../../src/server/context.js";
import { DEFAULT_LIMITS } from "../../../src/server/params.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

/** The tiny diffusers pipeline of the golden data (32×32 images by default, fast on CPU). */
export const TINY = join(GOLDEN_DIR, "tiny-pipeline");

/** Starts a server on a free loopback port with a fresh outputs folder; waits for the model. */
export async function start(over: Partial<ServerOptions> = {}): Promise<SdtsServer> {
  const s = await startServer({
    model: TINY,
    host: "127.0.0.1",
    port: 0,
    outputs: mkdtempSync(join(tmpdir(), "sdts-serve-")),
    queueLimit: 8,
    limits: DEFAULT_LIMITS,
    maxBodyBytes: 1 << 20,
    previewEvery: 1,
    provider: "cpu",
    log: () => undefined,
    ...over,
  });
  await s.ready;
  return s;
}

/** A JSON response. */
export interface Res {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON shapes
}

/** Sends a request and parses the JSON answer. */
export async function call(s: SdtsServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const r = await fetch(`${s.url}${path}`, init);
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: r.status, headers: r.headers, body: parsed };
}

/** One server-sent event. */
export interface Sse {
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- event payloads vary
}

/**
 * Reads a job's event stream until it ends, or until `stopAfter` returns true for an event
 * (then the connection is dropped, as a closed browser tab would).
 */
export async function readEvents(s: SdtsServer, id: string, stopAfter?: (e: Sse) => boolean): Promise<Sse[]> {
  const ac = new AbortController();
  const r = await fetch(`${s.url}/api/jobs/${id}/events`, { signal: ac.signal });
  const out: Sse[] = [];
  const reader = r.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
    if (done) return out;
    buf += dec.decode(value, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event === undefined) continue;
      const e = { event, data: JSON.parse(data ?? "null") };
      out.push(e);
      if (stopAfter?.(e)) {
        ac.abort();
        return out;
      }
    }
  }
}

/** Polls until `cond` holds (or fails after `ms`). */
export async function until(cond: () => boolean | Promise<boolean>, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}
