/** Compiling a graph: export to ONNX and open an onnxruntime session for it. */
import { rename, writeFile } from "node:fs/promises";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Provider } from "../runtime/providers.js";
import { type Session, type SessionOptions, createSession } from "../runtime/session.js";
import { type ExportOptions, type ExportedModel, exportOnnx } from "./onnx/export.js";
import type { Tensor } from "./tensor.js";

/** Options of `compile`. */
export interface CompileOptions extends ExportOptions {
  readonly provider?: Provider;
  readonly threads?: number;
  /**
   * Write the model to this path and load it from there; required when initializers point
   * at external files, which onnxruntime resolves relative to the model's folder.
   */
  readonly modelPath?: string;
  /** Creates the session from the model bytes instead (e.g. through a cache folder); wins over `modelPath`. */
  readonly openSession?: (bytes: Uint8Array, options: SessionOptions) => Promise<Session>;
}

/** A graph ready to run on onnxruntime. */
export interface CompiledGraph {
  readonly model: ExportedModel;
  readonly session: Session;
  /** Runs the graph; feeds are keyed by input name, results by output name. */
  run(feeds: Readonly<Record<string, HostTensor>>): Promise<Record<string, HostTensor>>;
  /** Runs the graph writing each named output into a preallocated tensor. */
  runInto(feeds: Readonly<Record<string, HostTensor>>, outputs: Readonly<Record<string, HostTensor>>): Promise<void>;
  dispose(): Promise<void>;
}

/** Exports `outputs` to ONNX and creates a session for it. */
export async function compile(outputs: Readonly<Record<string, Tensor>>, opts: CompileOptions = {}): Promise<CompiledGraph> {
  const model = exportOnnx(outputs, opts);
  const provider = opts.provider ?? "cpu";
  const graphName = opts.name ?? "graph";
  const options: SessionOptions = { provider, graphName, ...(opts.threads ? { threads: opts.threads } : {}) };
  let source: Uint8Array | string = model.bytes;
  if (opts.modelPath !== undefined && opts.openSession === undefined) {
    const tmp = `${opts.modelPath}.${process.pid}.tmp`;
    await writeFile(tmp, model.bytes);
    await rename(tmp, opts.modelPath);
    source = opts.modelPath;
  }
  const session = opts.openSession ? await opts.openSession(model.bytes, options) : await createSession(source, options);
  return {
    model,
    session,
    run: (feeds) => session.run(feeds),
    runInto: (feeds, outs) => session.runInto(feeds, outs),
    dispose: () => session.dispose(),
  };
}
