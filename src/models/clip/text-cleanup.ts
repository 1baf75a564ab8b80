/**
 * Text clean-up that runs before CLIP's BPE, as transformers' slow `CLIPTokenizer` does it
 * (transformers e770f031, models/clip/tokenization_clip.py `_tokenize`):
 *
 * - `"ftfy"` (ftfy importable, what the goldens' SD pipelines used):
 *   `whitespace_clean(ftfy.fix_text(text)).lower()`.
 * - `"basic"` (ftfy missing, the usual diffusers install): transformers' `BasicTokenizer`
 *   with `strip_accents=False, do_split_on_punc=False`, tokens joined by one space.
 *
 * The ftfy part is a subset of ftfy 6.1.1 `fix_text` with its default config
 * (https://github.com/rspeer/python-ftfy/blob/v6.1.1/ftfy/__init__.py): the text is fixed
 * line by line, each line repeatedly until it stops changing, with these steps in ftfy's order:
 * `unescape_html` (named entities from a common subset, see `NAMED_ENTITIES`, plus numeric
 * references; skipped from the first line holding a "<" on, as ftfy's "auto" mode does),
 * `fix_c1_controls`, `fix_latin_ligatures`, `fix_character_width`, `uncurl_quotes`,
 * `fix_line_breaks`, `fix_surrogates`, `remove_terminal_escapes`, `remove_control_chars`, NFC.
 * Not implemented: `fix_encoding` (mojibake detection and re-decoding, e.g. "cafÃ©" → "café"),
 * which needs ftfy's large heuristic tables; such text is tokenized as it stands.
 */

/** Which clean-up runs before BPE: ftfy's `fix_text` subset, or transformers' BasicTokenizer. */
export type TextCleanup = "ftfy" | "basic";

/** Cleans `text` the way the chosen transformers `CLIPTokenizer` path does, lower-cased. */
export function cleanText(text: string, cleanup: TextCleanup): string {
  return cleanup === "ftfy" ? whitespaceClean(fixText(text)).toLowerCase() : basicClean(text);
}

// Python's `\s` / str.isspace() set (not JS `\s`: that adds U+FEFF and lacks U+1C–1F, U+85).
const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_SPACE_RUN = new RegExp(`[${PY_SPACE}]+`, "g");

/** CLIP's `whitespace_clean`: runs of whitespace become one space; ends are trimmed. */
export function whitespaceClean(text: string): string {
  const s = text.replace(PY_SPACE_RUN, " ");
  return s.slice(s.startsWith(" ") ? 1 : 0, s.endsWith(" ") ? -1 : undefined);
}

// Printable ASCII without "&", plus tab and newline: every ftfy step leaves it unchanged.
const FTFY_NOOP = /^[\t\n\x20-\x25\x27-\x7e]*$/;

/** The implemented subset of ftfy 6.1.1 `fix_text` (see the file comment). */
export function fixText(text: string): string {
  if (FTFY_NOOP.test(text)) return text;
  let out = "";
  let unescape = true;
  for (let pos = 0; pos < text.length; ) {
    const nl = text.indexOf("\n", pos);
    const end = nl < 0 ? text.length : nl + 1;
    const segment = text.slice(pos, end);
    // ftfy's "auto" HTML mode: once a line holds "<", it stays off for the rest of the text.
    if (segment.includes("<")) unescape = false;
    out += fixSegment(segment, unescape);
    pos = end;
  }
  return out;
}

function fixSegment(segment: string, unescape: boolean): string {
  let text = segment;
  for (;;) {
    const before = text;
    if (unescape) text = text.replace(HTML_ENTITY, unescapeEntity);
    text = text
      .replace(C1_CONTROL, (c) => WINDOWS_1252_C1[c.charCodeAt(0) - 0x80] ?? c)
      .replace(LIGATURE, (c) => LIGATURES[c] ?? c)
      .replace(WIDE_OR_HALF, (c) => (c === "\u3000" ? " " : c.normalize("NFKC")))
      .replace(SINGLE_QUOTE, "'")
      .replace(DOUBLE_QUOTE, '"')
      .replace(/\r\n|[\r\u2028\u2029\x85]/g, "\n")
      .replace(LONE_SURROGATE, "\ufffd")
      .replace(TERMINAL_ESCAPE, "")
      .replace(CONTROL_CHAR, "")
      .normalize("NFC");
    if (text === before) return text;
  }
}

const C1_CONTROL = /[\x80-\x9f]/g;
// Windows-1252 for bytes 0x80–0x9F; ftfy's "sloppy" codec keeps the 5 undefined ones as is.
const WINDOWS_1252_C1 = [..."€\x81‚ƒ„…†‡ˆ‰Š‹Œ\x8dŽ\x8f\x90‘’“”•–—˜™š›œ\x9džŸ"];
const LIGATURES: Readonly<Record<string, string>> = {
  "Ĳ": "IJ", "ĳ": "ij", "ŉ": "ʼn", "Ǳ": "DZ", "ǲ": "Dz", "ǳ": "dz", "Ǆ": "DŽ", "ǅ": "Dž",
  "ǆ": "dž", "Ǉ": "LJ", "ǈ": "Lj", "ǉ": "lj", "Ǌ": "NJ", "ǋ": "Nj", "ǌ": "nj", "ﬀ": "ff",
  "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "ſt", "ﬆ": "st",
};
const LIGATURE = new RegExp(`[${Object.keys(LIGATURES).join("")}]`, "g");
// Fullwidth/halfwidth forms go to their NFKC form (a no-op for those without one).
const WIDE_OR_HALF = /[\u3000\uff01-\uffef]/g;
const SINGLE_QUOTE = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTE = /[\u201c-\u201f]/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const TERMINAL_ESCAPE = /\x1b\[(?:\p{Nd}|;)*[a-zA-Z]/gu;
const CONTROL_CHAR = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;

const HTML_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;

function unescapeEntity(entity: string): string {
  const named = NAMED_ENTITIES.get(entity);
  if (named !== undefined) return named;
  const m = /^&#(?:([0-9]+)|[xX]([0-9a-fA-F]+));$/.exec(entity);
  if (m === null) return entity;
  return charRef(m[1] !== undefined ? parseInt(m[1], 10) : parseInt(m[2] ?? "", 16));
}

// Python's html.unescape rules for numeric references (html/__init__.py `_replace_charref`).
function charRef(n: number): string {
  if (n === 0) return "\ufffd";
  if (n === 0x0d) return "\r";
  if (n >= 0x80 && n <= 0x9f) return WINDOWS_1252_C1[n - 0x80] ?? "";
  if ((n >= 0xd800 && n <= 0xdfff) || n > 0x10ffff) return "\ufffd";
  const invalid = (n >= 0x01 && n <= 0x08) || n === 0x0b || (n >= 0x0e && n <= 0x1f) || n === 0x7f ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
  return invalid ? "" : String.fromCodePoint(n);
}

// A subset of the HTML5 entities ftfy decodes: the HTML 4 Latin-1, Greek and common symbol
// entities. As ftfy does, an all-lower-case name is also decoded in upper case ("&EACUTE;" → "É").
const LATIN1_NAMES =
  "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr " +
  "deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest " +
  "Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml " +
  "ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig " +
  "agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml " +
  "eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml";
const GREEK_UPPER = "Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho - " +
  "Sigma Tau Upsilon Phi Chi Psi Omega";
const OTHER_ENTITIES: Readonly<Record<string, number>> = {
  amp: 0x26, lt: 0x3c, gt: 0x3e, quot: 0x22, apos: 0x27, OElig: 0x152, oelig: 0x153, Scaron: 0x160,
  scaron: 0x161, Yuml: 0x178, fnof: 0x192, circ: 0x2c6, tilde: 0x2dc, ensp: 0x2002, emsp: 0x2003,
  thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f, hyphen: 0x2010, ndash: 0x2013,
  mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a, ldquo: 0x201c, rdquo: 0x201d,
  bdquo: 0x201e, dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026, permil: 0x2030,
  prime: 0x2032, Prime: 0x2033, lsaquo: 0x2039, rsaquo: 0x203a, oline: 0x203e, frasl: 0x2044,
  euro: 0x20ac, trade: 0x2122, larr: 0x2190, uarr: 0x2191, rarr: 0x2192, darr: 0x2193, harr: 0x2194,
  minus: 0x2212, infin: 0x221e, ne: 0x2260, le: 0x2264, ge: 0x2265, spades: 0x2660, clubs: 0x2663,
  hearts: 0x2665, diams: 0x2666, check: 0x2713, checkmark: 0x2713,
};

function buildNamedEntities(): ReadonlyMap<string, string> {
  const byName = new Map<string, string>();
  LATIN1_NAMES.split(" ").forEach((name, i) => byName.set(name, String.fromCharCode(0xa0 + i)));
  GREEK_UPPER.split(" ").forEach((name, i) => {
    if (name === "-") return;
    byName.set(name, String.fromCharCode(0x391 + i));
    byName.set(name.toLowerCase(), String.fromCharCode(0x3b1 + i));
  });
  byName.set("sigmaf", "\u03c2");
  for (const [name, cp] of Object.entries(OTHER_ENTITIES)) byName.set(name, String.fromCodePoint(cp));
  const out = new Map<string, string>();
  for (const [name, ch] of byName) out.set(`&${name};`, ch);
  for (const [name, ch] of byName) {
    const upper = `&${name.toUpperCase()};`;
    if (name === name.toLowerCase() && !out.has(upper)) out.set(upper, ch.toUpperCase());
  }
  return out;
}

const NAMED_ENTITIES = buildNamedEntities();

// transformers BasicTokenizer (models/bert/tokenization_bert.py): drops NUL, U+FFFD and
// category C* characters except \t\n\r, maps whitespace (incl. Zs) to " ", spaces out CJK
// ideographs, NFC, splits on whitespace, lower-cases each token.
const BASIC_SPACE = /^[ \t\n\r\p{Zs}]$/u;
const BASIC_CONTROL = /^\p{C}$/u;
const PY_SPLIT = new RegExp(`[${PY_SPACE}]+`);

/** transformers' BasicTokenizer clean-up as CLIPTokenizer uses it without ftfy. */
export function basicClean(text: string): string {
  let s = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0) ?? 0;
    if (BASIC_SPACE.test(ch)) s += " ";
    else if (cp === 0 || cp === 0xfffd || BASIC_CONTROL.test(ch)) continue;
    else s += isCjkIdeograph(cp) ? ` ${ch} ` : ch;
  }
  return s
    .normalize("NFC")
    .split(PY_SPLIT)
    .filter((t) => t !== "")
    .map((t) => t.toLowerCase())
    .join(" ");
}

function isCjkIdeograph(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}
