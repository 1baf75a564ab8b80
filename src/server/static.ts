/** Files: the web UI's static files (web/dist if built, else web/) and single-file replies. */
import { createReadStream, existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { HANDLED, type RouteRequest } from "./context.js";
import { HttpError } from "./http.js";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/** The folder holding package.json above this file (works from src/ and from dist/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

/** The UI folder: web/dist when the UI has been built, else web/. */
export function defaultWebRoot(): string {
  const web = join(packageRoot(), "web");
  return existsSync(join(web, "dist", "index.html")) ? join(web, "dist") : web;
}

/** Streams one file (HEAD: headers only); 404 if it is missing. */
export async function sendFile(r: RouteRequest, path: string, type: string, cache: string): Promise<symbol> {
  const st = await stat(path).catch(() => undefined);
  if (st === undefined || !st.isFile()) throw new HttpError(404, "not_found", `no such file: ${r.url.pathname}`);
  r.res.writeHead(200, { "content-type": type, "content-length": st.size, "cache-control": cache });
  if (r.req.method === "HEAD") r.res.end();
  else createReadStream(path).pipe(r.res);
  return HANDLED;
}

/** Serves `root`'s files for GET/HEAD; `/` is index.html. Paths cannot leave `root`. */
export async function serveStatic(root: string, r: RouteRequest): Promise<symbol> {
  let rel: string;
  try {
    rel = decodeURIComponent(r.url.pathname);
  } catch {
    throw new HttpError(400, "bad_path", "the path is not valid percent-encoding");
  }
  if (rel.endsWith("/")) rel += "index.html";
  const base = resolve(root);
  const path = resolve(base, `.${normalize(`/${rel}`)}`);
  if (path !== base && !path.startsWith(base + sep)) throw new HttpError(404, "not_found", `no such file: ${r.url.pathname}`);
  if (rel === "/index.html" && !existsSync(path)) throw new HttpError(404, "no_ui", `the web UI is not installed (no ${path}); the API is at /sdapi/v1 and /api`);
  const type = TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
  return sendFile(r, path, type, "no-cache");
}
