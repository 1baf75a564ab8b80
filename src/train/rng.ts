/** A small seeded generator whose whole state is one number, so a checkpoint can store it and a resumed run draws the same batches. */

/** mulberry32 (Tommy Ettinger's 32-bit generator) with Box–Muller normals. */
export class Rng {
  constructor(public state: number) {
    this.state = state >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A uniformly drawn element of a non-empty list. */
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)] as T;
  }
  /** n standard normals. */
  normals(n: number): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = Math.max(this.next(), 1e-12);
      const r = Math.sqrt(-2 * Math.log(u));
      const a = 2 * Math.PI * this.next();
      out[i] = r * Math.cos(a);
      if (i + 1 < n) out[i + 1] = r * Math.sin(a);
    }
    return out;
  }
}
