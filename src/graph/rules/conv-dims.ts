/**
 * Output sizes of 2-D convolutions with symbolic dims. A Dim is one monomial, so sizes are
 * worked out as integer affine forms over monomials and turned back into a Dim only when the
 * result is a single monomial or a number ("H" for 3×3 pad 1, "h" for stride 2 on "2*h").
 */
import { ShapeError } from "../../errors.js";
import type { ConvAttrs } from "../op.js";
import type { Dim } from "../shape.js";
import { dimProduct, normDim } from "../shape.js";

/** Canonical monomial ("H", "H*W") → integer coefficient; the key "" holds the constant. */
type Affine = Map<string, number>;

/** Σ coef·dim as an affine form. */
function affine(terms: readonly (readonly [Dim, number])[]): Affine {
  const out: Affine = new Map();
  for (const [d, c] of terms) {
    const n = normDim(d);
    let key = "";
    let coef = c;
    if (typeof n === "number") coef *= n;
    else {
      const m = /^(\d+)\*(.+)$/.exec(n);
      key = m ? (m[2] ?? "") : n;
      coef *= m ? Number(m[1]) : 1;
    }
    out.set(key, (out.get(key) ?? 0) + coef);
  }
  return out;
}

/** The form as a Dim, or undefined unless it is a number or one positive monomial. */
function toDim(a: Affine): Dim | undefined {
  const cst = a.get("") ?? 0;
  const sym = [...a].filter(([k, c]) => k !== "" && c !== 0);
  if (sym.length === 0) return cst;
  const [first] = sym;
  if (sym.length > 1 || cst !== 0 || first === undefined || first[1] < 0) return undefined;
  return dimProduct([first[1], first[0]]);
}

/** Attributes along one spatial axis (0 = height, 1 = width). */
export interface AxisAttrs {
  readonly stride: number;
  readonly dilation: number;
  readonly padBegin: number;
  readonly padEnd: number;
}

/** The stride, dilation and pads of one spatial axis. */
export function axisAttrs(a: ConvAttrs, axis: 0 | 1): AxisAttrs {
  return { stride: a.strides[axis], dilation: a.dilations[axis], padBegin: a.pads[axis], padEnd: a.pads[axis + 2] ?? 0 };
}

const AXIS_NAME = ["height", "width"] as const;

function symbolicHelp(axis: 0 | 1): string {
  return (
    `a symbolic ${AXIS_NAME[axis]} stays symbolic only when the conv keeps it (stride 1, e.g. 3×3 pad 1) ` +
    `or divides it exactly (stride s on a dim like "s*h"); use concrete shapes`
  );
}

/** Span of the padded input left after the first kernel position: H + pads − dil·(k−1) − 1. */
function span(h: Dim, k: Dim, p: AxisAttrs): Affine {
  return affine([[h, 1], [k, -p.dilation], [p.padBegin + p.padEnd + p.dilation - 1, 1]]);
}

/** Conv output size floor((H + pb + pe − dil·(k−1) − 1) / stride) + 1, symbolic where exact. */
export function convOutDim(h: Dim, k: Dim, p: AxisAttrs, axis: 0 | 1): Dim {
  const s = span(h, k, p);
  const q: Affine = new Map();
  let exact = true;
  for (const [key, c] of s) {
    if (key === "") q.set("", Math.floor(c / p.stride) + 1);
    else if (c % p.stride !== 0) exact = false;
    else q.set(key, c / p.stride);
  }
  const out = exact ? toDim(q) : undefined;
  const what = `input ${AXIS_NAME[axis]} ${h}, kernel ${k}, stride ${p.stride}, dilation ${p.dilation}, pads ${p.padBegin}+${p.padEnd}`;
  if (out === undefined) throw new ShapeError(`output ${AXIS_NAME[axis]} is not a single dim (${what}); ${symbolicHelp(axis)}`);
  if (typeof out === "number" && out < 1) {
    throw new ShapeError(`output ${AXIS_NAME[axis]} would be ${out} (${what}); the padded input is smaller than the dilated kernel`);
  }
  return out;
}

/** The output padding that makes a transposed conv of the conv output give back H exactly. */
export function adjointOutputPadding(h: Dim, k: Dim, p: AxisAttrs): number {
  // Symbolic terms of the span are multiples of the stride (convOutDim checked), so only the constant matters.
  const c = span(h, k, p).get("") ?? 0;
  return ((c % p.stride) + p.stride) % p.stride;
}

/** ConvTranspose output size stride·(H−1) + outPad + dil·(k−1) + 1 − pb − pe, symbolic where exact. */
export function convTransposeOutDim(h: Dim, k: Dim, p: AxisAttrs, outPad: number, axis: 0 | 1): Dim {
  const cst = outPad - p.stride - p.dilation + 1 - p.padBegin - p.padEnd;
  const out = toDim(affine([[h, p.stride], [k, p.dilation], [cst, 1]]));
  const what = `input ${AXIS_NAME[axis]} ${h}, kernel ${k}, stride ${p.stride}, dilation ${p.dilation}, pads ${p.padBegin}+${p.padEnd}, output padding ${outPad}`;
  if (out === undefined) {
    throw new ShapeError(
      `output ${AXIS_NAME[axis]} is not a single dim (${what}); a symbolic ${AXIS_NAME[axis]} stays symbolic only when ` +
        `the output is exactly stride·H (e.g. 4×4 stride 2 pad 1); use concrete shapes`,
    );
  }
  if (typeof out === "number" && out < 1) throw new ShapeError(`output ${AXIS_NAME[axis]} would be ${out} (${what})`);
  return out;
}

/** Throws unless strides/dilations/group are positive integers and pads non-negative integers. */
export function checkConvAttrs(a: ConvAttrs): void {
  const pos = (v: number) => Number.isInteger(v) && v >= 1;
  const nonNeg = (v: number) => Number.isInteger(v) && v >= 0;
  if (a.strides.length !== 2 || !a.strides.every(pos)) throw new ShapeError(`strides must be two positive integers, got [${a.strides.join(",")}]`);
  if (a.dilations.length !== 2 || !a.dilations.every(pos)) {
    throw new ShapeError(`dilations must be two positive integers, got [${a.dilations.join(",")}]`);
  }
  if (a.pads.length !== 4 || !a.pads.every(nonNeg)) {
    throw new ShapeError(`pads must be four non-negative integers [top,left,bottom,right], got [${a.pads.join(",")}]`);
  }
  if (!pos(a.group)) throw new ShapeError(`group must be a positive integer, got ${a.group}`);
}
