/** Comparing tensors with a report: maxAbs, meanAbs and the worst index. */
import assert from "node:assert/strict";

/** Asserts equal lengths and max |got − want| ≤ tol; the message names maxAbs, meanAbs and the worst index. Returns the message. */
export function assertCloseReport(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): { maxAbs: number; message: string } {
  assert.equal(got.length, want.length, `${what}: length ${got.length} vs ${want.length}`);
  let maxAbs = 0;
  let sum = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs((got[i] ?? NaN) - (want[i] ?? NaN));
    sum += d;
    if (!(d <= maxAbs)) [maxAbs, worst] = [d, i];
  }
  const message = `${what}: maxAbs ${maxAbs.toExponential(3)} (tol ${tol}), meanAbs ${(sum / want.length).toExponential(3)}, worst index ${worst} (got ${got[worst]}, want ${want[worst]})`;
  assert.ok(maxAbs <= tol, message);
  return { maxAbs, message };
}

/** assertCloseReport, returning maxAbs. */
export function assertClose(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): number {
  return assertCloseReport(what, got, want, tol).maxAbs;
}
