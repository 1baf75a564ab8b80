/**
 * A1111's attention syntax: `(x)` ×1.1, `[x]` ÷1.1, `(x:w)` ×w, `\(` escapes, `BREAK`.
 * Behaviour of `parse_prompt_attention` in AUTOMATIC1111 stable-diffusion-webui
 * [modules/prompt_parser.py @ 0674fabd](https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0674fabd0d82c69c02ff362762815c4536687b95/modules/prompt_parser.py),
 * including its handling of unbalanced brackets and float64 weight products.
 */

import { PY_SPACE, pyFloat, pyWholeWord } from "./py-text.js";

/** A run of prompt text and its attention weight; `["BREAK", -1]` marks a chunk break. */
export type WeightedText = [text: string, weight: number];

const ROUND = 1.1;
const SQUARE = 1 / 1.1;
// `:w)` closes a round bracket with weight w; A1111's `\d` is Unicode, its `.` repeats freely.
const WEIGHT_CLOSE = /:([+-]?[.\p{Nd}]+)\)/uy;
const TEXT_RUN = /[^\\()[\]:]+/uy;
const BREAK = new RegExp(`[${PY_SPACE}]*${pyWholeWord("BREAK")}[${PY_SPACE}]*`, "u");
const ESCAPABLE = "()[]\\";

/** A1111's `parse_prompt_attention`: prompt text → runs of equal weight, in order. */
export function parsePromptAttention(text: string): WeightedText[] {
  const res: WeightedText[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiplyFrom = (start: number, by: number): void => {
    for (let p = start; p < res.length; p++) (res[p] as WeightedText)[1] *= by;
  };
  const pushText = (t: string): void => {
    t.split(BREAK).forEach((part, i) => {
      if (i > 0) res.push(["BREAK", -1]);
      res.push([part, 1.0]);
    });
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === "\\") {
      // `\(` `\)` `\[` `\]` `\\` give the character; a lone backslash gives nothing.
      const next = text[i + 1];
      const escaped = next !== undefined && ESCAPABLE.includes(next);
      res.push([escaped ? next : "", 1.0]);
      i += escaped ? 2 : 1;
    } else if (c === "(") {
      round.push(res.length);
      i++;
    } else if (c === "[") {
      square.push(res.length);
      i++;
    } else if (c === ":") {
      WEIGHT_CLOSE.lastIndex = i;
      const m = WEIGHT_CLOSE.exec(text);
      const open = round.at(-1);
      if (m !== null && open !== undefined) {
        round.pop();
        multiplyFrom(open, pyFloat(m[1] as string));
      } else pushText(m?.[0] ?? ":");
      i += m?.[0].length ?? 1;
    } else if (c === ")" || c === "]") {
      const open = (c === ")" ? round : square).pop();
      if (open !== undefined) multiplyFrom(open, c === ")" ? ROUND : SQUARE);
      else pushText(c);
      i++;
    } else {
      TEXT_RUN.lastIndex = i;
      const run = (TEXT_RUN.exec(text) as RegExpExecArray)[0];
      pushText(run);
      i += run.length;
    }
  }
  // Brackets left open apply to the end: all round ones first, then all square ones.
  for (const p of round) multiplyFrom(p, ROUND);
  for (const p of square) multiplyFrom(p, SQUARE);
  if (res.length === 0) res.push(["", 1.0]);
  return mergeEqualWeights(res);
}

// Joins neighbours whose weights are exactly equal (BREAK's −1 included, as in A1111).
function mergeEqualWeights(res: WeightedText[]): WeightedText[] {
  const out: WeightedText[] = [];
  for (const [t, w] of res) {
    const last = out.at(-1);
    if (last !== undefined && last[1] === w) last[0] += t;
    else out.push([t, w]);
  }
  return out;
}
