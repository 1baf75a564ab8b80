/**
 * img2img, inpainting and the hires fix over HTTP (issue #7, item 6): A1111's /sdapi/v1/img2img
 * and txt2img enable_hr, the native /api/jobs image fields, upscaler lists, 422s naming the field.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import sharp from "sharp";
import { HIRES_UPSCALERS, readPngText } from "../../../src/index.js";
import type { SdtsServer } from "../../../src/server/app.js";
import { passCounter } from "../../../src/server/passes.js";
import { call, readEvents, start, until } from "./helpers.js";
import { GOLDEN_DIR } from "../../golden-dir.js";

const INPUTS = join(GOLDEN_DIR, "edit", "inputs");
const IMAGE = readFileSync(join(INPUTS, "test_pattern.png")).toString("base64");
const MASK = readFileSync(join(INPUTS, "mask.png")).toString("base64");

let s: SdtsServer;
before(async () => {
  s = await start({ maxBodyBytes: 4 << 20 });
});
after(async () => {
  await s.close();
});

const bytes = (b64: string) => new Uint8Array(Buffer.from(b64.replace(/^data:[^,]*,/, ""), "base64"));
const infotext = (b64: string) => readPngText(bytes(b64))["parameters"] ?? "";
async function rgb(b64: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(bytes(b64)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}
/** Largest per-channel difference between two 64-wide RGB images over rows [y0, y1) × columns [x0, x1). */
function maxDiff(a: Buffer, b: Buffer, [y0, y1, x0, x1]: readonly number[]): number {
  let m = 0;
  for (let y = y0 ?? 0; y < (y1 ?? 0); y++) for (let i = (y * 64 + (x0 ?? 0)) * 3; i < (y * 64 + (x1 ?? 0)) * 3; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}
// mask.png: a rectangle (rows 8–27, columns 12–35) and a disc lower right; FAR is > 4σ of a 4 px blur from both.
const INSIDE = [10, 26, 14, 34];
const FAR = [52, 64, 0, 16];

const IMG2IMG = { prompt: "a test pattern", steps: 4, seed: 7, width: 32, height: 32, sampler_name: "Euler" };

test("img2img: A1111 response shape; info and infotext record the denoising strength; init images are not echoed", async () => {
  const r = await call(s, "POST", "/sdapi/v1/img2img", { ...IMG2IMG, init_images: [IMAGE], denoising_strength: 0.5, n_iter: 2, some_extension_field: 1 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(Object.keys(r.body).sort(), ["images", "info", "parameters"]);
  assert.equal(r.body.images.length, 2);
  const info = JSON.parse(r.body.info);
  assert.equal(info.denoising_strength, 0.5);
  assert.deepEqual(info.all_seeds, [7, 8]);
  assert.equal(info.is_using_inpainting_conditioning, false);
  assert.equal(info.infotexts.length, 2);
  for (const [i, b64] of r.body.images.entries()) {
    const text = infotext(b64);
    assert.equal(text, info.infotexts[i]);
    assert.match(text, new RegExp(`Seed: ${7 + i}, Size: 32x32`));
    assert.match(text, /Denoising strength: 0\.5/);
    const img = await rgb(b64);
    assert.deepEqual([img.width, img.height], [32, 32], "the 64×64 input is resized to width × height");
  }
  const p = r.body.parameters;
  assert.equal(p.init_images, null, "A1111 drops init_images from the echo unless include_init_images");
  assert.equal(p.mask, null);
  assert.equal(p.include_init_images, false);
  assert.equal(p.denoising_strength, 0.5);
  assert.equal(p.inpainting_fill, 0);
  assert.equal(p.inpaint_full_res, true);
  assert.equal(p.inpaint_full_res_padding, 0);
  assert.equal(p.resize_mode, 0);
  assert.ok(!("some_extension_field" in p));
});

test("img2img: include_init_images echoes them; a data: URL prefix is accepted; denoising_strength defaults to 0.75", async () => {
  const sent = [`data:image/png;base64,${IMAGE}`];
  const r = await call(s, "POST", "/sdapi/v1/img2img", { ...IMG2IMG, steps: 2, init_images: sent, include_init_images: true, denoising_strength: null });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.parameters.init_images, sent);
  assert.equal(r.body.parameters.include_init_images, true);
  assert.equal(JSON.parse(r.body.info).denoising_strength, 0.75);
  assert.match(infotext(r.body.images[0]), /Denoising strength: 0\.75/);
});

test("img2img: one init image per batch row runs each with its own seed; a wrong count is a 422", async () => {
  const r = await call(s, "POST", "/sdapi/v1/img2img", { ...IMG2IMG, steps: 2, init_images: [IMAGE, IMAGE], batch_size: 2, seed: 20 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(JSON.parse(r.body.info).all_seeds, [20, 21]);
  assert.equal(JSON.parse(r.body.info).batch_size, 2);
  assert.equal(r.body.images.length, 2);
  const bad = await call(s, "POST", "/sdapi/v1/img2img", { ...IMG2IMG, init_images: [IMAGE, IMAGE, IMAGE], batch_size: 2 });
  assert.equal(bad.status, 422);
  assert.equal(bad.body.error.field, "init_images");
});

test("inpaint (whole picture): the mask's far side is the input, pixel for pixel; infotext and info record the mask blur", async () => {
  const body = { ...IMG2IMG, width: 64, height: 64, init_images: [IMAGE], mask: MASK, inpaint_full_res: false, mask_blur: 4, inpainting_fill: 1, denoising_strength: 1 };
  const r = await call(s, "POST", "/sdapi/v1/img2img", body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const info = JSON.parse(r.body.info);
  assert.equal(info.extra_generation_params["Mask blur"], 4);
  assert.ok(!("Inpaint area" in info.extra_generation_params));
  const text = infotext(r.body.images[0]);
  assert.match(text, /Denoising strength: 1, Mask blur: 4/);
  const out = await rgb(r.body.images[0]);
  const input = await rgb(IMAGE);
  assert.deepEqual([out.width, out.height], [64, 64]);
  assert.equal(maxDiff(out.data, input.data, FAR), 0, "far from the mask the input is kept");
  assert.ok(maxDiff(out.data, input.data, INSIDE) > 8, "the masked area is redrawn");
  // Inverting the mask repaints the top instead.
  const inv = await call(s, "POST", "/sdapi/v1/img2img", { ...body, inpainting_mask_invert: 1 });
  assert.equal(inv.status, 200, JSON.stringify(inv.body));
  assert.equal(JSON.parse(inv.body.info).extra_generation_params["Mask mode"], "Inpaint not masked");
  const invOut = (await rgb(inv.body.images[0])).data;
  assert.ok(maxDiff(invOut, input.data, FAR) > 8, "the outside is redrawn");
  assert.ok(maxDiff(invOut, input.data, [16, 20, 22, 26]) <= 8, "the rectangle's middle is kept (up to the blur's tail)");
});

test("inpaint (only masked, A1111's API default): works on the mask's box at width × height and pastes it back at full size", async () => {
  const r = await call(s, "POST", "/sdapi/v1/img2img", { ...IMG2IMG, init_images: [IMAGE], mask: `data:image/png;base64,${MASK}`, mask_blur_x: 2, mask_blur_y: 2, inpaint_full_res_padding: 4 });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const info = JSON.parse(r.body.info);
  assert.equal(info.extra_generation_params["Inpaint area"], "Only masked");
  assert.equal(info.extra_generation_params["Masked area padding"], 4);
  assert.equal(info.denoising_strength, 0.75);
  assert.match(infotext(r.body.images[0]), /Denoising strength: 0\.75/);
  const out = await rgb(r.body.images[0]);
  const input = await rgb(IMAGE);
  assert.deepEqual([out.width, out.height], [64, 64], "the full input size, not the 32×32 work size");
  assert.equal(maxDiff(out.data, input.data, FAR), 0, "far from the mask the input is kept");
  assert.ok(maxDiff(out.data, input.data, INSIDE) > 8, "the masked area is redrawn");
});

test("img2img: bad images and unsupported options are 422s naming the field", async () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ init_images: ["not base64!"] }, "init_images", /not valid base64/],
    [{ init_images: [Buffer.from("hello world").toString("base64")] }, "init_images", /not one/],
    [{ init_images: [`data:image/png,${IMAGE}`] }, "init_images", /not base64-encoded/],
    [{ init_images: ["https://example.com/a.png"] }, "init_images", /does not fetch/],
    [{ init_images: [] }, "init_images", /non-empty/],
    [{ init_images: null }, "init_images", /required/],
    [{ init_images: [IMAGE, "%%%"], batch_size: 2 }, "init_images", /image 2 of 2/],
    [{ init_images: [IMAGE], mask: "@@@" }, "mask", /base64/],
    [{ init_images: [IMAGE], denoising_strength: 1.5 }, "denoising_strength", /0 to 1/],
    [{ init_images: [IMAGE], resize_mode: 3 }, "resize_mode", /latent upscale/],
    [{ init_images: [IMAGE], mask: MASK, inpainting_fill: 4 }, "inpainting_fill", /0 to 3/],
    [{ init_images: [IMAGE], mask: MASK, mask_blur_x: 2, mask_blur_y: 5 }, "mask_blur_y", /mask_blur_x/],
    [{ init_images: [IMAGE], latent_mask: MASK }, "latent_mask", /not supported/],
  ];
  for (const [body, field, msg] of cases) {
    const r = await call(s, "POST", "/sdapi/v1/img2img", { ...IMG2IMG, ...body });
    assert.equal(r.status, 422, `${JSON.stringify(body).slice(0, 80)} → ${r.status}`);
    assert.equal(r.body.error.field, field);
    assert.match(r.body.error.message, msg);
    assert.deepEqual(r.body.detail[0].loc, ["body", field]);
  }
});

test("txt2img enable_hr: the image comes out at hr_scale × the size; infotext and info as A1111's", async () => {
  const r = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "hires", steps: 3, seed: 5, width: 32, height: 32, enable_hr: true, hr_scale: 2, hr_upscaler: null, denoising_strength: null });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const out = await rgb(r.body.images[0]);
  assert.deepEqual([out.width, out.height], [64, 64]);
  const text = infotext(r.body.images[0]);
  assert.match(text, /Size: 64x64/);
  assert.match(text, /Denoising strength: 0\.7\b/, "A1111's hires default strength");
  assert.match(text, /Hires upscale: 2, Hires steps: 3, Hires upscaler: Latent/);
  const info = JSON.parse(r.body.info);
  assert.equal(info.width, 32, "A1111 reports the first pass's size");
  assert.equal(info.denoising_strength, 0.7);
  assert.equal(info.extra_generation_params["Hires upscale"], 2);
  assert.equal(info.extra_generation_params["Hires upscaler"], "Latent");
  assert.equal(r.body.parameters.enable_hr, true);
  // hr_resize_x alone keeps the aspect ratio; an image upscaler runs a second pass per image.
  const sized = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "hires", steps: 2, seed: 5, width: 32, height: 16, batch_size: 2, enable_hr: true, hr_resize_x: 64, hr_upscaler: "lanczos", denoising_strength: 0.5, hr_second_pass_steps: 2 });
  assert.equal(sized.status, 200, JSON.stringify(sized.body));
  assert.equal(sized.body.images.length, 2);
  for (const b64 of sized.body.images) assert.deepEqual([(await rgb(b64)).width, (await rgb(b64)).height], [64, 32]);
  assert.equal(JSON.parse(sized.body.info).extra_generation_params["Hires resize"], "64x32");
  assert.match(infotext(sized.body.images[1]), /Seed: 6,.*Denoising strength: 0\.5.*Hires upscaler: Lanczos/);
  const wrongSampler = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 2, enable_hr: true, hr_sampler_name: "DDIM" });
  assert.equal(wrongSampler.status, 422);
  assert.equal(wrongSampler.body.error.field, "hr_sampler_name");
  const same = await call(s, "POST", "/sdapi/v1/txt2img", { prompt: "x", steps: 1, width: 32, height: 32, enable_hr: true, hr_sampler_name: "Use same sampler", hr_scale: 1.5 });
  assert.equal(same.status, 200, JSON.stringify(same.body));
  assert.equal((await rgb(same.body.images[0])).width, 48);
});

test("upscalers and latent-upscale-modes list the hires upscalers in A1111's shapes", async () => {
  const up = await call(s, "GET", "/sdapi/v1/upscalers");
  const modes = await call(s, "GET", "/sdapi/v1/latent-upscale-modes");
  for (const x of up.body) assert.deepEqual(Object.keys(x).sort(), ["model_name", "model_path", "model_url", "name", "scale"]);
  for (const x of modes.body) assert.deepEqual(Object.keys(x), ["name"]);
  assert.ok(up.body.some((x: { name: string }) => x.name === "Lanczos"));
  assert.ok(modes.body.some((x: { name: string }) => x.name === "Latent"));
  const names = [...modes.body, ...up.body].map((x: { name: string }) => x.name).sort();
  assert.deepEqual(names, [...HIRES_UPSCALERS].sort());
});

test("img2img progress and interrupt work as for txt2img", async () => {
  const pending = call(s, "POST", "/sdapi/v1/img2img", { ...IMG2IMG, steps: 150, denoising_strength: 1, init_images: [IMAGE], n_iter: 2 });
  let seen: { body: { state: { sampling_step: number; job_count: number; job: string } } } | undefined;
  await until(async () => {
    seen = await call(s, "GET", "/sdapi/v1/progress");
    return seen.body.state.sampling_step >= 2;
  });
  assert.equal(seen!.body.state.job_count, 2);
  assert.match(seen!.body.state.job, /^img2img\(/);
  await call(s, "POST", "/sdapi/v1/interrupt");
  const r = await pending;
  assert.equal(r.status, 200);
  assert.equal(r.body.images.length, 0);
});

test("native jobs: initImage → img2img, + mask → inpainting, + outpaint, hires → bigger; events and info as for txt2img", async () => {
  const run = async (body: Record<string, unknown>) => {
    const sub = await call(s, "POST", "/api/jobs", { prompt: "native", steps: 2, seed: 3, width: 32, height: 32, ...body });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const events = await readEvents(s, sub.body.id);
    assert.equal(events.at(-1)?.event, "done", JSON.stringify(events.at(-1)));
    const steps = events.filter((e) => e.event === "progress").map((e) => [e.data.step as number, e.data.total as number]);
    const seen = steps.map((x) => x[0] ?? 0);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), "steps never go back, over all passes");
    assert.equal(steps.at(-1)?.[0], steps.at(-1)?.[1], "the last step is the total");
    return events.at(-1)!.data;
  };
  const img = await run({ initImage: `data:image/png;base64,${IMAGE}`, strength: 0.6, resizeMode: "crop-and-resize" });
  assert.equal(img.info.denoisingStrength, 0.6);
  assert.match(img.images[0].infotext, /Denoising strength: 0\.6/);
  const inp = await run({ initImage: IMAGE, mask: MASK, fill: "latent-noise", maskBlur: 2, onlyMasked: true, width: 64, height: 64 });
  assert.match(inp.images[0].infotext, /Denoising strength: 0\.75/);
  const out = await run({ initImage: IMAGE, outpaint: { left: 16, right: 16 }, width: 96, height: 64, fill: 1 });
  const png = await fetch(`${s.url}${out.images[0].url}`);
  const meta = await sharp(Buffer.from(await png.arrayBuffer())).metadata();
  assert.deepEqual([meta.width, meta.height], [96, 64]);
  const hi = await run({ hires: { scale: 2, upscaler: "Latent (nearest)", denoisingStrength: 0.4 } });
  assert.deepEqual([hi.info.width, hi.info.height], [64, 64]);
  assert.match(hi.images[0].infotext, /Hires upscaler: Latent \(nearest\)/);
  const gallery = await call(s, "GET", "/api/gallery?limit=1");
  assert.equal(gallery.body.items[0].params.denoisingStrength, 0.4);
});

test("native jobs: bad image fields are 422s naming the field", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ initImage: "!!" }, "initImage"],
    [{ initImage: IMAGE, mask: 5 }, "mask"],
    [{ mask: MASK }, "mask"],
    [{ outpaint: { left: 8 } }, "outpaint"],
    [{ initImage: IMAGE, outpaint: {} }, "outpaint"],
    [{ initImage: IMAGE, outpaint: { left: -1 } }, "outpaint.left"],
    [{ initImage: IMAGE, fill: "blue" }, "fill"],
    [{ initImage: IMAGE, resizeMode: 7 }, "resizeMode"],
    [{ initImage: IMAGE, strength: "0.5" }, "strength"],
    [{ initImage: IMAGE, explain: true }, "explain"],
    [{ initImage: IMAGE, hires: {} }, "hires"],
    [{ hires: { scale: 2 }, explain: true }, "explain"],
    [{ hires: { upscaler: "ESRGAN_4x" } }, "hires.upscaler"],
    [{ hires: { scale: 64 } }, "hires.scale"],
    [{ width: 512, hires: { scale: 4 } }, "hires.scale"],
  ];
  for (const [body, field] of cases) {
    const r = await call(s, "POST", "/api/jobs", { prompt: "x", width: 32, height: 32, ...body });
    const shown = JSON.stringify(body).replace(IMAGE, "IMAGE").replace(MASK, "MASK");
    assert.equal(r.status, 422, `${shown} → ${r.status}`);
    assert.equal(r.body.error.field, field, shown);
  }
});

test("pass counter: hires progress rises over both passes; later passes are estimated until they start", () => {
  const base = { prompt: "", negativePrompt: "", cfgScale: 7, sampler: "Euler", seed: 1, width: 32, height: 32, explain: false } as const;
  const latent = passCounter({ kind: "txt2img", ...base, steps: 4, batchSize: 1, hires: { scale: 2, width: 64, height: 64, upscaler: "Latent", steps: 0, denoisingStrength: 0.5 } });
  const seen = [1, 2, 3, 4, 1, 2].map((st, i) => latent(st, i < 4 ? 4 : 2));
  assert.deepEqual(seen.map((p) => p.step), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(seen.map((p) => p.total), [6, 6, 6, 6, 6, 6]);
  assert.deepEqual(seen.map((p) => p.pass), [0, 0, 0, 0, 1, 1]);
  assert.deepEqual(seen.map((p) => p.passStep), [1, 2, 3, 4, 1, 2]);
  const image = passCounter({ kind: "txt2img", ...base, steps: 2, batchSize: 2, hires: { scale: 2, width: 64, height: 64, upscaler: "Lanczos", steps: 0, denoisingStrength: 1 } });
  const p = [1, 2, 1, 2, 1, 2].map((st) => image(st, 2));
  assert.equal(p[0]!.passes, 3);
  assert.deepEqual(p.map((x) => [x.step, x.total, x.pass]), [[1, 6, 0], [2, 6, 0], [3, 6, 1], [4, 6, 1], [5, 6, 2], [6, 6, 2]]);
  const plain = passCounter({ kind: "img2img", ...base, steps: 10, batchSize: 1, image: new Uint8Array(), strength: 0.5, resizeMode: 0 });
  assert.deepEqual(plain(3, 5), { step: 3, total: 5, pass: 0, passes: 1, passStep: 3, passTotal: 5 });
});
