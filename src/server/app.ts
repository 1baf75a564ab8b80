/**
 * The HTTP server: node:http, a route table (A1111's /sdapi/v1, the native /api, /outputs),
 * static UI files, API-key auth and JSON errors `{ error: { code, message } }`.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { InputError } from "../index.js";
import { a1111Routes } from "./a1111.js";
import { HANDLED, Reply, type Route, type RouteRequest, type ServerContext, type ServerOptions } from "./context.js";
import { HttpError, authorized, readJson, sendError, sendJson, unauthorized } from "./http.js";
import { JobQueue } from "./jobs.js";
import { nativeRoutes } from "./native.js";
import { Outputs } from "./outputs.js";
import type { LoadOptions } from "./protocol.js";
import { defaultWebRoot, serveStatic } from "./static.js";
import { GenerationWorker } from "./worker-client.js";

export type { ServerOptions } from "./context.js";

/** A running server. */
export interface SdtsServer {
  readonly url: string;
  readonly port: number;
  readonly context: ServerContext;
  /** Waits for the initial model load (resolves either way; see context.queue.model / modelError). */
  readonly ready: Promise<void>;
  /** Stops accepting connections, cancels jobs and ends the worker. */
  close(): Promise<void>;
}

const ROUTES: readonly Route[] = [...a1111Routes, ...nativeRoutes];

function match(method: string, path: string): { route: Route; params: string[] } | "wrong-method" | undefined {
  let pathMatched = false;
  for (const route of ROUTES) {
    const m = route.path.exec(path);
    if (m === null) continue;
    pathMatched = true;
    if (route.method === method || (method === "HEAD" && route.method === "GET")) return { route, params: m.slice(1) };
  }
  return pathMatched ? "wrong-method" : undefined;
}

async function handle(ctx: ServerContext, webRoot: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://localhost");
  const method = req.method ?? "GET";
  let bodyRead: Promise<unknown> | undefined;
  const r = (params: string[]): RouteRequest => ({ req, res, url, params, body: () => (bodyRead ??= readJson(req, ctx.opts.maxBodyBytes)) });
  try {
    if (ctx.opts.apiKey !== undefined && !authorized(req, ctx.opts.apiKey)) throw unauthorized();
    const found = match(method, url.pathname);
    if (found === "wrong-method") throw new HttpError(405, "method_not_allowed", `${method} is not allowed on ${url.pathname}`);
    if (found === undefined) {
      const api = url.pathname.startsWith("/api/") || url.pathname.startsWith("/sdapi/") || url.pathname.startsWith("/outputs/");
      if (api || (method !== "GET" && method !== "HEAD")) throw new HttpError(404, "not_found", `no route ${method} ${url.pathname}`);
      await serveStatic(webRoot, r([]));
      return;
    }
    const out = await found.route.handle(ctx, r(found.params));
    if (out === HANDLED) return;
    if (out instanceof Reply) sendJson(res, out.status, out.body, out.headers);
    else sendJson(res, 200, out ?? null);
  } catch (e) {
    const err = e instanceof HttpError ? e : new HttpError(500, "internal", e instanceof Error ? e.message : String(e));
    if (err.status >= 500 && err.code === "internal") ctx.log(`${method} ${url.pathname}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    if (res.headersSent) res.destroy();
    else sendError(res, err);
  }
}

/** loadModel's options from the server settings. */
function loadOptions(opts: ServerOptions): LoadOptions {
  return {
    provider: opts.provider,
    ...(opts.loraDir !== undefined ? { loraDir: opts.loraDir } : {}),
    ...(opts.embeddingsDir !== undefined ? { embeddingsDir: opts.embeddingsDir } : {}),
  };
}

/** Starts the server; the model loads in the background (generation requests wait for it). */
export async function startServer(opts: ServerOptions): Promise<SdtsServer> {
  const log = opts.log ?? ((line: string) => console.error(`sdts: ${line}`));
  const outputs = new Outputs(opts.outputs);
  const worker = new GenerationWorker();
  const queue = new JobQueue(worker, { queueLimit: opts.queueLimit, previewEvery: opts.previewEvery, load: loadOptions(opts), outputs });
  const ctx: ServerContext = { opts, queue, outputs, options: new Map(), log };
  const webRoot = opts.webRoot ?? defaultWebRoot();
  void outputs.init();
  const ready = queue.submit({ kind: "load", source: opts.model }).finished.then((job) => {
    if (!job.loaded) {
      log(queue.modelError);
      return;
    }
    log(`model ${job.loaded.name} loaded (${job.loaded.family})`);
    if (job.loaded.lorasError !== undefined) log(`cannot list the LoRA folder: ${job.loaded.lorasError}`);
  });
  const server: Server = createServer((req, res) => void handle(ctx, webRoot, req, res));
  server.requestTimeout = 0; // txt2img requests wait in the queue; the queue limit bounds them
  try {
    await new Promise<void>((ok, fail) => {
      server.once("error", fail);
      server.listen(opts.port, opts.host, () => ok());
    });
  } catch (e) {
    await queue.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new InputError(`port ${opts.port} on ${opts.host} is already in use; pick another with --port`);
    if (code === "EACCES") throw new InputError(`no permission to listen on ${opts.host}:${opts.port}; use a port above 1023`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw new InputError(`cannot listen on ${opts.host}: not an address of this machine`);
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const host = opts.host.includes(":") ? `[${opts.host}]` : opts.host;
  return {
    url: `http://${host}:${port}`,
    port,
    context: ctx,
    ready,
    async close() {
      await queue.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}
