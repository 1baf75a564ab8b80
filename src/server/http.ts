/** HTTP plumbing: typed errors, JSON replies, bounded JSON bodies and API-key checks. */
import { timingSafeEqual, createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

/** An error with its HTTP status; `field` names the offending body field (422). */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** 422 for one bad body field. */
export function invalid(field: string, message: string): HttpError {
  return new HttpError(422, "invalid_param", `${field}: ${message}`, field);
}

/** Writes a JSON reply (unless the connection is already gone). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/**
 * The error body: `{ error: { code, message } }`; a 422 also carries FastAPI's
 * `{ detail: [{ loc, msg, type }] }`, which A1111 clients parse.
 */
export function errorBody(e: HttpError): Record<string, unknown> {
  const error = { code: e.code, message: e.message, ...(e.field !== undefined ? { field: e.field } : {}) };
  if (e.status !== 422) return { error, detail: e.message };
  return { error, detail: [{ loc: ["body", ...(e.field ?? "body").split(".")], msg: e.message, type: "value_error" }] };
}

/** Writes an HttpError as JSON. */
export function sendError(res: ServerResponse, e: HttpError): void {
  sendJson(res, e.status, errorBody(e), e.headers);
}

/** Reads and parses a JSON body of at most `limit` bytes; an empty body is `{}`. */
export async function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (text === "") return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new HttpError(400, "bad_json", `the request body is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "body_too_large", `the request body is larger than ${limit} bytes; send less, or start the server with a larger --max-body`);
}

/** A JSON body that must be an object. */
export function asObject(v: unknown): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HttpError(422, "invalid_param", "the request body must be a JSON object", "body");
  return v as Record<string, unknown>;
}

function sameSecret(a: string, b: string): boolean {
  // Hash both so the comparison takes the same time whatever the lengths.
  const ha = createHash("sha256").update(a).digest();
  const hb = createHash("sha256").update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** True when the request carries the key: `Authorization: Bearer <key>`, or HTTP Basic with the key as password (any user). */
export function authorized(req: IncomingMessage, key: string): boolean {
  const h = req.headers.authorization ?? "";
  const m = /^(\w+)\s+(.+)$/.exec(h.trim());
  if (m === null) return false;
  const scheme = (m[1] ?? "").toLowerCase();
  const value = m[2] ?? "";
  if (scheme === "bearer") return sameSecret(value, key);
  if (scheme !== "basic") return false;
  const decoded = Buffer.from(value, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon >= 0 && sameSecret(decoded.slice(colon + 1), key);
}

/** The 401 for a missing or wrong key; the Basic challenge lets a browser ask for it. */
export function unauthorized(): HttpError {
  return new HttpError(401, "unauthorized", "this server needs an API key: send 'Authorization: Bearer <key>' or HTTP Basic auth with the key as password", undefined, {
    "www-authenticate": 'Basic realm="sdts", charset="UTF-8"',
  });
}
