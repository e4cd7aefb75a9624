import { cpus, totalmem } from 'node:os';
import type { DenaliImage } from '@denali/image-format';
import {
  HttpLoadGenerator,
  Rng,
  SwapError,
  Yakima,
  defaultMac,
  type ConsoleSink,
  type LoadErrorKind,
  type LoadResult,
  type RequestDistribution,
  type SwapStats,
  type Vm,
} from '@denali/yakima';
import { formatBytes, formatCount } from './format.js';
import { hostMemoryProblem } from './host-guard.js';
import { defaultMemoryBudget, type SwapBenchOptions } from './options.js';
import type { Progress } from './progress.js';

/** The document every request fetches: examples/httpd's 2 KB page (HotOS Figure 3). */
export const DOCUMENT_PATH = '/doc-2k.html';

/** httpd's arguments in each VM: port 80, 2 worker threads (one request per connection). */
export const HTTPD_ARGS = ['80', '2'];

/** httpd's "listening" lines are not needed: console output is dropped. */
const NULL_SINK: ConsoleSink = { write() {}, close() {} };

/** VMs booted to measure what one holds resident (for the default budget). */
const CALIBRATION_VMS = 4;

/**
 * What httpd VMs hold resident after serving a request, in Yakima's own account
 * (`Yakima.measureResident`): `perVm` each (its written pages, vCPU and devices) plus `shared`
 * once for all of them: the image's memory templates, and the emulator's decoded blocks,
 * which the VMs of an image share (block-cache.ts `SharedCode`) but which are charged to the
 * VM that decoded them, so one calibration VM holds megabytes the others use. `perVm` is the
 * median of the VMs but the largest. Bytes; zeros where the host cannot swap (no accounting).
 */
export interface ResidentCost {
  perVm: number;
  shared: number;
}

/**
 * Boots `n` httpd VMs on a Yakima of their own, fetches the document once from each, measures
 * what they hold (`ResidentCost`), and stops them.
 * @throws SwapBenchError when a VM never answers.
 */
export async function residentCost(
  image: DenaliImage,
  document: Uint8Array,
  backend: 'emu' | 'kvm' | 'process',
  n: number,
  onProgress?: (done: number) => void,
): Promise<ResidentCost> {
  const y = new Yakima({ backend, network: true, sink: NULL_SINK });
  y.addVms(image, n, { args: HTTPD_ARGS });
  const running = y.run();
  const gen = new HttpLoadGenerator(y.net!, { path: DOCUMENT_PATH, expectedBody: document, concurrency: n });
  try {
    const targets = y.vms.map((vm) => ({ ip: y.net!.addressOf(vm.id), mac: defaultMac(vm.id) }));
    const v = await gen.visitAll({ targets, timeoutMs: 60_000, onProgress });
    if (v.unanswered.length > 0) throw new SwapBenchError(`httpd VMs did not answer within 60 s (last error: ${v.lastError})`);
    const m = y.measureResident();
    if (m === undefined) return splitResidentCost([]);
    const cost = splitResidentCost(m.vmBytes);
    return { perVm: cost.perVm, shared: cost.shared + m.templateBytes };
  } finally {
    gen.close();
    y.stop('measured');
    await running;
    await y.close();
  }
}

/** `ResidentCost` from what each VM holds, bytes (see there; templates not included); zeros for none. */
export function splitResidentCost(bytes: readonly number[]): ResidentCost {
  if (bytes.length === 0) return { perVm: 0, shared: 0 };
  const sorted = [...bytes].sort((a, b) => a - b);
  const others = sorted.length > 1 ? sorted.slice(0, -1) : sorted;
  const perVm = others[Math.floor((others.length - 1) / 2)]!;
  const total = sorted.reduce((a, b) => a + b, 0);
  return { perVm, shared: Math.max(0, total - perVm * sorted.length) };
}

/** VMs added per step while booting (the scheduler and the readiness check run in between). */
const BOOT_CHUNK = 250;

/** One measured point: `vms` VMs, one request distribution. Rates per second of the measured interval. */
export interface SwapBenchPoint {
  vms: number;
  distribution: RequestDistribution;
  /** Requests answered with the right 2 KB body in the measured interval. */
  requests: number;
  requestsPerSecond: number;
  /** Latency from connect to last body byte, µs. */
  latencyUs: { p50: number; p99: number; max: number; mean: number };
  /** Failed requests during warm-up and measurement (must be 0). */
  errors: number;
  errorsByKind: Partial<Record<LoadErrorKind, number>>;
  swapInsPerSecond: number;
  swapOutsPerSecond: number;
  /** Bytes read from / written to the swap area in the measured interval. */
  bytesRead: number;
  bytesWritten: number;
  /** VMs resident / swapped out at the end of the interval. */
  residentVms: number;
  swappedVms: number;
  /** Host bytes the VMs held at the end (Yakima's account) and the process's resident set. */
  residentBytes: number;
  hostRssBytes: number;
  /** Swap-in latency percentiles over the whole run so far, µs (Yakima's). */
  swapInLatencyUs: { p50: number; p99: number };
  /** Swap failures (VM stayed resident) in the interval. */
  swapFailures: number;
  /** Swap-ins in the interval that took a swapped-out VM's kept mapping instead of mapping the template afresh (JSON only). */
  keptMappingSwapIns: number;
  /** Seconds measured. */
  seconds: number;
  /**
   * CPU time of this process (Yakima, the VMs, the load generator) in the interval, s, and
   * per answered request, µs: steadier than requests/s on a shared machine, where this
   * process may get only part of a core.
   */
  cpuSeconds: number;
  cpuUsPerRequest: number;
}

/** A VM count that could not be measured, and why. */
export interface SkippedPoint {
  vms: number;
  reason: string;
}

/** Boot of the VMs added for one count: wall time until every new VM had answered once. */
export interface BootRecord {
  vms: number;
  added: number;
  seconds: number;
  hostRssBytes: number;
}

/** The whole result of `denali swap-bench` (the JSON written by `--out` / printed by `--json`). */
export interface SwapBenchReport {
  benchmark: 'denali swap-bench';
  /** What it reproduces. */
  reproduces: string;
  startedAt: string;
  host: { cpus: number; cpuModel: string; memoryBytes: number; node: string };
  backend: 'emu' | 'kvm' | 'process';
  image: { name: string; memoryBytes: number; args: string[] };
  document: { path: string; bytes: number };
  memoryBudgetBytes: number;
  memoryBudgetIsDefault: boolean;
  /** Why the budget is what it is (for a default: see `defaultMemoryBudget`). */
  memoryBudgetWhy: string;
  /** Host bytes per httpd VM that has served one request, in Yakima's account (measured for the default budget: `ResidentCost.perVm`), or null. */
  vmResidentBytes: number | null;
  /** Host bytes those VMs hold once for all of them (`ResidentCost.shared`: the image's templates, the emulator's shared decoded blocks), or null. */
  sharedResidentBytes: number | null;
  swapDir: string | null;
  concurrency: number;
  durationSeconds: number;
  warmupSeconds: number;
  alpha: number;
  seed: number;
  boots: BootRecord[];
  points: SwapBenchPoint[];
  skipped: SkippedPoint[];
  /** Requests that failed over the whole run (must be 0), and VMs that exited or faulted. */
  totalErrors: number;
  failedVms: number;
  /** Swap-in capacity after the last point (`measureSwapInCapacity`), or null when nothing was swapped out. */
  swapInCapacity: SwapInCapacity | null;
  /** Issue 8's targets as measured (filled in by the command: see `checkTargets`). */
  targets: Array<{ what: string; value: string; met: boolean | null }>;
}

/**
 * How fast Yakima swaps VMs in when nothing else runs: swapped-out VMs swapped in back to back,
 * each making room as under load (at the budget or the resident cap, the least recently active
 * idle VM is swapped out first). The paper's equivalent is its disks' rate, 7 VMs/s (OSDI 6.2).
 */
export interface SwapInCapacity {
  /** VMs swapped in. */
  swapIns: number;
  /** Swap-outs the swap-ins caused (making room). */
  swapOuts: number;
  /** Wall time of the whole sequence, s. */
  seconds: number;
  /** swapIns / seconds. */
  perSecond: number;
  /** Wall time of each swap-in, its swap-outs included, µs. */
  latencyUs: { p50: number; p99: number };
}

/** Swapped-out VMs `measureSwapInCapacity` swaps in (or all of them when fewer). */
export const CAPACITY_SWAP_INS = 2000;

/** Thrown when a point cannot be measured (VMs never answered, VMs failed). */
export class SwapBenchError extends Error {}

/**
 * Run the benchmark (HotOS paper 3.2, Figure 3): one Yakima with a memory budget; for each VM
 * count in ascending order, boot the missing httpd VMs (`Yakima.addVms`) and check each
 * answers once; then for each distribution run the closed-loop load generator on the virtual
 * switch for `warmup` (unmeasured) and `duration` seconds, reading Yakima's swap counters
 * before and after. Counts the host cannot hold (`hostMemoryProblem`) are skipped with the
 * reason, as are all larger ones; so are the counts left when VMs never answer or fail, or
 * when `signal` aborts (Ctrl-C: the point in progress is dropped). The report holds what was
 * measured until then.
 * @throws SwapBenchError when the VMs measured for the default budget never answer; BootError from Yakima.
 */
export async function runSwapBench(
  image: DenaliImage,
  document: Uint8Array,
  o: SwapBenchOptions,
  progress: Progress,
  signal?: AbortSignal,
): Promise<SwapBenchReport> {
  const report: SwapBenchReport = {
    benchmark: 'denali swap-bench',
    reproduces: "the Denali isolation-kernel paper (HotOS), section 3.2, Figure 3: web server throughput of 1 to 10,000 VMs",
    startedAt: new Date().toISOString(),
    host: { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryBytes: totalmem(), node: process.version },
    backend: o.backend,
    image: { name: image.manifest.name, memoryBytes: image.manifest.memorySize, args: HTTPD_ARGS },
    document: { path: DOCUMENT_PATH, bytes: document.length },
    memoryBudgetBytes: 0,
    memoryBudgetIsDefault: o.memoryBudget === undefined,
    memoryBudgetWhy: 'given by --memory-budget',
    vmResidentBytes: null,
    sharedResidentBytes: null,
    swapDir: o.swapDir ?? null,
    concurrency: o.concurrency,
    durationSeconds: o.duration,
    warmupSeconds: o.warmup,
    alpha: o.alpha,
    seed: o.seed,
    boots: [],
    points: [],
    skipped: [],
    totalErrors: 0,
    failedVms: 0,
    swapInCapacity: null,
    targets: [],
  };
  let budget = o.memoryBudget;
  if (budget === undefined) {
    const largest = o.vms[o.vms.length - 1]!;
    const probe = Math.min(CALIBRATION_VMS, largest);
    progress.start(`measure ${probe} VMs`, probe, 'VMs');
    const cost = await residentCost(image, document, o.backend, probe, (d) => progress.update(d));
    progress.stop();
    report.vmResidentBytes = Math.round(cost.perVm);
    report.sharedResidentBytes = Math.round(cost.shared);
    const d = defaultMemoryBudget(largest, report.vmResidentBytes, report.sharedResidentBytes);
    budget = d.bytes;
    report.memoryBudgetWhy = `${d.why}; ${formatBytes(report.vmResidentBytes)} per VM plus ${formatBytes(report.sharedResidentBytes)} shared, measured on ${probe}`;
  }
  report.memoryBudgetBytes = budget;
  progress.note(`denali swap-bench: memory budget ${formatBytes(budget)} (${report.memoryBudgetWhy}); VMs ${o.vms.join(', ')}; ${o.distributions.join(' and ')}`);
  const failed: Vm[] = [];
  const yakima = new Yakima({
    backend: o.backend,
    network: true,
    sink: NULL_SINK,
    memoryBudget: budget,
    maxResidentVms: o.maxResidentVms,
    swapDir: o.swapDir,
    log: (line) => progress.note(`denali: ${line}`),
    onVmDone: (vm) => failed.push(vm),
  });
  const net = yakima.net!;
  const targets = (n: number): Array<{ ip: number; mac: Uint8Array }> =>
    yakima.vms.slice(0, n).map((vm) => ({ ip: net.addressOf(vm.id), mac: defaultMac(vm.id) }));
  // One generator for the whole run: its per-server port rotation must outlive each point.
  // The emulator's VMs share this thread with the generator: batched answers keep each one's code
  // hot. One request in flight makes no batch, and waiting for one cost 5-20 % (LoadAnswering).
  const answer = o.backend === 'emu' && o.concurrency > 1 ? 'batched' : 'inline';
  const gen = new HttpLoadGenerator(net, { path: DOCUMENT_PATH, expectedBody: document, concurrency: o.concurrency, answer });
  let running: Promise<void> | undefined;
  let runError: unknown;
  const checkVms = (): void => {
    if (runError) throw runError;
    if (failed.length > 0) {
      const vm = failed[0]!;
      throw new SwapBenchError(`VM ${vm.name} ${vm.state}${vm.fault ? `: ${vm.fault.detail}` : ''} (${failed.length} VMs stopped)`);
    }
  };

  const skipFrom = (pi: number, reason: string): void => {
    for (const m of o.vms.slice(pi)) report.skipped.push({ vms: m, reason });
    progress.note(`denali: swap-bench: not measuring ${o.vms.slice(pi).join(', ')} VMs: ${reason}`);
  };
  const onAbort = (): void => {
    gen.close();
    yakima.stop('interrupted');
  };
  signal?.addEventListener('abort', onAbort);
  let pi = 0;
  try {
    for (; pi < o.vms.length && !signal?.aborted; pi++) {
      const n = o.vms[pi]!;
      // Boot the VMs this count needs beyond those already running.
      const before = yakima.vms.length;
      const t0 = performance.now();
      progress.start(`boot ${formatCount(n)} VMs`, n, 'VMs');
      let problem: string | undefined;
      while (yakima.vms.length < n) {
        problem = hostMemoryProblem(budget, yakima.swapStats().swappedVms);
        if (problem) break;
        yakima.addVms(image, Math.min(BOOT_CHUNK, n - yakima.vms.length), { args: HTTPD_ARGS });
        running ??= yakima.run().catch((e: unknown) => void (runError = e));
        progress.update(yakima.vms.length);
        await new Promise((r) => setTimeout(r, 0)); // let the scheduler boot them
        checkVms();
      }
      if (problem) {
        progress.stop();
        skipFrom(pi, `stopped booting at ${formatCount(yakima.vms.length)} VMs: ${problem} (memory budget ${formatBytes(budget)})`);
        break;
      }
      // Readiness: every new VM answers the document once.
      progress.start(`ready ${formatCount(n)} VMs`, n - before, 'VMs');
      const visit = await gen.visitAll({ targets: targets(n), from: before, timeoutMs: 60_000 + (n - before) * 50, onProgress: (d) => progress.update(d) });
      progress.stop();
      checkVms();
      if (visit.unanswered.length > 0) {
        const first = yakima.vms[visit.unanswered[0]!]!;
        throw new SwapBenchError(`${visit.unanswered.length} of ${n - before} new VMs never served ${DOCUMENT_PATH} (first: ${first.name}, last error: ${visit.lastError})`);
      }
      report.boots.push({ vms: n, added: n - before, seconds: (performance.now() - t0) / 1000, hostRssBytes: process.memoryUsage.rss() });

      for (const dist of o.distributions) {
        const point = await measure(yakima, gen, targets(n), dist, o, progress);
        if (signal?.aborted) throw new SwapBenchError('interrupted'); // the point in progress is dropped
        checkVms();
        report.points.push(point);
        report.totalErrors += point.errors;
      }
    }
    if (signal?.aborted && pi < o.vms.length) skipFrom(pi, 'interrupted');
    if (!signal?.aborted && yakima.swapStats().swappedVms > 0) {
      await settle(yakima, gen);
      progress.start('swap-in capacity', Math.min(CAPACITY_SWAP_INS, yakima.swapStats().swappedVms), 'VMs');
      report.swapInCapacity = await measureSwapInCapacity(yakima, o.seed, (d) => progress.update(d));
      progress.stop();
      checkVms();
    }
  } catch (e) {
    if (!(e instanceof SwapBenchError) && !signal?.aborted) throw e;
    progress.stop();
    skipFrom(pi, signal?.aborted ? 'interrupted' : e instanceof Error ? e.message : String(e));
  } finally {
    signal?.removeEventListener('abort', onAbort);
    progress.stop();
    gen.close();
    yakima.stop('swap-bench done');
    await running;
    await yakima.close();
  }
  report.failedVms = failed.filter((vm) => vm.state !== 'stopped').length;
  return report;
}

/** Longest wait for the last point's connections to close before the swap-in capacity is measured (ms). */
const SETTLE_MAX_MS = 5000;

/**
 * Wait (at most `SETTLE_MAX_MS`) until the last point's connections have closed and no VM is
 * runnable, so that the swap-in capacity measures swap-ins alone: a closing exchange would wake
 * VMs meanwhile (swap-ins not made by the measurement, and a runnable VM cannot be swapped out
 * to make room).
 */
async function settle(yakima: Yakima, gen: HttpLoadGenerator): Promise<void> {
  const until = performance.now() + SETTLE_MAX_MS;
  while (performance.now() < until && (gen.host.connectionCount > 0 || yakima.vms.some((vm) => vm.state === 'runnable'))) {
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Swap in up to `CAPACITY_SWAP_INS` swapped-out VMs, picked at random (seeded), one after
 * another with no load running, and time it (`SwapInCapacity`). The VMs stay resident and idle.
 * @throws SwapError from `Yakima.swapIn` other than a VM that cannot come in yet (skipped).
 */
export async function measureSwapInCapacity(yakima: Yakima, seed: number, onProgress?: (done: number) => void): Promise<SwapInCapacity> {
  const swapped = yakima.vms.filter((vm) => vm.state === 'swapped');
  const rng = new Rng(seed);
  for (let i = swapped.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [swapped[i], swapped[j]] = [swapped[j]!, swapped[i]!];
  }
  const pick = swapped.slice(0, CAPACITY_SWAP_INS);
  const lat: number[] = [];
  const s0 = yakima.swapStats();
  const t0 = performance.now();
  let done = 0;
  for (const vm of pick) {
    if (vm.state !== 'swapped') continue;
    const t = performance.now();
    try {
      await yakima.swapIn(vm);
    } catch (e) {
      if (e instanceof SwapError) continue; // e.g. a clone whose parent is not in: not a swap-in
      throw e;
    }
    lat.push((performance.now() - t) * 1000);
    done++;
    if (done % 100 === 0) {
      onProgress?.(done);
      await new Promise((r) => setImmediate(r)); // let the run loop and the progress bar in
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const s1 = yakima.swapStats();
  lat.sort((a, b) => a - b);
  const pct = (q: number): number => (lat.length === 0 ? 0 : Math.round(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!));
  return {
    swapIns: s1.swapIns - s0.swapIns,
    swapOuts: s1.swapOuts - s0.swapOuts,
    seconds,
    perSecond: (s1.swapIns - s0.swapIns) / Math.max(seconds, 1e-9),
    latencyUs: { p50: pct(0.5), p99: pct(0.99) },
  };
}

/** One point: warm-up, then the measured interval with swap counters read around it. */
async function measure(
  yakima: Yakima,
  gen: HttpLoadGenerator,
  targets: Array<{ ip: number; mac: Uint8Array }>,
  dist: RequestDistribution,
  o: SwapBenchOptions,
  progress: Progress,
): Promise<SwapBenchPoint> {
  const n = targets.length;
  const label = `${formatCount(n)} VMs ${dist}`;
  const spec = { targets, distribution: dist, alpha: o.alpha };
  let warmupErrors: LoadResult['errorsByKind'] = {};
  if (o.warmup > 0) {
    progress.start(`${label} warm-up`, Math.ceil(o.warmup), 's');
    const w = await gen.run({
      ...spec,
      seed: o.seed ^ 0x5a5a5a5a,
      durationMs: o.warmup * 1000,
      onProgress: (p) => progress.update(Math.min(Math.floor(p.elapsed), o.warmup), `${formatCount(p.requests / Math.max(p.elapsed, 0.001))} req/s`),
    });
    warmupErrors = w.errorsByKind;
  }
  progress.start(label, Math.ceil(o.duration), 's');
  const s0 = yakima.swapStats();
  const cpu0 = process.cpuUsage();
  const r = await gen.run({
    ...spec,
    seed: o.seed,
    durationMs: o.duration * 1000,
    onProgress: (p) => progress.update(Math.min(Math.floor(p.elapsed), o.duration), `${formatCount(p.requests / Math.max(p.elapsed, 0.001))} req/s, ${p.errors} errors`),
  });
  const s1 = yakima.swapStats();
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  progress.stop();
  const errorsByKind = { ...warmupErrors };
  for (const [k, v] of Object.entries(r.errorsByKind) as Array<[LoadErrorKind, number]>) errorsByKind[k] = (errorsByKind[k] ?? 0) + v;
  const errors = Object.values(errorsByKind).reduce((a, b) => a + b, 0);
  const d = (k: keyof Omit<SwapStats, 'swapInLatencyUs'>): number => s1[k] - s0[k];
  return {
    vms: n,
    distribution: dist,
    requests: r.requests,
    requestsPerSecond: r.requestsPerSecond,
    latencyUs: { p50: r.latencyUs.p50, p99: r.latencyUs.p99, max: r.latencyUs.max, mean: r.latencyUs.mean },
    errors,
    errorsByKind,
    swapInsPerSecond: d('swapIns') / r.seconds,
    swapOutsPerSecond: d('swapOuts') / r.seconds,
    bytesRead: d('bytesRead'),
    bytesWritten: d('bytesWritten'),
    residentVms: s1.residentVms,
    swappedVms: s1.swappedVms,
    residentBytes: s1.residentBytes,
    hostRssBytes: process.memoryUsage.rss(),
    swapInLatencyUs: s1.swapInLatencyUs,
    swapFailures: d('failures'),
    keptMappingSwapIns: d('keptMappingSwapIns'),
    seconds: r.seconds,
    cpuSeconds,
    cpuUsPerRequest: r.requests > 0 ? Math.round((cpuSeconds * 1e6) / r.requests) : 0,
  };
}
