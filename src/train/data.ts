/** The in-memory training set (RGB bytes + captions) and the tensors batches are made of. */
import { encodePng } from "../io/image.js";
import type { ImageCaptionData } from "../io/image-folder.js";
import type { HostTensor } from "../runtime/host-tensor.js";
import type { Rng } from "./rng.js";

/** Distinct random indices in [0, n) (with repeats only when k > n). */
export function sampleIndices(rng: Rng, n: number, k: number): number[] {
  if (k > n) return Array.from({ length: k }, () => rng.int(n));
  const picked = new Set<number>();
  while (picked.size < k) picked.add(rng.int(n));
  return [...picked];
}

/** Draws indices with probability ∝ weight (cumulative sums + binary search), distinct where k ≤ n. */
export class WeightedSampler {
  private readonly cum: Float64Array;
  constructor(weights: Float64Array) {
    this.cum = new Float64Array(weights.length);
    let s = 0;
    weights.forEach((w, i) => (this.cum[i] = s += w));
  }
  private one(rng: Rng): number {
    const n = this.cum.length;
    const x = rng.next() * (this.cum[n - 1] ?? 0);
    let [lo, hi] = [0, n - 1];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.cum[mid] ?? 0) > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  /** k draws; repeats within a draw are redrawn (up to 20 tries each) unless k exceeds the images. */
  sample(rng: Rng, k: number): number[] {
    const picked: number[] = [];
    const seen = new Set<number>();
    for (let j = 0; j < k; j++) {
      let i = this.one(rng);
      for (let t = 0; t < 20 && seen.has(i) && k <= this.cum.length; t++) i = this.one(rng);
      seen.add(i);
      picked.push(i);
    }
    return picked;
  }
}

/** Images `indices` as [B, 3, S, S] float32 in [−1, 1]. */
export function imageBatch(d: ImageCaptionData, indices: readonly number[]): HostTensor {
  const s = d.size;
  const plane = s * s;
  const out = new Float32Array(indices.length * 3 * plane);
  indices.forEach((idx, b) => {
    const src = idx * plane * 3;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) out[(b * 3 + c) * plane + i] = ((d.rgb[src + i * 3 + c] ?? 0) / 127.5) - 1;
    }
  });
  return { dtype: "float32", shape: [indices.length, 3, s, s], data: out };
}

/**
 * The words a training caption may be set in (`rephrase`), so that a prompt worded unlike any
 * caption of the folder ("an illustration of a tulip", "tulip clip art") still lands near it:
 * the text encoder learns to look past whatever surrounds the subject. Drawn independently, they
 * make thousands of phrasings rather than a few templates to memorise.
 */
export const CAPTION_WORDS = {
  prefixes: [
    "a picture of", "an image of", "a drawing of", "an illustration of", "a rendering of", "a photo of", "a sketch of", "a painting of",
    "a cartoon of", "a graphic of", "a depiction of", "a design of", "a close-up of", "art of", "a", "an", "the", "one", "some", "my",
    "draw", "show me", "please draw", "i want", "make", "generate", "create", "give me", "here is", "paint", "depict", "a view of",
  ],
  adjectives: ["small", "simple", "cute", "single", "big", "colorful", "plain", "nice", "classic", "minimal", "bright", "clean", "bold", "tiny", "lovely", "funny"],
  suffixes: [
    "icon", "symbol", "sticker", "clip art", "graphic", "picture", "image", "drawing", "illustration", "logo", "badge", "cartoon", "design", "art",
    ", flat design", ", vector art", "on a white background", ", high quality", ", centered", ", isolated", ", digital art", ", white background",
    "!", ".", "please", "for my app", "for a website", "in color",
  ],
  /** What may stand in for a caption's ", " separators. */
  joins: [" ", " - ", "; ", " | ", ": ", " / "],
} as const;

/** Default share of training captions that `rephrase` rewrites. */
export const CAPTION_WRAP_SHARE = 0.5;

/** Default share of reworded captions that `CaptionNoise` then disturbs. */
export const CAPTION_NOISE_SHARE = 0.5;

/**
 * General words that name no emoji, for `CaptionNoise` to drop into captions: a prompt is full of
 * words the small text encoder never met in training (typed by people, not drawn from
 * CAPTION_WORDS), and it must learn that a stray word does not change the subject. Deliberately
 * not in the BPE vocabulary's sources: like a user's unseen word, each splits into sub-word pieces.
 * Words that occur in the folder's captions are removed when the noise is built, so no filler
 * names an emoji of that folder.
 */
export const FILLER_WORDS = [
  "very", "really", "quite", "just", "also", "maybe", "perhaps", "again", "here", "there", "now", "today", "kind", "sort",
  "type", "version", "variant", "sample", "example", "thing", "item", "stuff", "random", "good", "great", "awesome", "beautiful",
  "pretty", "neat", "fancy", "modern", "retro", "vintage", "official", "standard", "default", "typical", "famous", "popular",
  "common", "usual", "basic", "detailed", "glossy", "shiny", "smooth", "soft", "sharp", "crisp", "vivid", "pastel", "warm",
  "original", "hd", "4k", "resolution", "made", "using", "about", "like", "any", "another", "such", "this", "that", "these",
  "which", "what", "how", "do", "can", "could", "would", "should", "wanted", "looking", "find", "get", "look", "use", "try",
  "put", "send", "share", "post", "message", "chat", "web", "page", "display", "pack", "collection", "series", "theme",
  "font", "unicode", "character", "glyph", "label", "tag", "asset", "resource", "file", "png", "svg", "pixel", "pixels",
  "64px", "transparent", "foreground", "border", "outline", "shadow", "colour", "colours", "colored", "shade", "hue",
  "nicely", "quickly", "exactly", "mostly", "slightly", "somewhat", "rather", "fairly", "super", "extra", "ultra", "mini",
  "indeed", "yes", "sure", "thanks", "you", "we", "our", "your", "it", "is", "are", "was", "be", "or", "but", "so", "then",
  "too", "well", "only", "even", "ever", "always", "usually", "literally", "basically", "clearly", "nearly", "almost",
  "around", "over", "into", "within", "without", "across", "through", "during", "before", "after", "while", "because",
  "both", "each", "every", "many", "much", "more", "most", "few", "several", "various", "different", "same", "similar",
  "proper", "correct", "real", "actual", "weird", "strange", "unusual", "special", "unique", "rare", "ordinary", "generic",
  "abstract", "stylized", "iconic", "graphical", "visual", "online", "desktop", "platform", "emojis", "icons", "stickers",
  "quick", "fast", "slow", "perfect", "ideal", "typed", "selected", "chosen", "preferred", "favourite",
  "favorite", "usable", "wonderful", "adorable", "elegant", "gorgeous", "charming", "lively", "sleek", "polished",
];

/** What `CaptionNoise` scatters between words. */
const NOISE_MARKS = [",", ".", ";", ":", "!", "?", "-", "*", "#", "~", "\"", "'", "&", "+", "...", "/"];
const SYLLABLE_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "st", "tr", "ch", "sh", "qu"];
const SYLLABLE_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou", "y"];

/**
 * A rewording of `caption` from CAPTION_WORDS: a prefix (60%), an adjective before the subject
 * (30%), a suffix (50%), its ", " separators replaced (25%); always at least one change.
 */
export function rephrase(caption: string, rng: Rng): string {
  let c = caption;
  const changes = () => c !== caption;
  if (rng.next() < 0.25) c = c.split(", ").join(rng.pick(CAPTION_WORDS.joins));
  if (rng.next() < 0.3) c = `${rng.pick(CAPTION_WORDS.adjectives)} ${c}`;
  if (rng.next() < 0.6) {
    const p = rng.pick(CAPTION_WORDS.prefixes);
    // a prefix that ends in a determiner ("an", "my") replaces the caption's leading article: no "an a tulip"
    c = `${p} ${/(^| )(a|an|the|one|some|my)$/.test(p) ? c.replace(/^(a|an|the) /, "") : c}`;
  }
  if (rng.next() < 0.5 || !changes()) {
    const s = rng.pick(CAPTION_WORDS.suffixes);
    c = /^[,.!]/.test(s) ? `${c}${s}` : `${c} ${s}`;
  }
  return c;
}

/**
 * Disturbances of a caption that leave its subject alone, one to three of: a filler word
 * (FILLER_WORDS less the folder's caption words) or a made-up word at a random word boundary,
 * a punctuation mark, the caption's last ", part" set in brackets, a ", part" after the first
 * left out. The text encoder trained with them keeps its embedding on the named emoji when a
 * prompt holds words and marks it never saw.
 */
export class CaptionNoise {
  private readonly fillers: readonly string[];
  constructor(captions: readonly (readonly string[])[]) {
    const seen = new Set<string>();
    for (const list of captions) for (const c of list) for (const w of captionWords(c)) seen.add(w);
    this.fillers = [...new Set(FILLER_WORDS)].filter((w) => !seen.has(w));
  }

  /** The filler words left after removing the folder's caption words. */
  get fillerCount(): number {
    return this.fillers.length;
  }

  apply(caption: string, rng: Rng): string {
    let c = caption;
    const n = 1 + rng.int(3);
    for (let k = 0; k < n; k++) {
      const op = rng.next();
      if (op < 0.45) c = insertWord(c, this.fillers.length > 0 ? rng.pick(this.fillers) : madeUpWord(rng), rng);
      else if (op < 0.6) c = insertWord(c, madeUpWord(rng), rng);
      else if (op < 0.75) c = insertWord(c, rng.pick(NOISE_MARKS), rng);
      else if (op < 0.88) c = bracketLastPart(c);
      else c = dropPart(c, rng);
    }
    return c;
  }
}

/** `word` put before the first word (30%), after the last (30%) or between two words. */
function insertWord(c: string, word: string, rng: Rng): string {
  const words = c.split(" ");
  const r = rng.next();
  const at = r < 0.3 ? 0 : r < 0.6 ? words.length : 1 + rng.int(Math.max(1, words.length - 1));
  words.splice(at, 0, word);
  return words.join(" ");
}

/** One to three syllables, like a word the tokenizer has never seen ("strouvi", "zak"). */
function madeUpWord(rng: Rng): string {
  let w = "";
  for (let k = 1 + rng.int(3); k > 0; k--) w += rng.pick(SYLLABLE_ONSETS) + rng.pick(SYLLABLE_VOWELS);
  return rng.next() < 0.5 ? w + rng.pick(["n", "r", "k", "s", "t", "x"]) : w;
}

/** "red apple, noto" → "red apple (noto)"; a caption without ", " is bracketed after its first word. */
function bracketLastPart(c: string): string {
  const i = c.lastIndexOf(", ");
  if (i > 0) return `${c.slice(0, i)} (${c.slice(i + 2)})`;
  const sp = c.indexOf(" ");
  return sp > 0 ? `${c.slice(0, sp)} (${c.slice(sp + 1)})` : `(${c})`;
}

/** A ", part" other than the first left out; the caption as it was if it has one part. */
function dropPart(c: string, rng: Rng): string {
  const parts = c.split(", ");
  if (parts.length < 2) return c;
  parts.splice(1 + rng.int(parts.length - 1), 1);
  return parts.join(", ");
}

/** Most images whose captions may hold a word for it to count as naming something (`CaptionDistractors`). */
export const DISTRACTOR_MAX_SHARE = 0.03;

/**
 * Words that name other things of the folder, for a caption to carry as a stray: a prompt's
 * modifier is often a word the folder uses for something else ("smiley-style" of a hand,
 * "a cat-shaped cloud"), and a model that has only ever seen a caption's words name its own image
 * draws whatever any word names. The words are the folder's own, less those in the captions of more
 * than DISTRACTOR_MAX_SHARE of its images (style words, categories, skin tones: words that set
 * how an image looks, which a stray must not contradict) and those under three letters.
 * In the default model's U-Net stage a quarter of captions so cost 10 points on both prompt sets;
 * in its CLIP stage they kept the embedding on the subject of more held-out phrasings (README).
 */
export class CaptionDistractors {
  private readonly words: readonly string[];
  constructor(captions: readonly (readonly string[])[]) {
    const images = new Map<string, number>();
    for (const list of captions) {
      for (const w of new Set(list.flatMap(captionWords))) images.set(w, (images.get(w) ?? 0) + 1);
    }
    const cap = DISTRACTOR_MAX_SHARE * captions.length;
    this.words = [...images].filter(([w, n]) => n <= cap && w.length >= 3).map(([w]) => w).sort();
  }

  get count(): number {
    return this.words.length;
  }

  /** `caption` with one word it does not hold put before it (45%), after it (35%) or after one of its ", " parts. */
  apply(caption: string, rng: Rng): string {
    if (this.words.length === 0) return caption;
    const own = new Set(captionWords(caption));
    let w = rng.pick(this.words);
    for (let t = 0; t < 5 && own.has(w); t++) w = rng.pick(this.words);
    if (own.has(w)) return caption;
    const r = rng.next();
    if (r < 0.45) return `${w} ${caption}`;
    const parts = caption.split(", ");
    if (r < 0.8 || parts.length < 2) return `${caption} ${w}`;
    const at = 1 + rng.int(parts.length - 1);
    parts[at - 1] = `${parts[at - 1] ?? ""} ${w}`;
    return parts.join(", ");
  }
}

/** The lower-case words of a caption (letters and digits). */
function captionWords(c: string): string[] {
  return c.toLowerCase().split(/[^a-z0-9]+/).filter((w) => w !== "");
}

/** How `randomCaption` may change the caption it draws: each share 0 leaves that step out (and draws nothing for it). */
export interface CaptionAugment {
  /** Share of captions reworded by `rephrase`. */
  readonly wrap?: number;
  readonly noise?: CaptionNoise;
  /** Share of reworded captions then disturbed by `noise`. */
  readonly noiseShare?: number;
  readonly distractors?: CaptionDistractors;
  /** Share of captions (reworded or not) given a stray word by `distractors`. */
  readonly distractShare?: number;
}

/**
 * One of the image's captions, chosen at random; with probability `wrap` reworded by `rephrase`,
 * a reworded caption then disturbed by `noise` with probability `noiseShare`, and any caption given
 * a stray word of the folder by `distractors` with probability `distractShare`.
 */
export function randomCaption(d: ImageCaptionData, index: number, rng: Rng, a: CaptionAugment = {}): string {
  const caption = rng.pick(d.captions[index] ?? [""]) ?? ""; // an empty caption list draws ""
  if (caption === "") return caption;
  let c = caption;
  if ((a.wrap ?? 0) > 0 && rng.next() < (a.wrap ?? 0)) {
    c = rephrase(caption, rng);
    if (a.noise && (a.noiseShare ?? 0) > 0 && rng.next() < (a.noiseShare ?? 0)) c = a.noise.apply(c, rng);
  }
  if (a.distractors && (a.distractShare ?? 0) > 0 && rng.next() < (a.distractShare ?? 0)) c = a.distractors.apply(c, rng);
  return c;
}

/** RGB bytes (HWC) of image `i` of a [N, 3, S, S] tensor in [−1, 1]. */
export function tensorImageRgb(data: Float32Array, size: number, i: number): Uint8Array {
  const plane = size * size;
  const out = new Uint8Array(plane * 3);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const v = ((data[(i * 3 + c) * plane + p] ?? 0) + 1) * 127.5;
      out[p * 3 + c] = Math.round(Math.min(255, Math.max(0, v)));
    }
  }
  return out;
}

/** RGB bytes (HWC) of dataset image `i`. */
export function datasetRgb(d: ImageCaptionData, i: number): Uint8Array {
  const n = d.size * d.size * 3;
  return d.rgb.slice(i * n, (i + 1) * n);
}

/** A PNG grid of equal-sized RGB tiles, `cols` per row, with a 2-pixel grey gutter. */
export async function gridPng(tiles: readonly Uint8Array[], size: number, cols: number): Promise<Uint8Array> {
  const gap = 2;
  const rows = Math.ceil(tiles.length / cols);
  const w = cols * size + (cols + 1) * gap;
  const h = rows * size + (rows + 1) * gap;
  const out = new Uint8Array(w * h * 3).fill(128);
  tiles.forEach((tile, k) => {
    const x0 = gap + (k % cols) * (size + gap);
    const y0 = gap + Math.floor(k / cols) * (size + gap);
    for (let y = 0; y < size; y++) out.set(tile.subarray(y * size * 3, (y + 1) * size * 3), ((y0 + y) * w + x0) * 3);
  });
  return encodePng(out, w, h);
}
