/** Float32 arithmetic helpers for reproducing PyTorch's single-precision kernels exactly. */

const f = Math.fround;
const scratchF = new Float32Array(1);
const scratchU = new Uint32Array(scratchF.buffer);

/** The float32 next to `x` (finite, non-zero) towards +∞ when `up`, else towards −∞. */
function nextF32(x: number, up: boolean): number {
  scratchF[0] = x;
  scratchU[0] = (scratchU[0] ?? 0) + ((x > 0) === up ? 1 : -1);
  return scratchF[0] ?? 0;
}

/** Single-rounded float32 fused multiply-add a·b + c of float32 inputs. */
export function fmaF32(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 × 24 bits fit a double
  const s = p + c;
  const bv = s - p;
  const err = p - (s - bv) + (c - bv); // TwoSum: s + err = p + c exactly
  const r = f(s);
  if (err === 0 || r === s) return r;
  // Rounding twice only goes wrong when s sits exactly halfway between two floats.
  const other = nextF32(r, s > r);
  if ((r + other) / 2 !== s) return r;
  return err > 0 ? Math.max(r, other) : Math.min(r, other);
}
