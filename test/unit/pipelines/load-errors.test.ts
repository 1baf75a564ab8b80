/** loadModel refuses what it cannot load with a message that says what to do, and never runs a pickle. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CheckpointError, InputError } from "../../../src/errors.js";
import { loadModel } from "../../../src/pipelines/load-model.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

test(".ckpt pickles are refused without being executed (regression: a pickle whose os.system would create a file)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sdts-ckpt-"));
  try {
    const marker = join(dir, "pwned");
    // protocol-2 pickle: os.system("touch <marker>") via GLOBAL + REDUCE
    const pickle = Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from(`cos\nsystem\nq\x00X${String.fromCharCode(6 + marker.length)}\x00\x00\x00touch ${marker}q\x01\x85q\x02Rq\x03.`, "latin1")]);
    const path = join(dir, "model.ckpt");
    await writeFile(path, pickle);
    await assert.rejects(loadModel(path), (e: unknown) => e instanceof CheckpointError && /pickle.*never runs pickles.*\.safetensors/s.test(e.message));
    assert.equal(existsSync(marker), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("missing paths, stray folders and non-SD files get clear errors", async () => {
  await assert.rejects(loadModel("/nonexistent/model.safetensors"), /no such file or folder; check the path/);
  await assert.rejects(loadModel(tmpdir()), /folder without model_index\.json or unet\//);
  await assert.rejects(loadModel(`${GOLDEN_DIR}/tiny/unet/diffusion_pytorch_model.safetensors`), /not a Stable Diffusion single-file checkpoint/);
  await assert.rejects(loadModel(`${GOLDEN_DIR}/tiny-pipeline`, { prediction: "x" as "v" }), InputError);
});
