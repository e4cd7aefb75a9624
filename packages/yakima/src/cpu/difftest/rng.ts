/** xorshift32: small, fast and deterministic (a seed reproduces a whole fuzzing batch). */
export class Rng {
  private s: number;
  /**
   * @param seed any 32-bit value (0 is replaced by a fixed non-zero state).
   * @param warmup outputs discarded first, so nearby seeds diverge at once (the emulator's
   *   oracle tests use 0 to keep their cached case streams).
   */
  constructor(seed: number, warmup = 4) {
    this.s = seed >>> 0 || 0x9e3779b9;
    for (let i = 0; i < warmup; i++) this.u32();
  }
  u32(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.u32() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
  bool(): boolean {
    return (this.u32() & 1) === 1;
  }
  /** True with probability 1/n. */
  oneIn(n: number): boolean {
    return this.int(n) === 0;
  }
}

/** A derived seed (for batch k of a run seeded with `seed`). */
export function mixSeed(seed: number, k: number): number {
  let h = (seed ^ Math.imul(k + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
