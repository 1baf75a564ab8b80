/**
 * Prompt → U-Net conditioning for every model call. "plain" encodes the text as diffusers does
 * (77 tokens, truncated). "a1111" follows the web UI: `AND` sub-prompts with weights
 * (composable diffusion, Liu et al. 2022), prompt editing `[a:b:N]` and alternation `[a|b]`
 * per step, `(x:1.2)` emphasis, and prompts longer than 75 tokens as consecutive 77-token
 * chunks (the context grows to 77·k; the negative and positive are padded to the same length).
 */
import { InputError } from "../errors.js";
import { extractLoraTags } from "./lora-tags.js";
import { applyEmphasis, multicondSubprompts, parsePromptAttention, promptSchedules, tokenizeWeighted } from "./prompt-syntax/index.js";
import { repeatRows } from "./prompt.js";
import type { Components, Tensor } from "./types.js";

/** How prompt text is read. */
export type PromptSyntax = "plain" | "a1111";

/** Context rows [uncond × B, cond₁ × B, …, cond_k × B] (uncond only when guided) and the weight of each cond. */
export interface StepConditioning {
  readonly context: Tensor;
  /** The same rows' pooled text states [rows, D], where the U-Net reads them (a class embedding). */
  readonly pooled?: Tensor;
  readonly weights: readonly number[];
}

/** Conditioning of model call `i` of `calls`. */
export type Conditioning = (i: number, calls: number) => Promise<StepConditioning>;

/** Checks a promptSyntax value. */
export function checkSyntax(v: unknown): PromptSyntax {
  if (v === undefined || v === "plain" || v === "a1111") return v ?? "plain";
  throw new InputError(`promptSyntax must be 'plain' or 'a1111' (got ${JSON.stringify(v)})`);
}

/** One text's context [1, L, D] and pooled state [1, D]. */
interface Encoded {
  readonly context: Tensor;
  readonly pooled: Tensor;
}

/**
 * The embeddings of one text: plain → one 77-token row; a1111 → its chunks with emphasis, as one
 * [1, 77·k, D] row. The pooled state is the first chunk's, without emphasis (as the web UI takes it).
 */
async function encodeText(c: Components, text: string, syntax: PromptSyntax): Promise<Encoded> {
  if (syntax === "plain") return c.textEncoder.encodeWithPooled([c.tokenizer.encode(text)]);
  const { chunks } = tokenizeWeighted(c.tokenizer, parsePromptAttention(text));
  const { context: z, pooled: all } = await c.textEncoder.encodeWithPooled(chunks.map((ch) => ch.ids));
  const [k, t, d] = z.shape as [number, number, number];
  const weights = chunks.map((ch) => ch.weights);
  const data = weights.every((w) => w.every((x) => x === 1)) ? z.data : applyEmphasis(z.data, [k, t, d], weights);
  const p = all.shape[1] ?? 0;
  return { context: { data, shape: [1, k * t, d] }, pooled: { data: all.data.slice(0, p), shape: [1, p] } };
}

/** Pads [1, L, D] rows to the longest L by appending chunks of the empty prompt's encoding (as A1111 does). */
async function padToSame(c: Components, rows: Tensor[], syntax: PromptSyntax): Promise<Tensor[]> {
  const longest = Math.max(...rows.map((r) => r.shape[1] ?? 0));
  if (rows.every((r) => r.shape[1] === longest)) return rows;
  const empty = (await encodeText(c, "", syntax)).context; // [1, 77, D]
  return rows.map((r) => {
    const [, l, d] = r.shape as [number, number, number];
    if (l === longest) return r;
    const out = new Float32Array(longest * d);
    out.set(r.data, 0);
    for (let at = l; at < longest; at += 77) out.set(empty.data.subarray(0, Math.min(77, longest - at) * d), at * d);
    return { data: out, shape: [1, longest, d] };
  });
}

/** Stacks [1, …] rows, each repeated `batch` times, into [rows·batch, …]. */
function stack(rows: Tensor[], batch: number): Tensor {
  const [, ...rest] = rows[0]?.shape as [number, ...number[]];
  const per = rest.reduce((a, b) => a * b, 1) * batch;
  const out = new Float32Array(per * rows.length);
  rows.forEach((r, i) => out.set(repeatRows(r, batch).data, i * per));
  return { data: out, shape: [rows.length * batch, ...rest] };
}

/** The conditioning of a generation: constant for plain prompts, per step for A1111 prompt editing. */
export async function buildConditioning(
  c: Components,
  prompt: string,
  negative: string,
  o: { readonly batch: number; readonly guided: boolean; readonly steps: number; readonly syntax: PromptSyntax },
): Promise<Conditioning> {
  const [pos, neg] = [extractLoraTags(prompt).prompt, extractLoraTags(negative).prompt];
  const cache = new Map<string, Promise<Encoded>>();
  const enc = (t: string) => {
    let e = cache.get(t);
    if (e === undefined) cache.set(t, (e = encodeText(c, t, o.syntax)));
    return e;
  };
  const subs = o.syntax === "a1111" ? multicondSubprompts(pos) : [[pos, 1] as [string, number]];
  const schedules = subs.map(([text]) => (o.syntax === "a1111" ? promptSchedules(text, o.steps) : [[o.steps, text] as [number, string]]));
  const negSchedule = o.syntax === "a1111" ? promptSchedules(neg, o.steps) : [[o.steps, neg] as [number, string]];
  const weights = subs.map(([, w]) => w);
  const textAt = (sched: readonly (readonly [number, string])[], step: number) => (sched.find(([until]) => step <= until) ?? sched[sched.length - 1])?.[1] ?? "";
  const built = new Map<string, Promise<StepConditioning>>();
  return (i, calls) => {
    // Sampling step (1-based) of model call i; second-order samplers make two calls per step.
    const step = Math.min(o.steps, Math.floor((i * o.steps) / calls) + 1);
    const texts = [...(o.guided ? [textAt(negSchedule, step)] : []), ...schedules.map((s) => textAt(s, step))];
    const key = texts.join("\u0000");
    let r = built.get(key);
    if (r === undefined) {
      r = (async () => {
        const rows = await Promise.all(texts.map(enc));
        const context = stack(await padToSame(c, rows.map((e) => e.context), o.syntax), o.batch);
        return c.unet.needsPooled ? { context, pooled: stack(rows.map((e) => e.pooled), o.batch), weights } : { context, weights };
      })();
      built.set(key, r);
    }
    return r;
  };
}
