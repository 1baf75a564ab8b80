/**
 * Issue #6, item 6: the web UI in headless Chromium (playwright-core driving Debian's chromium)
 * against a real `sdts serve` on loopback with the tiny golden model. Screenshots go to
 * /tmp/sdts-ui/ (SDTS_UI_SHOTS overrides) for a person to look at.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import type { SdtsServer } from "../../src/server/app.js";
import { SHOTS, type Ui, startUi, uiSkip as skip } from "./harness.js";

/** Steps of the job that gets cancelled: far more than it can finish before the test cancels it. */
const LONG_STEPS = 1000;

describe("web UI in headless Chromium", () => {
  let ui: Ui;
  let server: SdtsServer;
  let page: Page;
  let pageErrors: string[];

  /** Each test skips (and says why) where Chromium or the tiny model is missing. */
  const step = (name: string, fn: () => Promise<void>): void => {
    it(name, { skip }, fn);
  };

  before(async () => {
    if (skip) return;
    ui = await startUi({ maxSteps: LONG_STEPS });
    ({ server, page, pageErrors } = ui);
  });

  after(async () => {
    if (skip) return;
    await ui?.close();
  });

  const shot = (name: string, fullPage = false): Promise<Buffer> => ui.shot(name, fullPage);

  step("loads the model info into the form, with a label for every control", async () => {
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "Ready");
    assert.equal(await page.textContent("#model-name"), "tiny-pipeline");
    assert.ok((await page.locator("#sampler option").count()) > 5, "samplers listed");
    assert.equal(await page.inputValue("#sampler"), "Euler a");
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input, select, textarea, button")]
        .filter((el) => {
          const labels = (el as HTMLInputElement).labels;
          const named = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || (el.textContent ?? "").trim();
          return !(labels && labels.length > 0) && !named;
        })
        .map((el) => el.id || el.outerHTML.slice(0, 60)),
    );
    assert.deepEqual(unlabelled, []);
    await shot("01-empty");
  });

  step("generates from a typed prompt with Ctrl+Enter and shows the image", async () => {
    await page.fill("#prompt", "a lighthouse on a cliff at dawn");
    await page.fill("#negativePrompt", "blurry");
    await page.fill("#width", "64");
    await page.fill("#height", "64");
    await page.fill("#seed", "1234");
    await page.press("#prompt", "Control+Enter");
    await page.waitForFunction(
      () => {
        const img = document.getElementById("result") as HTMLImageElement | null;
        return img !== null && img.src.includes("/outputs/") && img.complete && img.naturalWidth > 0;
      },
      undefined,
      { timeout: 30_000 },
    );
    const size = await page.$eval("#result", (img) => [(img as HTMLImageElement).naturalWidth, (img as HTMLImageElement).naturalHeight]);
    assert.deepEqual(size, [64, 64]);
    assert.match((await page.textContent("#progress-step")) ?? "", /^Done in/);
    assert.match((await page.textContent("#result-meta")) ?? "", /Seed 1234/);
    assert.equal(await page.getAttribute("#download", "href"), await page.getAttribute("#result", "src"));
    await page.waitForSelector("#gallery li img");
    assert.equal(await page.isDisabled("#seed-reuse"), false, "reuse-last-seed is offered once there is a last seed");
    await shot("02-generated", true);
  });

  step("explain view: filmstrip frames for every step and a heatmap per prompt token", async () => {
    await page.click("#tab-explain");
    assert.equal(await page.isVisible("#view-explain"), true);
    // 20 steps + the final image
    const frames = page.locator("#filmstrip button");
    assert.equal(await frames.count(), 21);
    await page.waitForFunction(() =>
      [...document.querySelectorAll<HTMLImageElement>("#filmstrip img")].slice(0, 3).every((i) => i.complete && i.naturalWidth === 64),
    );
    const tokens = await page.locator("#tokens .token:not(.none)").allTextContents();
    assert.ok(tokens.length >= 5, `a heatmap button per token (got ${tokens.join(", ")})`);
    assert.ok(tokens.some((t) => t.includes("lighthouse") || t.includes("light")), `prompt words shown (got ${tokens.join(", ")})`);
    // The first word's map is on by default; pick another and check the overlay follows.
    assert.equal(await page.isVisible("#overlay"), true);
    await page.locator("#tokens .token:not(.none)").nth(1).click();
    assert.equal(await page.getAttribute("#tokens .token:not(.none) >> nth=1", "aria-pressed"), "true");
    const overlay = await page.$eval("#overlay", (c) => [(c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height]);
    assert.ok(overlay[0]! > 0 && overlay[1]! > 0, "the heatmap is painted");
    const painted = await page.$eval("#overlay", (c) => {
      const ctx = (c as HTMLCanvasElement).getContext("2d");
      const d = ctx?.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height).data ?? new Uint8ClampedArray();
      return d.some((v, i) => i % 4 === 3 && v > 0);
    });
    assert.ok(painted, "the heatmap has visible pixels");
    await shot("03-explain-final");
    // Scrub to the first step: the stage shows that frame, the label says so.
    await page.fill("#scrub", "0");
    assert.match((await page.textContent("#scrub-label")) ?? "", /step 1 of 20/);
    assert.match((await page.getAttribute("#result", "src")) ?? "", /filmstrip\/0$|^data:image/);
    await shot("04-explain-step1");
    await page.click("#tokens .token.none");
    assert.equal(await page.isVisible("#overlay"), false);
    await page.click("#tab-image");
    assert.match((await page.getAttribute("#result", "src")) ?? "", /\/outputs\//);
  });

  step("gallery: details with parameters, download and 'use these settings'", async () => {
    await page.fill("#prompt", "something else");
    await page.click("#gallery li button");
    await page.waitForSelector("#details[open]");
    assert.equal(await page.textContent("#details-prompt"), "a lighthouse on a cliff at dawn");
    const params = await page.textContent("#details-params");
    assert.match(params ?? "", /Steps\s*20/);
    assert.match(params ?? "", /Seed\s*1234/);
    assert.match((await page.getAttribute("#details-download", "href")) ?? "", /^\/outputs\/.*\.png$/);
    await shot("05-details");
    await page.click("#details-use");
    assert.equal(await page.inputValue("#prompt"), "a lighthouse on a cliff at dawn");
    assert.equal(await page.inputValue("#negativePrompt"), "blurry");
    assert.equal(await page.inputValue("#seed"), "1234");
    assert.equal(await page.isVisible("#details"), false);
  });

  step("shows the server's message for settings it refuses, and marks the field", async () => {
    await page.fill("#width", "70");
    await page.click("#generate");
    await page.waitForSelector("#error:not([hidden])");
    const message = (await page.textContent("#error-message")) ?? "";
    assert.match(message, /width/i);
    assert.match(message, /multiple of/);
    assert.equal(await page.getAttribute("#width", "aria-invalid"), "true");
    await shot("06-error");
    await page.click("#error-close");
    await page.fill("#width", "64");
  });

  step("cancels a long job", async () => {
    await page.fill("#steps", String(LONG_STEPS));
    await page.uncheck("#explain");
    await page.click("#generate");
    // A few steps in, with an ETA (it needs two progress events to measure the pace).
    await page.waitForFunction(
      () =>
        Number(/^Step (\d+)/.exec(document.getElementById("progress-step")?.textContent ?? "")?.[1] ?? 0) >= 3 &&
        /left/.test(document.getElementById("progress-eta")?.textContent ?? ""),
      undefined,
      { timeout: 20_000 },
    );
    assert.equal(await page.isVisible("#result"), true, "live preview shown while denoising");
    assert.match((await page.getAttribute("#result", "src")) ?? "", /^data:image\/png/);
    await shot("07-progress");
    await page.click("#cancel");
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "Cancelled", undefined, { timeout: 10_000 });
    assert.match((await page.textContent("#progress-step")) ?? "", /^Cancelled at step \d+ \/ 1000/);
    assert.equal(await page.isEnabled("#generate"), true);
    assert.equal(await page.isDisabled("#cancel"), true);
    // The server agrees: the job is gone, nothing is running.
    let running = true;
    for (let i = 0; i < 50 && running; i++) {
      const info = (await (await fetch(`${server.url}/api/info`)).json()) as { queue: { running: boolean } };
      running = info.queue.running;
      if (running) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(running, false, "the server still runs the cancelled job");
    await page.fill("#steps", "20");
    await page.check("#explain");
  });

  step("phone width (360×740): one column, nothing wider than the screen", async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    // No helper functions inside evaluate(): tsx's esbuild wraps named functions in a __name() the page lacks.
    const layout = await page.evaluate(() => ({
      scrollWidth: document.documentElement.scrollWidth,
      form: document.getElementById("form")!.getBoundingClientRect().toJSON() as DOMRect,
      stage: document.getElementById("stage")!.getBoundingClientRect().toJSON() as DOMRect,
    }));
    assert.ok(layout.scrollWidth <= 360, `page is ${layout.scrollWidth}px wide`);
    assert.ok(layout.stage.top >= layout.form.bottom, "the result sits below the form");
    assert.ok(layout.form.width <= 360 && layout.stage.width <= 360);
    await shot("08-phone", true);
    await page.click("#tab-explain");
    await page.locator("#stage").screenshot({ path: join(SHOTS, "09-phone-explain.png"), animations: "disabled" });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  step("dark colour scheme", async () => {
    await page.emulateMedia({ colorScheme: "dark" });
    await page.click("#tab-explain");
    await shot("10-dark-explain");
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, "rgb(245, 244, 240)", "dark background in dark mode");
    assert.deepEqual(pageErrors, []);
  });
});
