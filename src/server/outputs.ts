/**
 * Generated images on disk: `<dir>/NNNNN-<seed>.png` with the infotext inside, claimed by
 * writeNumbered (temp file + hard link: never a partial file, never an overwrite), and a
 * gallery index `gallery.jsonl` (one line per image) so past images list without opening
 * every PNG. Images in the folder the index lacks (from `sdts generate`, or an index lost)
 * are read once at start.
 */
import { appendFile, readFile, readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { parseInfotext, readPngText, writeNumbered } from "../index.js";
import type { RunResult } from "./protocol.js";

/** Parameters of a gallery image, camelCase, as the native API takes them. */
export interface GalleryParams {
  prompt: string;
  negativePrompt: string;
  steps?: number;
  cfgScale?: number;
  sampler?: string;
  seed?: number;
  width?: number;
  height?: number;
  model?: string;
  /** img2img, inpainting and hires images: the infotext's "Denoising strength". */
  denoisingStrength?: number;
}

/** One saved image. */
export interface GalleryItem {
  readonly file: string;
  readonly url: string;
  readonly seed: number;
  readonly infotext: string;
  readonly params: GalleryParams;
  readonly createdAt: string;
}

const INDEX = "gallery.jsonl";
const NUMBERED_PNG = /^(\d{5,})-[\w.-]*\.png$/;

/** True for a name this folder serves: a numbered PNG, no path parts. */
export function isOutputName(name: string): boolean {
  return NUMBERED_PNG.test(name) && basename(name) === name;
}

function order(file: string): number {
  return Number(NUMBERED_PNG.exec(file)?.[1] ?? -1);
}

/** Gallery params from an infotext (what "use these settings" needs). */
export function paramsFromInfotext(text: string): GalleryParams {
  const t = parseInfotext(text);
  const p = t.params;
  const num = (k: string): number | undefined => (p[k] !== undefined && Number.isFinite(Number(p[k])) ? Number(p[k]) : undefined);
  const size = /^(\d+)x(\d+)$/.exec(p["Size"] ?? "");
  const out: GalleryParams = { prompt: t.prompt, negativePrompt: t.negativePrompt };
  const steps = num("Steps");
  const cfg = num("CFG scale");
  const seed = num("Seed");
  if (steps !== undefined) out.steps = steps;
  if (cfg !== undefined) out.cfgScale = cfg;
  if (p["Sampler"] !== undefined) out.sampler = p["Sampler"];
  if (seed !== undefined) out.seed = seed;
  if (size) {
    out.width = Number(size[1]);
    out.height = Number(size[2]);
  }
  if (p["Model"] !== undefined) out.model = p["Model"];
  const strength = num("Denoising strength");
  if (strength !== undefined) out.denoisingStrength = strength;
  return out;
}

/** The outputs folder and its gallery. */
export class Outputs {
  private readonly items = new Map<string, GalleryItem>();
  private ready: Promise<void> | undefined;

  constructor(readonly dir: string) {}

  /** Saves every image of a run; returns the gallery items in batch order. */
  async save(result: RunResult): Promise<GalleryItem[]> {
    await this.init();
    const saved: GalleryItem[] = [];
    for (const [i, png] of result.images.entries()) {
      const seed = result.seeds[i] ?? result.info.seed;
      const path = await writeNumbered(this.dir, `${seed}.png`, png);
      const infotext = result.info.infotexts[i] ?? "";
      const item = this.item(basename(path), seed, infotext, new Date());
      this.items.set(item.file, item);
      await appendFile(join(this.dir, INDEX), `${JSON.stringify(item)}\n`);
      saved.push(item);
    }
    return saved;
  }

  /** Newest first; `before` is a file name from an earlier page. */
  async list(limit: number, before?: string): Promise<{ items: GalleryItem[]; next: string | null }> {
    await this.init();
    const all = [...this.items.values()].sort((a, b) => order(b.file) - order(a.file) || (a.file < b.file ? 1 : -1));
    const start = before === undefined ? 0 : all.findIndex((it) => order(it.file) < order(before) || (order(it.file) === order(before) && it.file < before));
    const page = start < 0 ? [] : all.slice(start, start + limit);
    const last = page[page.length - 1];
    return { items: page, next: page.length === limit && last !== undefined && start + limit < all.length ? last.file : null };
  }

  /** Reads the index and picks up images it lacks; runs once. */
  init(): Promise<void> {
    this.ready ??= this.scan();
    return this.ready;
  }

  private item(file: string, seed: number, infotext: string, created: Date): GalleryItem {
    return { file, url: `/outputs/${encodeURIComponent(file)}`, seed, infotext, params: paramsFromInfotext(infotext), createdAt: created.toISOString() };
  }

  private async scan(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter(isOutputName);
    } catch {
      return; // no folder yet: the first save creates it
    }
    const present = new Set(names);
    const text = await readFile(join(this.dir, INDEX), "utf8").catch(() => "");
    for (const line of text.split("\n")) {
      if (line.trim() === "") continue;
      try {
        const it = JSON.parse(line) as GalleryItem;
        if (typeof it.file === "string" && present.has(it.file)) this.items.set(it.file, it);
      } catch {
        // a torn last line (the server was killed mid-append): that image is re-read below
      }
    }
    for (const file of names) {
      if (this.items.has(file)) continue;
      try {
        const path = join(this.dir, file);
        const infotext = readPngText(new Uint8Array(await readFile(path)))["parameters"] ?? "";
        const params = paramsFromInfotext(infotext);
        this.items.set(file, this.item(file, params.seed ?? 0, infotext, (await stat(path)).mtime));
      } catch {
        // not a readable PNG: leave it out of the gallery
      }
    }
  }
}
