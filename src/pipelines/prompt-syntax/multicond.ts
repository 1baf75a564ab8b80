/**
 * Composable diffusion: `a cat :1.2 AND a dog` → sub-prompts with weights. Behaviour of
 * `get_multicond_prompt_list` in AUTOMATIC1111 stable-diffusion-webui
 * [modules/prompt_parser.py @ 0674fabd](https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0674fabd0d82c69c02ff362762815c4536687b95/modules/prompt_parser.py).
 */

import { PY_SPACE, pyFloat, pyWholeWord } from "./py-text.js";

const AND = new RegExp(pyWholeWord("AND"), "u");
// Text (lazily, leading space kept; `.` stops at newlines as in Python), then an optional
// `:weight`, then trailing space. A sub-prompt it does not match is kept whole, weight 1.
const SUBPROMPT = new RegExp(
  `^([${PY_SPACE}]*[^\\n]*?)(?:[${PY_SPACE}]*:[${PY_SPACE}]*([-+]?(?:\\p{Nd}+\\.?|\\p{Nd}*\\.\\p{Nd}+)))?[${PY_SPACE}]*$`,
  "u",
);

/** A1111's sub-prompts of one prompt: split at the word AND, each `[text, weight]`. */
export function multicondSubprompts(prompt: string): [text: string, weight: number][] {
  return prompt.split(AND).map((sub) => {
    const m = SUBPROMPT.exec(sub);
    if (m === null) return [sub, 1.0];
    const weight = m[2];
    return [m[1] as string, weight === undefined ? 1.0 : pyFloat(weight)];
  });
}
