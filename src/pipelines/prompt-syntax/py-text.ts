/**
 * Python `re`/`float` semantics that A1111's prompt parser relies on and JavaScript spells
 * differently: Unicode `\s`, `\w`/`\b` and `\d`, and `float()` of Unicode digits.
 */

import { InputError } from "../../errors.js";

/**
 * The characters of Python's `\s` in a str pattern, as a character-class body. JS `\s`
 * differs: it has U+FEFF but lacks U+001C–U+001F and U+0085.
 */
export const PY_SPACE = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

// Python's `\w` is `str.isalnum()` or "_": letters and numbers of every script (JS `\w` is ASCII).
const PY_WORD = "\\p{L}\\p{N}_";

/** Regex source (for a `u` regex) of `word` between Python Unicode word boundaries, as `\bword\b`. */
export function pyWholeWord(word: string): string {
  return `(?<![${PY_WORD}])${word}(?![${PY_WORD}])`;
}

const DECIMAL = /\p{Nd}/u;

// Value 0–9 of a Unicode decimal digit: Unicode allocates each script's digits as a run 0…9.
function digitValue(ch: string): string {
  const cp = ch.codePointAt(0) ?? 0;
  let start = cp;
  while (DECIMAL.test(String.fromCodePoint(start - 1))) start--;
  return String((cp - start) % 10);
}

/**
 * Python's `float(s)` for the strings A1111's weight regexes capture (sign, digits, dots):
 * Unicode digits count as in Python; anything else that Python rejects throws InputError
 * carrying Python's ValueError message.
 */
export function pyFloat(s: string): number {
  const ascii = s.replace(/\p{Nd}/gu, digitValue);
  if (!/^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(ascii)) {
    throw new InputError(`could not convert string to float: '${s}' (A1111 raises ValueError here); write the weight as a number such as 1.2`);
  }
  return Number(ascii);
}
