/**
 * Captions for the emoji training set: from the `emoji-datasource-*` packages' emoji.json
 * (names, short names, category, subcategory, skin-tone variants) and the set's style word.
 * Pure: the package files are read and the images written by io/emoji-packages.ts.
 */

/** The two open-licensed sets the dataset is built from, with the word captions use for their style. */
export const EMOJI_SETS = [
  { pkg: "emoji-datasource-google", dir: "google", style: "noto", hasImage: "has_img_google" },
  { pkg: "emoji-datasource-twitter", dir: "twitter", style: "twemoji", hasImage: "has_img_twitter" },
] as const;

/** One emoji set. */
export type EmojiSet = (typeof EMOJI_SETS)[number];

/** The fields of an emoji.json entry the captions use. */
export interface EmojiEntry {
  readonly name?: string | null;
  readonly short_name?: string;
  readonly short_names?: readonly string[];
  readonly category?: string;
  readonly subcategory?: string;
  readonly image: string;
  readonly skin_variations?: Readonly<Record<string, { readonly image: string } & Readonly<Record<string, unknown>>>>;
  readonly [key: string]: unknown;
}

/** One image to write: its source PNG (in img/<set>/64/), the output name and its captions. */
export interface EmojiRecord {
  readonly source: string;
  readonly name: string;
  readonly captions: readonly string[];
  /** Relative draw weight in U-Net training (`weights.json`): an emoji's skin tones split one share. */
  readonly weight: number;
}

const TONES: Readonly<Record<string, string>> = {
  "1F3FB": "light",
  "1F3FC": "medium-light",
  "1F3FD": "medium",
  "1F3FE": "medium-dark",
  "1F3FF": "dark",
};

/** "1F3FB-1F3FD" → "light and medium"; one tone → its word. */
export function skinToneWords(key: string): string {
  const words = [...new Set(key.split("-").map((k) => TONES[k.toUpperCase()] ?? ""))].filter((w) => w !== "");
  return words.join(" and ");
}

/** Lower-case words of a name or short name ("thumbs_up", "man-heart-man" → "thumbs up", "man heart man"). */
export function words(s: string): string {
  return s.toLowerCase().replace(/[_-]+/g, " ").replace(/\s+/g, " ").trim();
}

/** The distinct names an entry goes by, most descriptive first. */
function namesOf(e: EmojiEntry): string[] {
  const all = [e.name ?? "", e.short_name ?? "", ...(e.short_names ?? [])].map(words).filter((n) => n !== "" && !/^[+-]?\d+$/.test(n));
  return [...new Set(all)];
}

/** Deterministic pick from a list by a string hash, so reruns write the same captions. */
function pick<T>(list: readonly T[], seed: string, salt: number): T {
  let h = 2166136261 ^ salt;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 16777619);
  return list[(h >>> 0) % list.length] as T;
}

/**
 * Several captions for one image (one per line in its .txt): names alone, with the style word,
 * in sentences, with the category and subcategory and the skin tone, so that free-text prompts
 * ("a red apple", "grinning cat face, twemoji") land near a caption the model saw.
 */
export function emojiCaptions(e: EmojiEntry, style: string, tone?: string): string[] {
  const names = namesOf(e);
  const main = names[0] ?? "emoji";
  const alt = names[1] ?? main;
  const sub = words(e.subcategory ?? "");
  const cat = (e.category ?? "").toLowerCase();
  const t = tone === undefined ? "" : ` with ${tone} skin tone`;
  const key = `${main}|${style}|${tone ?? ""}`;
  const templates = [
    (n: string) => `${n}${t}`,
    (n: string) => `${n}${t}, ${style}`,
    (n: string) => `a ${n} emoji${t}`,
    (n: string) => `${style} emoji of ${n}${t}`,
    (n: string) => `${n}${t}, ${style} style, ${sub}`,
    (n: string) => `an emoji of a ${n}${t} in ${style} style`,
    (n: string) => `${n}${t}, ${cat}, ${style}`,
    (n: string) => `${style} ${n}${t} icon`,
  ];
  const out = [
    `${main}${t}`,
    `${main}${t}, ${style}`,
    pick(templates, key, 1)(alt),
    pick(templates, key, 2)(main),
    `${alt}${t} emoji, ${sub}, ${cat}`,
    pick(templates, key, 3)(names[2] ?? main),
  ];
  return [...new Set(out)];
}

/** Every image of one set: each entry that has an image in the set, and each of its skin-tone variants. */
export function emojiRecords(entries: readonly EmojiEntry[], set: EmojiSet): EmojiRecord[] {
  const out: EmojiRecord[] = [];
  const stem = (img: string) => `${set.style}-${img.replace(/\.png$/i, "")}`;
  for (const e of entries) {
    const group: EmojiRecord[] = [];
    if (e[set.hasImage] === true) group.push({ source: e.image, name: stem(e.image), captions: emojiCaptions(e, set.style), weight: 1 });
    for (const [key, v] of Object.entries(e.skin_variations ?? {})) {
      if (v[set.hasImage] !== true) continue;
      group.push({ source: v.image, name: stem(v.image), captions: emojiCaptions(e, set.style, skinToneWords(key)), weight: 1 });
    }
    // An emoji and its skin tones share one emoji's share of the draws.
    out.push(...group.map((r) => ({ ...r, weight: 1 / group.length })));
  }
  return out;
}
