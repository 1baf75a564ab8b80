/** Typed errors: every message says what was expected, what was found and what to do. */

/** Base class of every error sdts throws on purpose. */
export class SdtsError extends Error {
  override readonly name: string = "SdtsError";
}

/** Bad user input: CLI arguments, HTTP bodies, pipeline parameters. */
export class InputError extends SdtsError {
  override readonly name = "InputError";
}

/** A configuration file or preset that cannot be used. */
export class ConfigError extends SdtsError {
  override readonly name = "ConfigError";
}

/** A checkpoint or weights file that cannot be read or does not fit the model. */
export class CheckpointError extends SdtsError {
  override readonly name = "CheckpointError";
}

/** Shapes or dtypes that do not fit an op; names the op and the tensor. */
export class ShapeError extends SdtsError {
  override readonly name = "ShapeError";
}

/** onnxruntime failed, or a provider is missing; names the provider and graph. */
export class BackendError extends SdtsError {
  override readonly name = "BackendError";
}

/** A broken invariant inside sdts: a bug, not a user mistake. */
export class InternalError extends SdtsError {
  override readonly name = "InternalError";
}

/** Throws InternalError when `cond` is false. */
export function assert(cond: unknown, msg: string | (() => string)): asserts cond {
  if (!cond) throw new InternalError(typeof msg === "string" ? msg : msg());
}
