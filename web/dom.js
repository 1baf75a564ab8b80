// @ts-check
/** Small DOM helpers shared by the UI modules. */

/**
 * The element with this id; throws if the page lacks it (a markup/script mismatch).
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new (...args: any[]) => T} [type]
 * @returns {T}
 */
export function byId(id, type) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`index.html has no #${id}`);
  if (type && !(el instanceof type)) throw new Error(`#${id} is not a ${type.name}`);
  return /** @type {T} */ (el);
}

/**
 * Creates an element with attributes (`class`, `aria-*`, …) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, string | number | boolean | undefined>} [attrs]
 * @param {(Node | string)[]} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  el.append(...children);
  return el;
}

/**
 * Marks an image for crisp upscaling when it is much smaller than where it is shown
 * (the tiny test models make 64 px images; smoothing them only blurs).
 * @param {HTMLImageElement} img
 */
export function pixelateIfSmall(img) {
  const mark = () => img.classList.toggle("pixelated", img.naturalWidth > 0 && img.naturalWidth < 256);
  if (img.complete) mark();
  img.addEventListener("load", mark);
}

/** "Ctrl" or "⌘" for the platform's shortcut key. */
export function modKeyLabel() {
  const platform = navigator.platform || navigator.userAgent;
  return /Mac|iPhone|iPad/.test(platform) ? "⌘" : "Ctrl";
}

/**
 * A short human duration: "4 s", "1 min 20 s".
 * @param {number} seconds
 */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
}

/**
 * Keeps a slider and its number box in step; `onInput` runs after either changes.
 * @param {HTMLInputElement} num
 * @param {HTMLInputElement} range
 * @param {() => void} [onInput]
 */
export function linkRange(num, range, onInput = () => {}) {
  num.addEventListener("input", () => {
    if (num.value !== "" && Number.isFinite(Number(num.value))) range.value = num.value;
    onInput();
  });
  range.addEventListener("input", () => {
    num.value = range.value;
    num.removeAttribute("aria-invalid");
    onInput();
  });
}

/**
 * A number box's value, or a message naming the field (its `name`) when it is not a number.
 * @param {HTMLInputElement} input
 * @param {string} label the name a person reads
 * @returns {{ value: number } | { error: string, field: string }}
 */
export function readNumber(input, label) {
  const raw = input.value.trim();
  const v = Number(raw);
  if (raw === "" || !Number.isFinite(v)) return { error: `${label} must be a number (got "${raw}").`, field: input.name };
  return { value: v };
}

/**
 * Sets a number box (and its slider, through the input event) without marking it invalid.
 * @param {HTMLInputElement} input
 * @param {number} value
 */
export function setNumber(input, value) {
  input.value = String(value);
  input.removeAttribute("aria-invalid");
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

/** @param {string} key @returns {any} what was saved under key, or null */
export function loadJson(key) {
  try {
    const raw = localStorage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** @param {string} key @param {unknown} value */
export function saveJson(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Private mode or storage full: settings just aren't remembered.
  }
}
