import { InvalidArgumentError } from 'commander';
import { REQUEST_DISTRIBUTIONS, type RequestDistribution } from '@denali/yakima/request-picker';

/** Most VMs the default subnet has addresses for (10.73.0.1 + n up to 10.79.255.254), less the load generator's. */
export const MAX_VMS = 458_748;

/** The HotOS paper's host memory (section 3.2): the largest default memory budget, bytes. */
export const PAPER_HOST_MEMORY = 1 << 30;

/** The default budget has room for at most this share of the largest VM count (besides what they share). */
export const DEFAULT_BUDGET_SHARE = 0.25;

/** The smallest default budget, bytes (only so that it is never 0). */
export const MIN_DEFAULT_BUDGET = 1 << 20;

/**
 * The default memory budget: the paper's 1 GB host, or what the VMs share (`sharedBytes`: the
 * image's templates, the emulator's decoded blocks) plus room for a quarter of `largest` VMs at
 * `vmBytes` each (so at least three in four must be swapped out), whichever is smaller, but
 * at least `MIN_DEFAULT_BUDGET`. @returns bytes and a phrase saying why.
 */
export function defaultMemoryBudget(largest: number, vmBytes: number, sharedBytes = 0): { bytes: number; why: string } {
  const want = sharedBytes + Math.floor(largest * vmBytes * DEFAULT_BUDGET_SHARE);
  if (want >= PAPER_HOST_MEMORY) return { bytes: PAPER_HOST_MEMORY, why: "the HotOS paper's 1 GB host" };
  const bytes = Math.max(MIN_DEFAULT_BUDGET, want);
  const what = largest === 1 ? 'the VM' : `the ${largest.toLocaleString('en-US')} VMs`;
  return { bytes, why: `room for a quarter of ${what} besides what they share, so they cannot all stay resident` };
}

/** Options of `denali swap-bench`, validated. Times in seconds, sizes in bytes. */
export interface SwapBenchOptions {
  /** VM counts to measure, ascending, without duplicates. */
  vms: number[];
  /** Request distributions to measure at each count. */
  distributions: RequestDistribution[];
  /** Zipf exponent α. */
  alpha: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** Measured time per point. */
  duration: number;
  /** Unmeasured load before each point. */
  warmup: number;
  /** Yakima's memory budget; undefined: `defaultMemoryBudget`. */
  memoryBudget?: number;
  /** Most VMs resident at once (Yakima's default when undefined). */
  maxResidentVms?: number;
  /** Swap area directory; undefined: Yakima's default. */
  swapDir?: string;
  /** Directory for swap-bench.json, .csv and .svg. */
  out?: string;
  /** Print the JSON report instead of the table and chart. */
  json: boolean;
  /** CPU backend. */
  backend: 'emu' | 'kvm' | 'process';
  /** Seed of the request picker. */
  seed: number;
}

/** Defaults: the paper's Figure 3 axes. */
export const SWAP_BENCH_DEFAULTS = {
  vms: '1,10,100,1000,10000',
  dist: 'random,zipf',
  alpha: '0.8',
  concurrency: '32',
  duration: '20',
  warmup: '3',
  seed: '1',
} as const;

/** `--vms 1,10,100`: positive counts up to `MAX_VMS`. @throws InvalidArgumentError naming the bad item. */
export function parseVmCounts(text: string): number[] {
  const items = text.split(',').map((s) => s.trim());
  const out = new Set<number>();
  for (const s of items) {
    const n = /^\d[\d_]*$/.test(s) ? Number(s.replaceAll('_', '')) : NaN;
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`'${s}' is not a VM count (a comma-separated list of positive whole numbers, e.g. 1,10,100)`);
    if (n > MAX_VMS) throw new InvalidArgumentError(`${n} VMs do not fit on the virtual subnet (at most ${MAX_VMS})`);
    out.add(n);
  }
  return [...out].sort((a, b) => a - b);
}

/** `--dist random,zipf`. @throws InvalidArgumentError naming the bad item. */
export function parseDistributions(text: string): RequestDistribution[] {
  const out: RequestDistribution[] = [];
  for (const s of text.split(',').map((x) => x.trim())) {
    if (!(REQUEST_DISTRIBUTIONS as readonly string[]).includes(s)) {
      throw new InvalidArgumentError(`'${s}' is not a request distribution (${REQUEST_DISTRIBUTIONS.join(' or ')})`);
    }
    if (!out.includes(s as RequestDistribution)) out.push(s as RequestDistribution);
  }
  return REQUEST_DISTRIBUTIONS.filter((d) => out.includes(d));
}

/** A finite number ≥ `min` (and ≤ `max`). @throws InvalidArgumentError. */
export function numberArg(what: string, min: number, max = Infinity, minExclusive = false): (text: string) => number {
  return (text: string) => {
    const n = /^\s*[+]?(\d+(\.\d*)?|\.\d+)\s*$/.test(text) ? Number(text) : NaN;
    if (!Number.isFinite(n) || (minExclusive ? n <= min : n < min) || n > max) {
      const range = max === Infinity ? `${minExclusive ? 'greater than' : 'at least'} ${min}` : `${min} to ${max}`;
      throw new InvalidArgumentError(`'${text}' is not a valid ${what} (a number ${range})`);
    }
    return n;
  };
}

/** A whole number in [min, max]. @throws InvalidArgumentError. */
export function intArg(what: string, min: number, max: number): (text: string) => number {
  return (text: string) => {
    const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`'${text}' is not a valid ${what} (a whole number ${min} to ${max})`);
    return n;
  };
}
