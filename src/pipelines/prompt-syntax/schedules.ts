/**
 * A1111 prompt editing `[a:b:when]` and alternation `[a|b]`: which text to use at each step.
 * Behaviour of `get_learned_conditioning_prompt_schedules` in AUTOMATIC1111
 * stable-diffusion-webui
 * [modules/prompt_parser.py @ 0674fabd](https://github.com/AUTOMATIC1111/stable-diffusion-webui/blob/0674fabd0d82c69c02ff362762815c4536687b95/modules/prompt_parser.py).
 * A1111 parses with a lark Earley grammar; this is a hand-written parser for the same
 * language. Inside a bracket group the parse is unique; at the top level, where the grammar
 * also accepts stray `[ ] ( ) :`, a bracket that opens a complete group is read as that
 * group (lark's own choice there depends on Python's hash seed, e.g. for `[a:3]]`).
 */

import { InputError } from "../../errors.js";
import { PY_SPACE } from "./py-text.js";

/** `[untilStep, text]`: use `text` for sampling steps ≤ untilStep (counted from 1). */
export type ScheduledText = [untilStep: number, text: string];

type Prompt = readonly PromptNode[];
type PromptNode =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "emphasis"; readonly parts: readonly (string | Prompt)[] }
  | { readonly kind: "edit"; readonly before: Prompt | null; readonly after: Prompt; readonly when: string }
  | { readonly kind: "alternate"; readonly options: readonly Prompt[] };

interface Parsed<T> {
  readonly value: T;
  readonly end: number;
}

// The grammar's terminals: `plain` (anything but `\ [ ] ( ) : |`, or `\` + any char but a
// newline), WHITESPACE (Python's `\s+`) and lark's SIGNED_NUMBER, all matched greedily as
// lark's dynamic lexer does.
const PLAIN = /(?:[^\\[\]():|]|\\[^\n])+/uy;
const SPACE = new RegExp(`[${PY_SPACE}]+`, "uy");
const NUMBER = /[+-]?(?:[0-9]+[eE][+-]?[0-9]+|(?:[0-9]+\.(?:[0-9]+)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+)/y;

function matchAt(re: RegExp, text: string, at: number): string | undefined {
  re.lastIndex = at;
  return re.exec(text)?.[0];
}

// Recursive descent over one prompt string; groups are memoized by start position, so the
// top level's retries after a failed group stay linear.
class ScheduleParser {
  private readonly groups = new Map<number, Parsed<PromptNode> | null>();
  constructor(private readonly text: string) {}

  /** The whole prompt as top-level nodes, or null where the grammar rejects it. */
  parseTop(): Prompt | null {
    const nodes: PromptNode[] = [];
    const t = this.text;
    let i = 0;
    while (i < t.length) {
      const c = t[i] as string;
      const group = c === "[" || c === "(" ? this.group(i) : null;
      if (group !== null) {
        nodes.push(group.value);
        i = group.end;
        continue;
      }
      // Outside any group the grammar takes `[ ] ( ) :` as literal text.
      const run = "[]():".includes(c) ? c : matchAt(PLAIN, t, i);
      if (run === undefined) return null; // a `|` outside alternation, or a trailing `\`
      nodes.push({ kind: "text", text: run });
      i += run.length;
    }
    return nodes;
  }

  // prompt: (group | plain | WHITESPACE)*, stopping at the first thing that is none of them.
  private prompt(start: number): Parsed<Prompt> {
    const nodes: PromptNode[] = [];
    let i = start;
    for (;;) {
      const c = this.text[i];
      if (c === "[" || c === "(") {
        const group = this.group(i);
        if (group === null) break;
        nodes.push(group.value);
        i = group.end;
        continue;
      }
      const run = matchAt(PLAIN, this.text, i);
      if (run === undefined) break;
      nodes.push({ kind: "text", text: run });
      i += run.length;
    }
    return { value: nodes, end: i };
  }

  private group(start: number): Parsed<PromptNode> | null {
    let found = this.groups.get(start);
    if (found === undefined) {
      found = this.text[start] === "(" ? this.round(start) : this.square(start);
      this.groups.set(start, found);
    }
    return found;
  }

  // "(" prompt ")" | "(" prompt ":" prompt ")"
  private round(start: number): Parsed<PromptNode> | null {
    const first = this.prompt(start + 1);
    const parts: (string | Prompt)[] = ["(", first.value];
    let end = first.end;
    if (this.text[end] === ":") {
      const second = this.prompt(end + 1);
      parts.push(":", second.value);
      end = second.end;
    }
    if (this.text[end] !== ")") return null;
    parts.push(")");
    return { value: { kind: "emphasis", parts }, end: end + 1 };
  }

  // "[" prompt "]" | "[" prompt ("|" prompt)+ "]" | "[" [prompt ":"] prompt ":" [WS] NUMBER "]"
  private square(start: number): Parsed<PromptNode> | null {
    const first = this.prompt(start + 1);
    const next = this.text[first.end];
    if (next === "]") {
      return { value: { kind: "emphasis", parts: ["[", first.value, "]"] }, end: first.end + 1 };
    }
    if (next === "|") return this.alternate(first);
    if (next !== ":") return null;
    const short = this.when(first.end + 1);
    if (short !== null) return { value: { kind: "edit", before: null, after: first.value, when: short.value }, end: short.end };
    const second = this.prompt(first.end + 1);
    if (this.text[second.end] !== ":") return null;
    const long = this.when(second.end + 1);
    if (long === null) return null;
    return { value: { kind: "edit", before: first.value, after: second.value, when: long.value }, end: long.end };
  }

  private alternate(first: Parsed<Prompt>): Parsed<PromptNode> | null {
    const options = [first.value];
    let end = first.end;
    while (this.text[end] === "|") {
      const option = this.prompt(end + 1);
      options.push(option.value);
      end = option.end;
    }
    if (this.text[end] !== "]") return null;
    return { value: { kind: "alternate", options }, end: end + 1 };
  }

  // [WHITESPACE] NUMBER "]"
  private when(start: number): Parsed<string> | null {
    const at = start + (matchAt(SPACE, this.text, start)?.length ?? 0);
    const number = matchAt(NUMBER, this.text, at);
    if (number === undefined || this.text[at + number.length] !== "]") return null;
    return { value: number, end: at + number.length + 1 };
  }
}

// A1111's step of `[a:b:when]`: a fraction (< 1) of `steps`, truncated; at most `steps`.
function editStep(when: string, steps: number): number {
  let at = Number(when);
  if (at < 1) at *= steps;
  if (!Number.isFinite(at)) {
    throw new InputError(`prompt editing step ${when} is not finite (A1111 raises OverflowError here); use a step number or a fraction below 1`);
  }
  return Math.min(steps, Math.trunc(at)) + 0; // + 0 turns −0 into 0
}

// Every edit's step and, with an alternation anywhere, every step 1…steps; sorted, unique.
function collectSteps(nodes: Prompt, steps: number, into: Set<number>): void {
  for (const n of nodes) {
    if (n.kind === "edit") {
      into.add(editStep(n.when, steps));
      if (n.before !== null) collectSteps(n.before, steps, into);
      collectSteps(n.after, steps, into);
    } else if (n.kind === "alternate") {
      for (let s = 1; s <= steps; s++) into.add(s);
      for (const o of n.options) collectSteps(o, steps, into);
    } else if (n.kind === "emphasis") {
      for (const p of n.parts) if (typeof p !== "string") collectSteps(p, steps, into);
    }
  }
}

function textAt(nodes: Prompt, step: number, steps: number): string {
  let out = "";
  for (const n of nodes) out += nodeAt(n, step, steps);
  return out;
}

function nodeAt(n: PromptNode, step: number, steps: number): string {
  switch (n.kind) {
    case "text":
      return n.text;
    case "emphasis":
      return n.parts.map((p) => (typeof p === "string" ? p : textAt(p, step, steps))).join("");
    case "edit":
      if (step <= editStep(n.when, steps)) return n.before === null ? "" : textAt(n.before, step, steps);
      return textAt(n.after, step, steps);
    case "alternate": {
      const k = n.options.length;
      const first = (n.options[(((step - 1) % k) + k) % k] as Prompt)[0];
      // A1111 takes only the first element of the chosen option ("[(x) y|z]" gives "(x)"),
      // and an empty option makes it raise.
      if (first === undefined) {
        throw new InputError(`an empty alternative in "[…|…]" (A1111 raises "generator raised StopIteration" here); remove the extra "|"`);
      }
      return nodeAt(first, step, steps);
    }
  }
}

/** A1111's `get_learned_conditioning_prompt_schedules([prompt], steps)[0]`. */
export function promptSchedules(prompt: string, steps: number): ScheduledText[] {
  const tree = new ScheduleParser(prompt).parseTop();
  if (tree === null) return [[steps, prompt]];
  const at = new Set<number>([steps]);
  collectSteps(tree, steps, at);
  return [...at].sort((a, b) => a - b).map((s) => [s, textAt(tree, s, steps)]);
}
