/**
 * `npm run bench:serve`: starts `sdts serve` as its own process, then sends 50 concurrent
 * A1111 txt2img requests from this process over loopback. Every request must be answered
 * (an image, or a clean 503 with Retry-After): none lost, none duplicated (each answer's seed
 * and image are checked against its request). Prints server RSS before and after, latency
 * p50/p95, and how fast /sdapi/v1/progress answers while the queue is busy.
 *
 *   npm run bench:serve -- [--model <path>] [--requests 50] [--steps 4] [--size 32] [--queue-limit 64]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";

const { values: argv } = parseArgs({
  options: {
    model: { type: "string", default: join(process.env.SDTS_GOLDEN ?? "/work/shared/golden", "tiny-pipeline") },
    requests: { type: "string", default: "50" },
    steps: { type: "string", default: "4" },
    size: { type: "string" },
    "queue-limit": { type: "string", default: "64" },
  },
});
const N = Number(argv.requests);

interface Answer {
  status: number;
  ms: number;
  body: string;
  retryAfter: string | undefined;
}

/** One HTTP request with no client-side timeout (a queued txt2img may wait minutes). */
function http(base: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const t0 = performance.now();
  const data = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, agent: false, headers: data ? { "content-type": "application/json", "content-length": Buffer.byteLength(data) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const ra = res.headers["retry-after"];
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0, body: Buffer.concat(chunks).toString("utf8"), retryAfter: Array.isArray(ra) ? ra[0] : ra });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(data);
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
}

function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number);
}

async function startServer(outputs: string): Promise<{ child: ChildProcess; base: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", "--model", argv.model, "--port", "0", "--outputs", outputs, "--queue-limit", argv["queue-limit"], "--preview-every", "2"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const base = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
  for (;;) {
    const info = JSON.parse((await http(base, "GET", "/api/info")).body) as { model: string | null; modelError: string | null; queue: { running: boolean } };
    if (info.model !== null) break;
    if (!info.queue.running) throw new Error(`the server has no model: ${info.modelError}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, base };
}

/** How the answers came out: images (each checked against its request), clean 503s, lost, duplicated. */
function tally(answers: readonly (Answer | Error)[], seeds: readonly number[]) {
  const t = { ok: 0, busy503: 0, lost: 0, wrong: 0, duplicated: 0, okMs: [] as number[] };
  const seenSeeds = new Set<number>();
  const seenImages = new Set<string>();
  for (const [i, a] of answers.entries()) {
    if (a instanceof Error || (a.status !== 200 && a.status !== 503)) t.lost++;
    else if (a.status === 503) {
      if (a.retryAfter !== undefined && /"code"/.test(a.body)) t.busy503++;
      else t.lost++;
    } else {
      const res = JSON.parse(a.body) as { images: string[]; info: string };
      const seed = (JSON.parse(res.info) as { seed: number }).seed;
      const img = createHash("sha256").update(res.images[0] ?? "").digest("hex");
      if (seed !== seeds[i] || res.images.length !== 1) t.wrong++;
      if (seenSeeds.has(seed) || seenImages.has(img)) t.duplicated++;
      seenSeeds.add(seed);
      seenImages.add(img);
      t.ok++;
      t.okMs.push(a.ms);
    }
  }
  return t;
}

/** Sends N requests at once while polling /progress, to see the HTTP thread stay free while the worker computes. */
async function burst(base: string, body: (seed: number) => unknown, seeds: readonly number[]): Promise<{ answers: (Answer | Error)[]; polls: number[]; wall: number }> {
  const polls: number[] = [];
  let busy = true;
  const poller = (async () => {
    while (busy) {
      polls.push((await http(base, "GET", "/sdapi/v1/progress?skip_current_image=true")).ms);
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const t0 = performance.now();
  const answers = await Promise.all(seeds.map((seed) => http(base, "POST", "/sdapi/v1/txt2img", body(seed)).catch((e: unknown) => e as Error)));
  const wall = performance.now() - t0;
  busy = false;
  await poller;
  return { answers, polls, wall };
}

async function main(): Promise<string[]> {
  const outputs = mkdtempSync(join(tmpdir(), "sdts-bench-serve-"));
  const { child, base } = await startServer(outputs);
  const pid = child.pid ?? 0;
  try {
    const size = argv.size === undefined ? {} : { width: Number(argv.size), height: Number(argv.size) };
    const body = (seed: number) => ({ prompt: `bench ${seed}`, steps: Number(argv.steps), seed, ...size, sampler_name: "Euler a", save_images: false });
    const warm = await http(base, "POST", "/sdapi/v1/txt2img", body(1));
    if (warm.status !== 200) throw new Error(`warm-up request failed: ${warm.status} ${warm.body.slice(0, 200)}`);
    const rssBefore = rssMiB(pid);
    const seeds = Array.from({ length: N }, (_, i) => 1000 + i);
    const { answers, polls, wall } = await burst(base, body, seeds);
    const rssAfter = rssMiB(pid);
    const t = tally(answers, seeds);
    if (t.lost + t.duplicated + t.wrong > 0) process.exitCode = 1;
    const f = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    return [
      `model ${argv.model}, ${argv.steps} steps, ${N} concurrent requests, queue limit ${argv["queue-limit"]}`,
      `answered: ${t.ok} images, ${t.busy503} clean 503s, ${t.lost} lost, ${t.duplicated} duplicated, ${t.wrong} with a wrong seed`,
      `latency (images): p50 ${f(pct(t.okMs, 50))}, p95 ${f(pct(t.okMs, 95))}; all ${N} in ${f(wall)} (${((t.ok * 1000) / wall).toFixed(2)} images/s)`,
      `/sdapi/v1/progress while busy: p50 ${pct(polls, 50).toFixed(1)} ms, p95 ${pct(polls, 95).toFixed(1)} ms over ${polls.length} polls`,
      `server RSS: ${rssBefore.toFixed(0)} MiB before, ${rssAfter.toFixed(0)} MiB after`,
      `serve: ${t.ok}/${N} ok, lost ${t.lost}${t.duplicated + t.wrong > 0 ? `, duplicated ${t.duplicated}, wrong ${t.wrong}` : ""}`,
    ];
  } finally {
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    rmSync(outputs, { recursive: true, force: true });
  }
}

// Printed after the server has stopped, so the summary line is the last one.
for (const line of await main()) console.log(line);
