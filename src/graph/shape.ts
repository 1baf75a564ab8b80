/**
 * Shapes with named symbolic dims. A dim is a number or a product of named symbols with an
 * integer coefficient, written canonically as a string: "B", "H*W", "4*B*H". Products arise
 * from Reshape (flattening [B, C, H, W] to [B, C, H*W]) and must divide back exactly.
 */
import { ShapeError } from "../errors.js";

/** One dimension: a concrete size, or a symbolic monomial such as "B" or "H*W". */
export type Dim = number | string;
/** A tensor shape. */
export type Shape = readonly Dim[];

interface Monomial {
  coef: number;
  syms: string[]; // sorted, with repeats
}

function parse(d: Dim): Monomial {
  if (typeof d === "number") return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split("*")) {
    const p = part.trim();
    if (/^\d+$/.test(p)) coef *= Number(p);
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) syms.push(p);
    else throw new ShapeError(`bad symbolic dim '${d}': expected names joined by '*'`);
  }
  syms.sort();
  return { coef, syms };
}

function format(m: Monomial): Dim {
  if (m.syms.length === 0) return m.coef;
  const s = m.syms.join("*");
  return m.coef === 1 ? s : `${m.coef}*${s}`;
}

/** Canonical form of a dim ("W*H" → "H*W"). */
export function normDim(d: Dim): Dim {
  return format(parse(d));
}

/** Product of dims, symbolic where needed. */
export function dimProduct(dims: readonly Dim[]): Dim {
  const out: Monomial = { coef: 1, syms: [] };
  for (const d of dims) {
    const m = parse(d);
    out.coef *= m.coef;
    out.syms.push(...m.syms);
  }
  out.syms.sort();
  return format(out);
}

/** a / b exactly, or undefined when it does not divide (symbolically or numerically). */
export function dimDivide(a: Dim, b: Dim): Dim | undefined {
  const ma = parse(a);
  const mb = parse(b);
  if (mb.coef === 0 || ma.coef % mb.coef !== 0) return undefined;
  const rest = [...ma.syms];
  for (const s of mb.syms) {
    const i = rest.indexOf(s);
    if (i < 0) return undefined;
    rest.splice(i, 1);
  }
  return format({ coef: ma.coef / mb.coef, syms: rest });
}

/** True when two dims are certainly equal. */
export function dimEq(a: Dim, b: Dim): boolean {
  return normDim(a) === normDim(b);
}

/** True when every dim is a number. */
export function isConcrete(shape: Shape): shape is readonly number[] {
  return shape.every((d) => typeof d === "number");
}

/** Number of elements of a concrete shape. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Substitutes symbol values into a dim; throws if a symbol is unbound. */
export function resolveDim(d: Dim, bindings: ReadonlyMap<string, number>): number {
  const m = parse(d);
  let v = m.coef;
  for (const s of m.syms) {
    const x = bindings.get(s);
    if (x === undefined) throw new ShapeError(`symbolic dim '${s}' has no value; feed an input that carries it`);
    v *= x;
  }
  return v;
}

/** Substitutes symbol values into a shape. */
export function resolveShape(shape: Shape, bindings: ReadonlyMap<string, number>): number[] {
  return shape.map((d) => resolveDim(d, bindings));
}

/** Numpy-style broadcast of shapes; throws a ShapeError naming the clashing dims. */
export function broadcastShapes(shapes: readonly Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      const e = k >= 0 ? (s[k] ?? 1) : 1;
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (!dimEq(d, e)) {
        throw new ShapeError(`cannot broadcast dim ${String(d)} with ${String(e)} (shapes ${shapes.map(fmtShape).join(", ")})`);
      }
    }
    out.push(typeof d === "string" ? normDim(d) : d);
  }
  return out;
}

/** Normalizes a possibly negative axis against a rank; throws on out-of-range. */
export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** "[B,4,64,64]" */
export function fmtShape(s: Shape): string {
  return `[${s.join(",")}]`;
}

/** Row-major strides of a concrete shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const st = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) st[i] = (st[i + 1] ?? 1) * (shape[i + 1] ?? 1);
  return st;
}
