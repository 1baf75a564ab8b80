/**
 * Issue #7, item 6: the web UI's image to image in headless Chromium against a real server with
 * the tiny golden model — upload, drop and paste, the mask brush, inpainting, img2img,
 * outpainting, before / after, "use this image", the hires fix controls, a touch phone.
 * Screenshots go to /tmp/sdts-ui/ (SDTS_UI_SHOTS overrides), named 2x-….
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page, Request } from "playwright-core";
import sharp from "sharp";
import { SHOTS, type Ui, startUi, uiSkip as skip } from "./harness.js";
import { GOLDEN_DIR } from "../golden-dir.js";

const PATTERN = join(GOLDEN_DIR, "edit", "inputs", "test_pattern.png");
/** Few steps: these tests are about the UI, not the pictures. */
const STEPS = "4";

/** The body of the next POST /api/jobs the page sends while `act` runs. */
async function jobBody(page: Page, act: () => Promise<void>): Promise<Record<string, unknown>> {
  const sent = page.waitForRequest((r: Request) => r.method() === "POST" && r.url().endsWith("/api/jobs"));
  await act();
  return JSON.parse((await sent).postData() ?? "{}") as Record<string, unknown>;
}

/** Waits until the stage shows a finished result (a file under /outputs/ other than `previous`) and returns its size. */
async function waitForResult(page: Page, previous = ""): Promise<[number, number]> {
  await page.waitForFunction(
    (prev) => {
      const src = document.getElementById("result")?.getAttribute("src") ?? "";
      return src.includes("/outputs/") && src !== prev;
    },
    previous,
    { timeout: 30_000 },
  );
  // Right after a src change, `complete` and the natural size can still be the old picture's; decode() waits for the new one.
  return page.$eval("#result", async (el) => {
    const img = el as HTMLImageElement;
    await img.decode();
    return [img.naturalWidth, img.naturalHeight] as [number, number];
  });
}

/** Pixels of the mask canvas more than half covered. */
function paintedPixels(page: Page): Promise<number> {
  return page.$eval("#mask-canvas", (c) => {
    const cv = c as HTMLCanvasElement;
    const d = cv.getContext("2d")?.getImageData(0, 0, cv.width, cv.height).data ?? new Uint8ClampedArray();
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if ((d[i] ?? 0) > 127) n++;
    return n;
  });
}

/** Drags the mouse across the mask canvas from (x0, y) to (x1, y), as fractions of its box. */
async function stroke(page: Page, x0: number, x1: number, y: number): Promise<void> {
  const box = await page.locator("#mask-canvas").boundingBox();
  assert.ok(box, "the mask canvas is on screen");
  await page.mouse.move(box.x + box.width * x0, box.y + box.height * y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * x1, box.y + box.height * y, { steps: 6 });
  await page.mouse.up();
}

/** A data URL's image: size and how many pixels are white (> 127) in the first channel. */
async function decode(dataUrl: unknown): Promise<{ width: number; height: number; white: number }> {
  assert.equal(typeof dataUrl, "string");
  const m = /^data:image\/png;base64,(.+)$/.exec(dataUrl as string);
  assert.ok(m?.[1], "a PNG data URL");
  const { data, info } = await sharp(Buffer.from(m[1], "base64")).raw().toBuffer({ resolveWithObject: true });
  let white = 0;
  for (let i = 0; i < data.length; i += info.channels) if ((data[i] ?? 0) > 127) white++;
  return { width: info.width, height: info.height, white };
}

describe("web UI: image to image in headless Chromium", () => {
  let ui: Ui;
  let page: Page;

  const step = (name: string, fn: () => Promise<void>): void => {
    it(name, { skip }, fn);
  };

  before(async () => {
    if (skip) return;
    ui = await startUi();
    page = ui.page;
  });

  after(async () => {
    if (skip) return;
    await ui?.close();
  });

  step("image mode: upload through the file picker shows the picture and sets the size", async () => {
    await page.goto(`${ui.server.url}/`);
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "Ready");
    assert.equal(await page.isVisible("#editor"), false, "text to image first");
    await page.click("text=Image to image");
    assert.equal(await page.isChecked("#mode-img2img"), true);
    assert.equal(await page.isVisible("#dropzone"), true);
    assert.equal(await page.isVisible("#hires"), false, "the hires fix belongs to text to image");
    assert.equal(await page.isVisible("#strength"), true);
    await ui.shot("21-image-empty");
    await page.setInputFiles("#image-file", PATTERN);
    await page.waitForSelector("#paint:not([hidden])");
    assert.deepEqual(await page.$eval("#image-canvas", (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]), [64, 64]);
    assert.deepEqual(await page.$eval("#mask-canvas", (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]), [64, 64]);
    assert.equal(await page.inputValue("#width"), "64");
    assert.equal(await page.inputValue("#height"), "64");
    assert.equal(await page.textContent("#editor-size"), "64 × 64");
    assert.equal(await paintedPixels(page), 0);
  });

  step("mask brush: paint, erase, invert, clear", async () => {
    await stroke(page, 0.2, 0.8, 0.5);
    const painted = await paintedPixels(page);
    assert.ok(painted > 100 && painted < 64 * 32, `a stroke across the middle (${painted} px)`);
    assert.match((await page.textContent("#mask-hint")) ?? "", /Only the painted part/);
    await page.click("text=Erase");
    await stroke(page, 0.2, 0.5, 0.5);
    const left = await paintedPixels(page);
    assert.ok(left > 0 && left < painted * 0.75, `erasing took part of the stroke away (${painted} → ${left})`);
    await page.click("#mask-invert");
    assert.ok((await paintedPixels(page)) > 64 * 64 - left - 64, "invert paints the rest");
    await page.click("#mask-invert");
    await page.click("#mask-clear");
    assert.equal(await paintedPixels(page), 0);
    await page.click("text=Paint");
    // Brush size: a bigger brush covers more.
    await page.fill("#brush-size", "60");
    await stroke(page, 0.3, 0.7, 0.4);
    assert.ok((await paintedPixels(page)) > painted, "the bigger brush paints a wider stroke");
    await ui.shot("22-image-masked");
  });

  step("inpaints: sends the image and a white-on-black mask, shows the result and before / after", async () => {
    await page.fill("#prompt", "a red ball");
    await page.fill("#steps", STEPS);
    await page.fill("#seed", "7");
    await page.fill("#strength", "0.8");
    await page.selectOption("#fill", "latent-noise");
    const body = await jobBody(page, () => page.click("#generate"));
    assert.match(String(body.initImage), /^data:image\/png;base64,/);
    const mask = await decode(body.mask);
    assert.deepEqual([mask.width, mask.height], [64, 64], "the mask has the image's size");
    assert.ok(mask.white > 100 && mask.white < 64 * 64 - 100, `white where painted, black elsewhere (${mask.white} white)`);
    assert.equal(body.strength, 0.8);
    assert.equal(body.fill, "latent-noise");
    assert.equal(body.onlyMasked, false);
    assert.equal(body.explain, false, "the explain view is for text to image only");
    assert.equal(body.width, 64);
    assert.deepEqual(await waitForResult(page), [64, 64]);
    assert.equal(await page.isVisible("#compare-toggle"), true);
    assert.equal(await page.isVisible("#before"), false);
    await page.click("#compare-toggle");
    assert.equal(await page.getAttribute("#compare-toggle", "aria-pressed"), "true");
    assert.equal(await page.isVisible("#before"), true);
    assert.match((await page.getAttribute("#before", "src")) ?? "", /^data:image\/png/);
    await page.fill("#compare-range", "35");
    assert.equal(await page.$eval("#frame", (f) => (f as HTMLElement).style.getPropertyValue("--split")), "35%");
    await ui.shot("23-inpaint-compare");
  });

  step("img2img without a mask; 'use this image' from the gallery", async () => {
    await page.click("#mask-clear");
    await page.fill("#strength", "0.5");
    const previous = (await page.getAttribute("#result", "src")) ?? "";
    const body = await jobBody(page, () => page.click("#generate"));
    assert.equal(body.mask, undefined, "no mask: plain img2img");
    assert.equal(body.strength, 0.5);
    assert.deepEqual(await waitForResult(page, previous), [64, 64]);
    assert.equal(await page.getAttribute("#compare-toggle", "aria-pressed"), "false", "a new result starts whole");
    await page.click("#gallery-refresh");
    await page.waitForFunction(() => document.querySelectorAll("#gallery li").length >= 2);
    await page.click("#gallery li button");
    await page.waitForSelector("#details[open]");
    assert.match((await page.textContent("#details-params")) ?? "", /Denoising strength\s*0\.5/);
    const url = (await page.getAttribute("#details-download", "href")) ?? "";
    await page.click("#details-use-image");
    await page.waitForFunction((name) => document.getElementById("editor-size")?.title === name, decodeURIComponent(url.split("/").pop() ?? ""));
    assert.equal(await paintedPixels(page), 0, "a new input starts with an empty mask");
  });

  step("outpaint grows the canvas; the result's 'use this image' fills the input", async () => {
    await page.fill("#outpaint-right", "16");
    assert.equal(await page.inputValue("#width"), "80", "the size follows the outpaint border");
    assert.equal(await page.inputValue("#height"), "64");
    const previous = (await page.getAttribute("#result", "src")) ?? "";
    const body = await jobBody(page, () => page.click("#generate"));
    assert.deepEqual(body.outpaint, { left: 0, right: 16, top: 0, bottom: 0 });
    assert.deepEqual(await waitForResult(page, previous), [80, 64]);
    await page.click("#compare-toggle");
    await ui.shot("24-outpaint-compare");
    await page.fill("#outpaint-right", "");
    await page.click("#use-result");
    await page.waitForFunction(() => document.getElementById("editor-size")?.textContent === "80 × 64");
    assert.equal(await page.inputValue("#width"), "80");
  });

  step("drop and paste an image file", async () => {
    const b64 = readFileSync(PATTERN).toString("base64");
    // No helper functions inside evaluate(): tsx's esbuild wraps named functions in a __name() the page lacks.
    await page.evaluate((data) => {
      const bytes = Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "dropped.png", { type: "image/png" }));
      const target = document.getElementById("paint") ?? document.body;
      for (const type of ["dragenter", "dragover", "drop"]) target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, b64);
    await page.waitForFunction(() => document.getElementById("editor-size")?.title === "dropped.png");
    assert.equal(await page.inputValue("#width"), "64");
    await page.click("text=Text to image");
    await page.evaluate((data) => {
      const bytes = Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], "pasted.png", { type: "image/png" }));
      document.getElementById("prompt")?.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
    }, b64);
    await page.waitForFunction(() => document.getElementById("editor-size")?.title === "pasted.png");
    assert.equal(await page.isChecked("#mode-img2img"), true, "pasting an image switches to image to image");
  });

  step("hires fix controls in text to image", async () => {
    await page.click("text=Text to image");
    assert.equal(await page.isVisible("#editor"), false);
    await page.fill("#width", "64");
    await page.fill("#height", "64");
    assert.equal(await page.isVisible("#hires-scale"), false);
    await page.check("#hires");
    assert.equal(await page.isVisible("#hires-scale"), true);
    assert.equal(await page.textContent("#hires-size"), "64 × 64 → 128 × 128");
    assert.equal(await page.isDisabled("#explain"), true, "no explain view with the hires fix");
    await page.fill("#hires-scale", "1.5");
    assert.equal(await page.textContent("#hires-size"), "64 × 64 → 96 × 96");
    await page.fill("#hires-steps", "2");
    await page.fill("#hires-strength", "0.6");
    await page.locator("#hires-fields").scrollIntoViewIfNeeded();
    await ui.shot("25-hires");
    const previous = (await page.getAttribute("#result", "src")) ?? "";
    const body = await jobBody(page, () => page.click("#generate"));
    assert.equal(body.initImage, undefined);
    assert.deepEqual(body.hires, { scale: 1.5, upscaler: "Latent", steps: 2, denoisingStrength: 0.6 });
    assert.equal(body.explain, false);
    assert.deepEqual(await waitForResult(page, previous), [96, 96]);
    assert.equal(await page.isVisible("#compare-toggle"), false, "no before / after for text to image");
    await page.uncheck("#hires");
    assert.equal(await page.isDisabled("#explain"), false);
  });

  step("phone width (360×740) with touch: paints with a finger, nothing wider than the screen", async () => {
    const phone = await ui.newPage({ viewport: { width: 360, height: 740 }, hasTouch: true, isMobile: true, colorScheme: "light" });
    await phone.goto(`${ui.server.url}/`);
    await phone.waitForFunction(() => document.getElementById("status")?.textContent === "Ready");
    await phone.click("text=Image to image");
    await phone.setInputFiles("#image-file", PATTERN);
    await phone.waitForSelector("#paint:not([hidden])");
    const box = await phone.locator("#mask-canvas").boundingBox();
    assert.ok(box && box.width <= 340, "the canvas fits the screen");
    await phone.touchscreen.tap(box.x + box.width / 2, box.y + box.height / 2);
    const painted = await phone.$eval("#mask-canvas", (c) => {
      const cv = c as HTMLCanvasElement;
      const d = cv.getContext("2d")?.getImageData(0, 0, cv.width, cv.height).data ?? new Uint8ClampedArray();
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if ((d[i] ?? 0) > 127) n++;
      return n;
    });
    assert.ok(painted > 0, "a tap paints a dot");
    assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= 360), "nothing wider than the screen");
    await ui.shot("26-phone-image", true, phone);
    await phone.emulateMedia({ colorScheme: "dark" });
    await phone.locator("#editor").screenshot({ path: join(SHOTS, "27-phone-image-dark.png"), animations: "disabled" });
    assert.deepEqual(ui.pageErrors, []);
  });
});
