/**
 * Where the shared reference data lives: $SDTS_GOLDEN, else `../shared/golden` beside the
 * checkout (how CI lays it out), else /work/shared/golden.
 */
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const besideRepo = resolve(dirname(fileURLToPath(import.meta.url)), "../../shared/golden");

/** Absolute path of the golden folder (no trailing slash). */
export const GOLDEN_DIR: string = process.env.SDTS_GOLDEN ?? (existsSync(besideRepo) ? besideRepo : "/work/shared/golden");

/** A path inside the golden folder. */
export function golden(...parts: string[]): string {
  return join(GOLDEN_DIR, ...parts);
}
