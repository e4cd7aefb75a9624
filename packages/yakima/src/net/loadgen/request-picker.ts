import { Rng } from '../../cpu/difftest/rng.js';

/** How a load generator spreads requests over its targets (HotOS paper 3.2, Figure 3). */
export type RequestDistribution = 'random' | 'zipf';

/** The request distributions, in the order `denali swap-bench` reports them. */
export const REQUEST_DISTRIBUTIONS: readonly RequestDistribution[] = ['random', 'zipf'];

/** Picks the target of each request: an index in [0, n). */
export interface RequestPicker {
  readonly n: number;
  next(): number;
}

/** Uniform over [0, n): every target equally likely ("random" in the paper's Figure 3). */
export class UniformPicker implements RequestPicker {
  private readonly rng: Rng;
  /** @throws RangeError when `n` is not a positive integer. */
  constructor(
    readonly n: number,
    seed = 1,
  ) {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`number of targets ${n} must be a positive integer`);
    this.rng = new Rng(seed);
  }
  next(): number {
    // Two draws give 53 random bits: `u32() % n` would favour low indices when n is not a power of two.
    return Math.floor(unit(this.rng) * this.n);
  }
}

/**
 * Zipf over [0, n): target k (0-based) is picked with probability (k+1)^-α / H(n, α), where
 * H(n, α) = Σ_{i=1..n} i^-α — the heavy-tailed distribution of the paper's Figure 3 (α = 0.8):
 * target 0 is the most popular. Sampling inverts the cumulative distribution (a table of n
 * doubles: 800 KB for 100,000 targets) by binary search, O(log n) per pick.
 */
export class ZipfPicker implements RequestPicker {
  private readonly cdf: Float64Array;
  private readonly rng: Rng;
  /** @throws RangeError when `n` is not a positive integer or `alpha` is not a finite number ≥ 0. */
  constructor(
    readonly n: number,
    readonly alpha: number,
    seed = 1,
  ) {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`number of targets ${n} must be a positive integer`);
    if (!Number.isFinite(alpha) || alpha < 0) throw new RangeError(`Zipf exponent ${alpha} must be a number ≥ 0`);
    this.rng = new Rng(seed);
    this.cdf = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k++) this.cdf[k] = sum += (k + 1) ** -alpha;
    for (let k = 0; k < n; k++) this.cdf[k]! /= sum;
    this.cdf[n - 1] = 1;
  }

  /** Probability of target `k`. */
  probability(k: number): number {
    return this.cdf[k]! - (k > 0 ? this.cdf[k - 1]! : 0);
  }

  next(): number {
    const u = unit(this.rng);
    let lo = 0;
    let hi = this.n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/**
 * The picker for `dist` over `n` targets. @throws RangeError for an unknown distribution or
 * bad `n` / `alpha`.
 */
export function createPicker(dist: RequestDistribution, n: number, alpha = 0.8, seed = 1): RequestPicker {
  if (dist === 'random') return new UniformPicker(n, seed);
  if (dist === 'zipf') return new ZipfPicker(n, alpha, seed);
  throw new RangeError(`unknown request distribution '${String(dist)}' (random or zipf)`);
}

/** A uniform double in [0, 1) with 53 random bits. */
function unit(rng: Rng): number {
  return ((rng.u32() >>> 5) * 67_108_864 + (rng.u32() >>> 6)) / 9_007_199_254_740_992;
}
