// Seeded randomness for the tests: float streams over the shared PRNG (shared/src/prng.ts), and
// the seeds a test runs (one from the environment to replay a failure, else a fixed range).

import { Mulberry32, mix32 } from "../shared/src/prng.js";

/** A seeded stream of floats in [0, 1). */
export function rng(seed: number): () => number {
  const m = new Mulberry32(seed);
  return () => m.next() / 4294967296;
}

/** An integer in [lo, hi] (both inclusive). */
export function int(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

export function pick<T>(r: () => number, items: readonly T[]): T {
  return items[Math.floor(r() * items.length)]!;
}

/** Mixes two integers into a new seed (for per-connection / per-run streams). */
export function mix(a: number, b: number): number {
  return mix32(Math.imul(a >>> 0, 0x9e3779b1) ^ Math.imul(b >>> 0, 0x85ebca77));
}

/** Seeds to run: env `name` alone (replay one run) or `count` seeds from `base`. */
export function seedsFrom(name: string, base: number, count: number): number[] {
  const one = process.env[name];
  if (one !== undefined && one !== "") return [Number(one)];
  return Array.from({ length: count }, (_, i) => base + i);
}
