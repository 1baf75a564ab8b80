/** loadModel refuses what it cannot load with a message that says what to do, and never runs a pickle. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CheckpointError, InputError } from "../../../src/errors.js";
import { loadModel, samplingDefaults } from "../../../src/pipelines/load-model.js";
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

test("model_index.json _sdts_defaults: read when valid; a wrong value or key is refused with what it may hold", () => {
  assert.deepEqual(samplingDefaults(undefined, "m"), {});
  assert.deepEqual(samplingDefaults({ _class_name: "StableDiffusionPipeline" }, "m"), {});
  assert.deepEqual(samplingDefaults({ _sdts_defaults: { cfg_scale: 5, sampler: "DPM++ 2M" } }, "m"), { cfgScale: 5, sampler: "DPM++ 2M" });
  assert.throws(() => samplingDefaults({ _sdts_defaults: { cfg_scale: "5" } }, "m/model_index.json"), (e: unknown) => e instanceof CheckpointError && /m\/model_index\.json: _sdts_defaults\.cfg_scale must be a number from 0 to 100/.test(e.message));
  assert.throws(() => samplingDefaults({ _sdts_defaults: { cfg: 5 } }, "m"), /unknown keys cfg \(it may hold cfg_scale and sampler\)/);
  assert.throws(() => samplingDefaults({ _sdts_defaults: { sampler: "Eulerr" } }, "m"), (e: unknown) => e instanceof CheckpointError && /_sdts_defaults\.sampler: unknown sampler "Eulerr"; use one of/.test(e.message));
  assert.throws(() => samplingDefaults({ _sdts_defaults: [5] }, "m"), /must be an object/);
});
