/**
 * Reading request fields: null or absent means "default" (as A1111 clients send every field,
 * many as null); a bad value is a 422 that names the field. `lax` accepts numbers sent as
 * strings ("20"), as A1111's pydantic models do.
 */
import { SAMPLERS } from "../index.js";
import { invalid } from "./http.js";
import { decodeImageField } from "./image-field.js";

/** Configurable parameter limits. */
export interface Limits {
  readonly maxWidth: number;
  readonly maxHeight: number;
  readonly maxSteps: number;
  readonly maxBatch: number;
}

/**
 * Default limits: A1111's UI slider maxima for steps and batch; sizes stop at 1024, since
 * attention memory grows with the square of the latent's pixel count (SD 1.x at 2048² wants
 * tens of GB on CPU).
 */
export const DEFAULT_LIMITS: Limits = { maxWidth: 1024, maxHeight: 1024, maxSteps: 150, maxBatch: 8 };

type Body = Readonly<Record<string, unknown>>;

/** Field reader over one body. */
export class Fields {
  constructor(
    private readonly body: Body,
    private readonly lax: boolean,
    private readonly prefix = "",
  ) {}

  /** True when the field is absent or null. */
  missing(name: string): boolean {
    const v = this.body[name];
    return v === undefined || v === null;
  }

  /** A string field. */
  str(name: string, def: string): string {
    const v = this.body[name];
    if (v === undefined || v === null) return def;
    if (typeof v !== "string") throw invalid(this.prefix + name, `must be a string (got ${typeof v})`);
    return v;
  }

  /** A finite number in [min, max]. */
  num(name: string, def: number, min: number, max: number): number {
    const n = this.number(name, def);
    if (!Number.isFinite(n) || n < min || n > max) throw invalid(this.prefix + name, `must be a number from ${min} to ${max} (got ${String(this.body[name])})`);
    return n;
  }

  /** A whole number in [min, max]. */
  int(name: string, def: number, min: number, max: number): number {
    const n = this.number(name, def);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw invalid(this.prefix + name, `must be a whole number from ${min} to ${max} (got ${String(this.body[name])})`);
    return n;
  }

  /** A boolean. */
  bool(name: string, def: boolean): boolean {
    const v = this.body[name];
    if (v === undefined || v === null) return def;
    if (typeof v === "boolean") return v;
    // pydantic (A1111) also takes "true"/"false" and 0/1; A1111's UI sends some switches as indices.
    if (this.lax && (v === "true" || v === "false")) return v === "true";
    if (this.lax && (v === 0 || v === 1)) return v === 1;
    throw invalid(this.prefix + name, `must be true or false (got ${JSON.stringify(v)})`);
  }

  /** An object (for nested settings). */
  obj(name: string): Body {
    const v = this.body[name];
    if (v === undefined || v === null) return {};
    if (typeof v !== "object" || Array.isArray(v)) throw invalid(this.prefix + name, `must be an object (got ${Array.isArray(v) ? "array" : typeof v})`);
    return v as Body;
  }

  /** An image sent as base64 or a data URL, or undefined when absent (null, or "" when `emptyIsAbsent`). */
  image(name: string, emptyIsAbsent = false): Uint8Array | undefined {
    const v = this.body[name];
    if (v === undefined || v === null || (emptyIsAbsent && v === "")) return undefined;
    return decodeImageField(v, this.prefix + name);
  }

  /** One of `names`, given by name or by its index (A1111 sends indices); returns the index. */
  choice(name: string, names: readonly string[], def: number): number {
    const v = this.body[name];
    if (v === undefined || v === null) return def;
    const i = typeof v === "string" && !/^\d+$/.test(v.trim()) ? names.indexOf(v.trim().toLowerCase()) : this.number(name, def);
    if (!Number.isInteger(i) || i < 0 || i >= names.length) {
      throw invalid(this.prefix + name, `must be one of ${names.map((n, k) => `${k} (${n})`).join(", ")} (got ${JSON.stringify(v)})`);
    }
    return i;
  }

  /** Width or height: a multiple of 8 from 8 to `max`. */
  size(name: string, def: number, max: number): number {
    const n = this.int(name, def, 8, max);
    if (n % 8 !== 0) {
      const lo = Math.max(8, n - (n % 8));
      throw invalid(this.prefix + name, `must be a multiple of 8 (got ${n}); use ${lo} or ${lo + 8}`);
    }
    return n;
  }

  /** A seed: −1 (random) or a whole number 0…2³²−1. */
  seed(name: string): number {
    const n = this.number(name, -1);
    if (n === -1) return -1;
    if (!Number.isSafeInteger(n) || n < 0 || n > 4294967295) throw invalid(this.prefix + name, `must be -1 (random) or a whole number from 0 to 4294967295 (got ${String(this.body[name])})`);
    return n;
  }

  /** A sampler name or alias, case-insensitive; returns the canonical name. */
  sampler(name: string, def: string): string {
    const v = this.str(name, def);
    const hit = findSampler(v);
    if (hit === undefined) throw invalid(this.prefix + name, `unknown sampler ${JSON.stringify(v)}; use one of ${SAMPLERS.map((s) => s.name).join(", ")}`);
    return hit;
  }

  private number(name: string, def: number): number {
    const v = this.body[name];
    if (v === undefined || v === null) return def;
    if (typeof v === "number") return v;
    if (this.lax && typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
    throw invalid(this.prefix + name, `must be a number (got ${JSON.stringify(v)})`);
  }
}

/** The canonical name of a sampler given by name or alias (case-insensitive), or undefined. */
export function findSampler(name: string): string | undefined {
  const key = name.trim().toLowerCase();
  return SAMPLERS.find((s) => s.name.toLowerCase() === key || s.aliases.some((a) => a.toLowerCase() === key))?.name;
}

/** A random seed as A1111 draws it for −1. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 4294967294);
}
