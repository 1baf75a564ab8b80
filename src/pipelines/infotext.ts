/**
 * A1111 "infotext": the generation parameters as text, stored in a PNG `parameters` chunk.
 *   <prompt>
 *   Negative prompt: <negative prompt>
 *   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: v1-5
 */

/** Parameters recorded in an infotext; `extra` holds any further "Key: value" pairs in order. */
export interface Infotext {
  prompt: string;
  negativePrompt: string;
  params: Record<string, string>;
}

function quoteIfNeeded(v: string): string {
  return /[,:\n"]/.test(v) ? JSON.stringify(v) : v;
}

/** Formats an infotext; parameter values that hold commas or colons are JSON-quoted, as A1111 does. */
export function formatInfotext(prompt: string, negativePrompt: string, params: Readonly<Record<string, string | number>>): string {
  const lines = [prompt];
  if (negativePrompt !== "") lines.push(`Negative prompt: ${negativePrompt}`);
  lines.push(
    Object.entries(params)
      .map(([k, v]) => `${k}: ${quoteIfNeeded(String(v))}`)
      .join(", "),
  );
  return lines.join("\n");
}

const PARAM_RE = /\s*([\w ]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;

/** Parses an infotext back into prompt, negative prompt and parameters. */
export function parseInfotext(text: string): Infotext {
  const lines = text.trim().split("\n");
  let last = lines[lines.length - 1] ?? "";
  const params: Record<string, string> = {};
  const found = [...last.matchAll(PARAM_RE)];
  if (found.length >= 3) lines.pop();
  else last = "";
  for (const m of last === "" ? [] : found) {
    const key = (m[1] ?? "").trim();
    const raw = (m[2] ?? "").trim();
    params[key] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
  }
  const promptLines: string[] = [];
  const negLines: string[] = [];
  let inNeg = false;
  for (const l of lines) {
    if (l.startsWith("Negative prompt:")) {
      inNeg = true;
      negLines.push(l.slice("Negative prompt:".length).trim());
    } else (inNeg ? negLines : promptLines).push(l);
  }
  return { prompt: promptLines.join("\n").trim(), negativePrompt: negLines.join("\n").trim(), params };
}
