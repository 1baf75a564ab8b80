/** `sdts serve`: the HTTP API (A1111-compatible and native) and the web UI. */
import { defineCommand } from "citty";
import { isIP } from "node:net";
import { InputError } from "../../index.js";
import { startServer } from "../../server/app.js";
import { DEFAULT_LIMITS } from "../../server/params.js";
import { COMMON_ARGS, loadOptions } from "./common.js";

function int(v: string | undefined, name: string, def: number, min: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new InputError(`--${name} must be a whole number ≥ ${min} (got '${v}')`);
  return n;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h === "::1") return true;
  return isIP(h) === 4 && h.startsWith("127.");
}

export default defineCommand({
  meta: { name: "serve", description: "Serve the HTTP API (AUTOMATIC1111-compatible /sdapi/v1 and /api) and the web UI" },
  args: {
    model: { type: "string", description: "a .safetensors checkpoint or a diffusers folder (default: the embedded model)", default: "default" },
    host: { type: "string", description: "address to listen on (default 127.0.0.1)", default: "127.0.0.1" },
    port: { type: "string", description: "port (default 7860; 0 picks a free one)" },
    "api-key": { type: "string", description: "require this key: 'Authorization: Bearer <key>' or HTTP Basic with it as password" },
    insecure: { type: "boolean", description: "allow a non-loopback --host without --api-key" },
    outputs: { type: "string", description: "folder for generated images (default ./outputs)", default: "outputs" },
    "models-dir": { type: "string", description: "folder of checkpoints listed by /sdapi/v1/sd-models" },
    "queue-limit": { type: "string", description: "jobs that may wait behind the running one; more get 503 (default 16)" },
    "max-width": { type: "string", description: `largest width accepted (default ${DEFAULT_LIMITS.maxWidth})` },
    "max-height": { type: "string", description: `largest height accepted (default ${DEFAULT_LIMITS.maxHeight})` },
    "max-steps": { type: "string", description: `most sampling steps accepted (default ${DEFAULT_LIMITS.maxSteps})` },
    "max-batch": { type: "string", description: `largest batch accepted (default ${DEFAULT_LIMITS.maxBatch})` },
    "max-body": { type: "string", description: "largest request body in bytes (default 16 MiB)" },
    "preview-every": { type: "string", description: "preview image every n steps; 0 = none (default 2)" },
    provider: { type: "string", description: "cpu | webgpu | cuda (default cpu)", default: "cpu" },
    "lora-dir": COMMON_ARGS["lora-dir"],
    "embeddings-dir": COMMON_ARGS["embeddings-dir"],
  },
  async run({ args }) {
    const apiKey = args["api-key"];
    if (apiKey !== undefined && apiKey.trim() === "") throw new InputError("--api-key must not be empty");
    if (!isLoopback(args.host) && apiKey === undefined && args.insecure !== true) {
      throw new InputError(`refusing to listen on ${args.host} without --api-key: anyone who can reach it could use this machine; add --api-key <key>, or --insecure if the network is trusted`);
    }
    const server = await startServer({
      model: args.model,
      host: args.host,
      port: int(args.port, "port", 7860, 0),
      ...(apiKey !== undefined ? { apiKey } : {}),
      outputs: args.outputs,
      ...(args["models-dir"] !== undefined ? { modelsDir: args["models-dir"] } : {}),
      queueLimit: int(args["queue-limit"], "queue-limit", 16, 0),
      limits: {
        maxWidth: int(args["max-width"], "max-width", DEFAULT_LIMITS.maxWidth, 8),
        maxHeight: int(args["max-height"], "max-height", DEFAULT_LIMITS.maxHeight, 8),
        maxSteps: int(args["max-steps"], "max-steps", DEFAULT_LIMITS.maxSteps, 1),
        maxBatch: int(args["max-batch"], "max-batch", DEFAULT_LIMITS.maxBatch, 1),
      },
      maxBodyBytes: int(args["max-body"], "max-body", 16 * 1024 * 1024, 1024),
      previewEvery: int(args["preview-every"], "preview-every", 2, 0),
      ...loadOptions(args),
    });
    console.log(`sdts: listening on ${server.url}${apiKey !== undefined ? " (API key required)" : ""}`);
    await new Promise<void>((done) => {
      const stop = (): void => {
        console.error("sdts: shutting down");
        void server.close().then(done);
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
  },
});
