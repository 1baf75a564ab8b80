/** Writing outputs without ever overwriting: numbered names claimed atomically. */
import { link, mkdir, readdir, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

/**
 * Writes `bytes` to `<dir>/<NNNNN>-<suffix>` with the next free number. The data goes to a
 * temp file first and is hard-linked to its final name, which fails if the name exists — so a
 * file is never half-written under its final name and nothing is overwritten, even by a
 * concurrent writer.
 */
export async function writeNumbered(dir: string, suffix: string, bytes: Uint8Array): Promise<string> {
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  await writeFile(tmp, bytes);
  try {
    const taken = (await readdir(dir)).map((n) => /^(\d{5,})-/.exec(n)?.[1]).filter((n): n is string => n !== undefined);
    let next = taken.length === 0 ? 0 : Math.max(...taken.map(Number)) + 1;
    for (;;) {
      const path = join(dir, `${String(next).padStart(5, "0")}-${suffix}`);
      try {
        await link(tmp, path);
        return path;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        next++;
      }
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
