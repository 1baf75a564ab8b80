/** Where the embedded default model lives: `models/default/` in the package. */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CheckpointError } from "../errors.js";

/** The package root: the nearest folder above this module holding package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new CheckpointError("cannot find the sdts package folder (no package.json above the code)");
    dir = up;
  }
  return dir;
}

/** Path of the embedded default model folder; a clear error while none is shipped. */
export function defaultModelPath(): string {
  const p = join(packageRoot(), "models", "default");
  if (!existsSync(join(p, "model_index.json"))) {
    throw new CheckpointError("this sdts build has no embedded default model yet (models/default/); pass a checkpoint with --model <file.safetensors | diffusers folder>");
  }
  return p;
}
