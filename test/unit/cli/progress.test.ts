import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { ProgressBar } from "../../../src/cli/progress.js";

/** A non-TTY stream that keeps what is written. */
function sink(): { lines: string[]; stream: NodeJS.WriteStream } {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s.trimEnd()) > 0 } as unknown as NodeJS.WriteStream;
  return { lines, stream };
}

test("progress bar: no rate before time has passed, then steps per second and an ETA", async () => {
  const { lines, stream } = sink();
  const bar = new ProgressBar("training", stream);
  bar.reset(10); // a run resumed at step 10: its first step is 11
  bar.update(11, 14, "loss 0.5");
  assert.match(lines[0] ?? "", /^training [█░]{24} 11\/14 {2}-- it\/s {2}ETA -- {2}loss 0\.5$/);
  await sleep(60);
  bar.update(14, 14);
  const m = /14\/14 {2}([\d.]+) it\/s {2}ETA ([\d.]+)s$/.exec(lines[1] ?? "");
  assert.ok(m, `no rate in '${lines[1]}'`);
  const rate = Number(m[1]);
  assert.ok(rate > 4 && rate < 4 / 0.06 + 1, `4 steps in ≥ 60 ms: ${rate} it/s`);
  assert.equal(Number(m[2]), 0);
});
