// The project's one seeded PRNG: gen-data's datasets (shipped in the agency image) and the tests'
// seeded runs draw from it, so a seed means the same stream everywhere.

/** 32-bit finaliser (murmur3 fmix32): a well-mixed hash of a uint32. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** mulberry32 (Tommy Ettinger): uint32 values in 0 .. 2^32-1. */
export class Mulberry32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) | 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Integer in 0 .. n-1 (n ≤ 2^21 keeps the product exact). */
  below(n: number): number {
    return Math.floor((this.next() * n) / 4294967296);
  }
}
