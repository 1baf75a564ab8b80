/** The installed `sdts` command: `npm install` builds dist/ and the bin must run as a program (npx runs it through its shebang). */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

test("the package's bin is built, executable, and prints the help", () => {
  const bin = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> }).bin.sdts;
  assert.ok(bin, "package.json names no sdts bin");
  const path = join(ROOT, bin);
  assert.ok(statSync(path).mode & 0o100, `${bin} is not executable: \`npx sdts\` fails with "Permission denied" (npm run build sets the mode)`);
  const r = spawnSync(path, ["--help"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /sdts generate/);
});
