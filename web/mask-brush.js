// @ts-check
/** The mask brush: paint or erase over the input image with mouse, pen or touch; invert, clear, export. */

/** Colour of painted strokes when the page defines no `--mask`. */
const FALLBACK_COLOUR = "#5257c9";

/**
 * Paints a mask on a canvas that has the input image's size. Strokes are kept in one colour
 * (shown translucent by CSS); only their coverage (alpha) counts, and the export turns it into
 * the white-on-black PNG the server expects (white = repaint).
 */
export class MaskBrush {
  /**
   * @param {HTMLCanvasElement} canvas stacked over the image, same pixel size
   * @param {HTMLElement} cursor a circle that follows the pointer, sized as the brush
   */
  constructor(canvas, cursor) {
    this.canvas = canvas;
    this.cursor = cursor;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) throw new Error("this browser has no 2D canvas");
    this.ctx = ctx;
    /** Brush diameter in CSS pixels (what the person sees), whatever the image's size. */
    this.size = 28;
    this.erase = false;
    /** @type {number | null} the pointer drawing now; a second finger is ignored */
    this.pointerId = null;
    /** @type {{ x: number, y: number }} */
    this.last = { x: 0, y: 0 };
    /** Runs when a stroke ends, and after invert and clear. */
    this.onChange = () => {};
    canvas.addEventListener("pointerdown", (ev) => this.down(ev));
    canvas.addEventListener("pointermove", (ev) => this.move(ev));
    canvas.addEventListener("pointerup", (ev) => this.up(ev));
    canvas.addEventListener("pointercancel", (ev) => this.up(ev));
    canvas.addEventListener("pointerleave", () => (this.cursor.hidden = true));
  }

  /** Starts an empty mask of the image's size. @param {number} width @param {number} height */
  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.pointerId = null;
  }

  /** @param {PointerEvent} ev */
  down(ev) {
    if (this.pointerId !== null || (ev.pointerType === "mouse" && ev.button !== 0)) return;
    ev.preventDefault();
    this.pointerId = ev.pointerId;
    this.canvas.setPointerCapture(ev.pointerId);
    this.last = this.toCanvas(ev);
    this.dab(this.last);
    this.showCursor(ev);
  }

  /** @param {PointerEvent} ev */
  move(ev) {
    this.showCursor(ev);
    if (ev.pointerId !== this.pointerId) return;
    // Coalesced events keep fast strokes smooth where the browser batches pointer moves.
    const events = typeof ev.getCoalescedEvents === "function" ? ev.getCoalescedEvents() : [];
    for (const e of events.length > 0 ? events : [ev]) {
      const p = this.toCanvas(e);
      this.line(this.last, p);
      this.last = p;
    }
  }

  /** @param {PointerEvent} ev */
  up(ev) {
    if (ev.pointerId !== this.pointerId) return;
    this.pointerId = null;
    if (this.canvas.hasPointerCapture(ev.pointerId)) this.canvas.releasePointerCapture(ev.pointerId);
    if (ev.pointerType === "touch") this.cursor.hidden = true;
    this.onChange();
  }

  /** A pointer position in canvas pixels. @param {PointerEvent} ev */
  toCanvas(ev) {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((ev.clientX - r.left) * this.canvas.width) / r.width, y: ((ev.clientY - r.top) * this.canvas.height) / r.height };
  }

  /** Brush diameter in canvas pixels. */
  width() {
    const r = this.canvas.getBoundingClientRect();
    return r.width > 0 ? (this.size * this.canvas.width) / r.width : this.size;
  }

  /** Sets up the context for one mark: colour, width, paint or erase. */
  pen() {
    const c = this.ctx;
    c.globalCompositeOperation = this.erase ? "destination-out" : "source-over";
    c.fillStyle = c.strokeStyle = getComputedStyle(this.canvas).getPropertyValue("--mask").trim() || FALLBACK_COLOUR;
    c.lineWidth = this.width();
    c.lineCap = "round";
    c.lineJoin = "round";
  }

  /** A round mark where a stroke starts (a tap paints a dot). @param {{ x: number, y: number }} p */
  dab(p) {
    this.pen();
    this.ctx.beginPath();
    this.ctx.arc(p.x, p.y, this.width() / 2, 0, 2 * Math.PI);
    this.ctx.fill();
  }

  /** @param {{ x: number, y: number }} a @param {{ x: number, y: number }} b */
  line(a, b) {
    this.pen();
    this.ctx.beginPath();
    this.ctx.moveTo(a.x, a.y);
    this.ctx.lineTo(b.x, b.y);
    this.ctx.stroke();
  }

  /** The brush outline under a mouse or pen (a finger hides it). @param {PointerEvent} ev */
  showCursor(ev) {
    if (ev.pointerType === "touch") return;
    const r = this.canvas.getBoundingClientRect();
    const s = this.cursor.style;
    s.width = s.height = `${this.size}px`;
    s.left = `${ev.clientX - r.left}px`;
    s.top = `${ev.clientY - r.top}px`;
    this.cursor.classList.toggle("erasing", this.erase);
    this.cursor.hidden = false;
  }

  /** Swaps painted and unpainted: coverage a becomes 1 − a. */
  invert() {
    const { width: w, height: h } = this.canvas;
    if (w === 0 || h === 0) return;
    const old = document.createElement("canvas");
    old.width = w;
    old.height = h;
    old.getContext("2d")?.drawImage(this.canvas, 0, 0);
    this.erase = false;
    this.pen();
    this.ctx.globalCompositeOperation = "copy";
    this.ctx.fillRect(0, 0, w, h);
    this.ctx.globalCompositeOperation = "destination-out";
    this.ctx.drawImage(old, 0, 0);
    this.ctx.globalCompositeOperation = "source-over";
    this.onChange();
  }

  clear() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    this.onChange();
  }

  /** Whether nothing is painted. */
  isEmpty() {
    const { width: w, height: h } = this.canvas;
    if (w === 0 || h === 0) return true;
    const d = this.ctx.getImageData(0, 0, w, h).data;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return false;
    return true;
  }

  /** The mask as a PNG data URL at the image's size: white where painted, black elsewhere, grey along soft edges. */
  toDataUrl() {
    const { width: w, height: h } = this.canvas;
    const white = document.createElement("canvas");
    white.width = w;
    white.height = h;
    const wc = white.getContext("2d");
    const out = document.createElement("canvas");
    out.width = w;
    out.height = h;
    const oc = out.getContext("2d");
    if (!wc || !oc) throw new Error("this browser has no 2D canvas");
    wc.drawImage(this.canvas, 0, 0);
    wc.globalCompositeOperation = "source-in";
    wc.fillStyle = "#fff";
    wc.fillRect(0, 0, w, h);
    oc.fillStyle = "#000";
    oc.fillRect(0, 0, w, h);
    oc.drawImage(white, 0, 0);
    return out.toDataURL("image/png");
  }
}
