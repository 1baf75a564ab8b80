/** What every handler shares: settings, the job queue, the outputs folder, A1111 options; and the route type. */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { JobQueue } from "./jobs.js";
import type { Outputs } from "./outputs.js";
import type { Limits } from "./params.js";

/** Server settings (the `sdts serve` flags). */
export interface ServerOptions {
  /** Model to load at start: a path, or "default" (the embedded model). */
  readonly model: string;
  readonly host: string;
  readonly port: number;
  readonly apiKey?: string;
  readonly outputs: string;
  /** Folder listed by /sdapi/v1/sd-models (.safetensors files and diffusers folders). */
  readonly modelsDir?: string;
  readonly queueLimit: number;
  readonly limits: Limits;
  readonly maxBodyBytes: number;
  /** Preview every n sampler steps (0: none). */
  readonly previewEvery: number;
  readonly provider: string;
  /** Folder of LoRA .safetensors files (`<lora:name:w>` in prompts, `loras` in native jobs, /sdapi/v1/loras). */
  readonly loraDir?: string;
  /** Folder of textual-inversion embeddings, loaded with the model (/sdapi/v1/embeddings). */
  readonly embeddingsDir?: string;
  /** Static files for `/` (default: web/dist if built, else web/). */
  readonly webRoot?: string;
  /** Log lines go here (default: stderr). */
  readonly log?: (line: string) => void;
}

/** Shared state of a running server. */
export interface ServerContext {
  readonly opts: ServerOptions;
  readonly queue: JobQueue;
  readonly outputs: Outputs;
  /** A1111 options set through POST /sdapi/v1/options that sdts keeps but does not act on. */
  readonly options: Map<string, unknown>;
  readonly log: (line: string) => void;
}

/** One request as a handler sees it. */
export interface RouteRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  /** Path parameters captured by the route's pattern. */
  readonly params: readonly string[];
  /** The JSON body (size-limited); `{}` when empty. */
  body(): Promise<unknown>;
}

/** A reply other than 200 JSON. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

/** Returned by a handler that wrote the response itself (SSE, files). */
export const HANDLED = Symbol("handled");

/** A route: method, anchored path pattern, handler (its value is sent as JSON unless HANDLED or a Reply). */
export interface Route {
  readonly method: "GET" | "POST" | "DELETE";
  readonly path: RegExp;
  handle(ctx: ServerContext, r: RouteRequest): Promise<unknown>;
}
