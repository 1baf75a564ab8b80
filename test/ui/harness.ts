/**
 * What the UI tests share: a real `sdts serve` on loopback with the tiny golden model, and
 * headless Chromium (Debian's, driven by playwright-core) that may load nothing from elsewhere.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, type BrowserContextOptions, type Page, chromium } from "playwright-core";
import { type SdtsServer, startServer } from "../../src/server/app.js";
import { DEFAULT_LIMITS, type Limits } from "../../src/server/params.js";
import { GOLDEN_DIR } from "../golden-dir.js";

const CHROMIUM = "/usr/bin/chromium";
const TINY = join(GOLDEN_DIR, "tiny-pipeline");
const WEB = fileURLToPath(new URL("../../web/", import.meta.url));
/** Where screenshots go for a person to look at. */
export const SHOTS = process.env.SDTS_UI_SHOTS ?? "/tmp/sdts-ui";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];

/** Why the UI tests cannot run here, or false. */
export const uiSkip: string | false = !existsSync(CHROMIUM)
  ? `needs ${CHROMIUM} (apt-get install chromium)`
  : !existsSync(join(TINY, "model_index.json"))
    ? `needs the tiny golden model at ${TINY} (set SDTS_GOLDEN)`
    : false;

/** A running server and browser, one page open on nothing yet. */
export interface Ui {
  readonly server: SdtsServer;
  readonly browser: Browser;
  readonly page: Page;
  /** Uncaught page errors and blocked outside requests, for a test to assert empty. */
  readonly pageErrors: string[];
  /** A new isolated page (own storage) with the same rules, e.g. a touch phone. */
  newPage(options: BrowserContextOptions): Promise<Page>;
  /** Saves a screenshot of the page (or of `page`) under SHOTS. */
  shot(name: string, fullPage?: boolean, page?: Page): Promise<Buffer>;
  close(): Promise<void>;
}

/** Starts the server (with `limits` over the defaults) and Chromium, and opens a 1280×900 light page. */
export async function startUi(limits: Partial<Limits> = {}): Promise<Ui> {
  mkdirSync(SHOTS, { recursive: true });
  const outputs = mkdtempSync(join(tmpdir(), "sdts-ui-"));
  const started = startServer({
    model: TINY,
    host: "127.0.0.1",
    port: 0,
    outputs,
    queueLimit: 4,
    limits: { ...DEFAULT_LIMITS, ...limits },
    maxBodyBytes: 1 << 20,
    previewEvery: 1,
    provider: "cpu",
    webRoot: WEB,
    log: () => undefined,
  });
  const [server, browser] = await Promise.all([started, chromium.launch({ executablePath: CHROMIUM, args: ARGS })]);
  await server.ready;
  const pageErrors: string[] = [];
  const contexts: BrowserContext[] = [];
  const newPage = async (options: BrowserContextOptions): Promise<Page> => {
    const context = await browser.newContext(options);
    contexts.push(context);
    // Nothing from outside may load: every request must go to the server under test.
    await context.route(
      (url) => !url.href.startsWith(server.url) && !url.protocol.startsWith("data") && !url.protocol.startsWith("blob"),
      (route) => route.abort(),
    );
    const page = await context.newPage();
    page.on("pageerror", (e) => pageErrors.push(e.message));
    page.on("requestfailed", (r) => {
      if (!r.url().startsWith(server.url)) pageErrors.push(`blocked outside request: ${r.url()}`);
    });
    return page;
  };
  const page = await newPage({ viewport: { width: 1280, height: 900 }, colorScheme: "light" });
  return {
    server,
    browser,
    page,
    pageErrors,
    newPage,
    shot: (name, fullPage = false, p = page) => p.screenshot({ path: join(SHOTS, `${name}.png`), fullPage, animations: "disabled" }),
    close: async () => {
      for (const c of contexts) await c.close();
      await browser.close();
      await server.close();
      rmSync(outputs, { recursive: true, force: true });
    },
  };
}
