// @ts-check
/** The gallery of past images and the details sheet (parameters, download, "use these settings", "use this image"). */
import { getGallery } from "./api.js";
import { byId, h, pixelateIfSmall } from "./dom.js";

/** @typedef {import("./api.js").GalleryItem} GalleryItem */
/** @typedef {import("./api.js").GenParams} GenParams */

const PAGE = 24;

/** Lists past images, newest first, a page at a time. */
export class Gallery {
  /**
   * @param {{ onUse: (p: Partial<GenParams>) => void, onUseImage: (url: string) => void, onError: (e: unknown) => void }} hooks
   */
  constructor(hooks) {
    this.hooks = hooks;
    this.list = byId("gallery", HTMLUListElement);
    this.emptyNote = byId("gallery-empty");
    this.more = byId("gallery-more", HTMLButtonElement);
    this.dialog = byId("details", HTMLDialogElement);
    /** @type {GalleryItem[]} */
    this.items = [];
    /** @type {GalleryItem | null} */
    this.current = null;
    /** The server's cursor for the next page (a file name), or null at the end. */
    /** @type {string | null} */
    this.next = null;
    pixelateIfSmall(byId("details-image", HTMLImageElement));
    byId("gallery-refresh").addEventListener("click", () => void this.refresh());
    this.more.addEventListener("click", () => void this.loadMore());
    byId("details-use").addEventListener("click", () => {
      // The image's own seed, not the request's −1, so the settings make this very image again.
      if (this.current) this.hooks.onUse({ ...this.current.params, seed: this.current.seed });
      this.dialog.close();
    });
    byId("details-use-image").addEventListener("click", () => {
      if (this.current) this.hooks.onUseImage(this.current.url);
      this.dialog.close();
    });
    // A click on the backdrop (outside the sheet) closes it.
    this.dialog.addEventListener("click", (ev) => {
      if (ev.target === this.dialog) this.dialog.close();
    });
  }

  /** Reloads the first page. */
  async refresh() {
    try {
      const page = await getGallery({ limit: PAGE });
      this.items = page.items;
      this.list.replaceChildren(...page.items.map((it) => this.thumb(it)));
      this.setNext(page);
    } catch (e) {
      this.hooks.onError(e);
    }
    this.emptyNote.hidden = this.items.length > 0;
  }

  async loadMore() {
    if (this.next === null) return this.refresh();
    this.more.disabled = true;
    try {
      const page = await getGallery({ limit: PAGE, before: this.next });
      const seen = new Set(this.items.map((it) => it.url));
      const fresh = page.items.filter((it) => !seen.has(it.url));
      this.items.push(...fresh);
      this.list.append(...fresh.map((it) => this.thumb(it)));
      this.setNext(page);
    } catch (e) {
      this.hooks.onError(e);
    } finally {
      this.more.disabled = false;
    }
  }

  /**
   * Remembers where the next page starts: the server's `next`, else the last item's file name.
   * @param {import("./api.js").GalleryPage} page
   */
  setNext(page) {
    const last = page.items[page.items.length - 1];
    const fallback = page.items.length === PAGE && last ? (last.file ?? decodeURIComponent(last.url.split("/").pop() ?? "")) : null;
    this.next = page.next !== undefined ? page.next : fallback;
    this.more.hidden = this.next === null;
  }

  /** @param {GalleryItem} it */
  thumb(it) {
    const prompt = it.params?.prompt ?? "";
    const img = h("img", { src: it.url, alt: "", loading: "lazy", decoding: "async" });
    pixelateIfSmall(img);
    const b = h(
      "button",
      { type: "button", "aria-label": `Open details: ${prompt || "(empty prompt)"}, seed ${it.seed}` },
      img,
      h("span", { class: "caption", "aria-hidden": "true" }, prompt || "(empty prompt)"),
    );
    b.addEventListener("click", () => this.open(it));
    return h("li", {}, b);
  }

  /** Opens the details sheet for an item. @param {GalleryItem} it */
  open(it) {
    this.current = it;
    const p = it.params ?? /** @type {GalleryItem["params"]} */ ({});
    const img = byId("details-image", HTMLImageElement);
    img.src = it.url;
    img.alt = `Image for: ${p.prompt || "(empty prompt)"}`;
    byId("details-prompt").textContent = p.prompt || "(empty prompt)";
    const neg = byId("details-negative");
    neg.textContent = p.negativePrompt ? `Negative: ${p.negativePrompt}` : "";
    neg.hidden = !p.negativePrompt;
    /** @type {[string, unknown][]} */
    const rows = [
      ["Sampler", p.sampler],
      ["Steps", p.steps],
      ["CFG scale", p.cfgScale],
      ["Seed", it.seed ?? p.seed],
      ["Size", p.width && p.height ? `${p.width} × ${p.height}` : undefined],
      ["Denoising strength", p.denoisingStrength],
      ["Created", formatDate(it.createdAt)],
    ];
    byId("details-params").replaceChildren(
      ...rows.filter(([, v]) => v !== undefined && v !== "").flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]),
    );
    const dl = byId("details-download", HTMLAnchorElement);
    dl.href = it.url;
    dl.download = `sdts-${it.seed}.png`;
    if (!this.dialog.open) this.dialog.showModal();
  }
}

/** @param {string | number | undefined} t ISO string or epoch ms */
function formatDate(t) {
  if (t === undefined) return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
