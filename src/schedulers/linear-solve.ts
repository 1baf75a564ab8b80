/** Small dense linear systems (UniPC's order conditions, at most 3×3). */
import { assert } from "../errors.js";

/** Solves A·x = b by Gaussian elimination with partial pivoting. */
export function solveLinear(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const m = a.map((row, r) => [...row.slice(0, n), b[r] ?? 0]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs(m[r]?.[col] ?? 0) > Math.abs(m[pivot]?.[col] ?? 0)) pivot = r;
    }
    const p = m[pivot];
    const cur = m[col];
    assert(p !== undefined && cur !== undefined && (p[col] ?? 0) !== 0, "solveLinear: singular matrix");
    m[pivot] = cur;
    m[col] = p;
    for (let r = col + 1; r < n; r++) {
      const row = m[r] ?? [];
      const factor = (row[col] ?? 0) / (p[col] ?? 1);
      for (let k = col; k <= n; k++) row[k] = (row[k] ?? 0) - factor * (p[k] ?? 0);
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    const row = m[r] ?? [];
    let s = row[n] ?? 0;
    for (let k = r + 1; k < n; k++) s -= (row[k] ?? 0) * (x[k] ?? 0);
    x[r] = s / (row[r] ?? 1);
  }
  return x;
}
