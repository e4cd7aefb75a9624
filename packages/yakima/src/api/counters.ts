import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { ConsoleTailSink } from '../devices/console-tail.js';
import type { Vm, VmState } from '../control/vm.js';
import type { Yakima } from '../control/yakima.js';

/** Frames dropped for one VM, by reason (every drop is counted under exactly one). */
export interface DropCounts {
  /** NET_SEND frames refused because the Tx FIFO was full. */
  txFifoFull: number;
  /** NET_SEND frames with a length outside the Ethernet bounds. */
  txBadLength: number;
  /** NET_SEND frames whose descriptor FLAGS held a bit that is not a Tx flag. */
  txBadFlags: number;
  /** Frames the switch dropped because their source MAC was not the VM's. */
  txSpoofed: number;
  /** Frames for the VM dropped because its Rx FIFO was full. */
  rxFifoFull: number;
}

/** One VM's counters as the control API reports them (`Vm` in openapi.json). Times in µs, sizes in bytes. */
export interface VmCounters {
  id: number;
  name: string;
  image: string;
  state: VmState | 'swapped';
  memoryBytes: number;
  residentBytes: number;
  cpuTimeUs: number;
  /** cpuTimeUs over the VM's lifetime (0..1 of one host core). */
  cpuShare: number;
  instructionsRetired: number;
  exits: number;
  hypercalls: number;
  entries: number;
  preemptions: number;
  idles: number;
  upcalls: number;
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  /** NET_SEND frames whose TCP/UDP checksum Yakima filled in (checksum offload, `FRAME_FLAG.TX_CSUM`). */
  txChecksumsFilled: number;
  /** Frames delivered with `FRAME_FLAG.RX_CSUM_VALID` (the guest skips verifying their checksums). */
  rxChecksumsValid: number;
  drops: DropCounts;
  swapIns: number;
  swapOuts: number;
  consoleBytes: number;
  uptimeSeconds: number;
  exitStatus: number | null;
  fault: { cause: string; detail: string; eip: number } | null;
}

/** Every VM state, in the order reports list them. */
export const VM_STATES = ['runnable', 'idle', 'paused', 'swapped', 'exited', 'faulted', 'stopped'] as const;

/** The counters of `vm` now. `tail` gives the console byte count. */
export function vmCounters(vm: Vm, tail: ConsoleTailSink | undefined, now = performance.now()): VmCounters {
  const s = vm.stats;
  const n = vm.nic?.stats;
  const uptimeMs = Math.max(0, (vm.endedAt ?? now) - vm.startedAt);
  return {
    id: vm.id,
    name: vm.name,
    image: vm.manifest.name,
    state: vm.state,
    memoryBytes: vm.memory.size,
    residentBytes: vm.residentBytes(),
    cpuTimeUs: Math.round(s.cpuTimeUs),
    cpuShare: uptimeMs > 0 ? Math.min(1, s.cpuTimeUs / 1000 / uptimeMs) : 0,
    instructionsRetired: vm.state === 'swapped' ? vm.retiredAtSwapOut : vm.vcpu.instructionsRetired,
    exits: s.exits,
    hypercalls: s.hypercalls,
    entries: s.entries,
    preemptions: s.preemptions,
    idles: s.idles,
    upcalls: s.upcalls,
    rxFrames: n?.rxFrames ?? 0,
    rxBytes: n?.rxBytes ?? 0,
    txFrames: n?.txFrames ?? 0,
    txBytes: n?.txBytes ?? 0,
    txChecksumsFilled: n?.txCsumFilled ?? 0,
    rxChecksumsValid: n?.rxCsumValid ?? 0,
    drops: {
      txFifoFull: n?.txFifoFull ?? 0,
      txBadLength: n?.txBadLength ?? 0,
      txBadFlags: n?.txBadFlags ?? 0,
      txSpoofed: n?.txSpoofDrops ?? 0,
      rxFifoFull: n?.rxFifoDrops ?? 0,
    },
    swapIns: s.swapIns,
    swapOuts: s.swapOuts,
    consoleBytes: tail?.totalBytes(vm.name) ?? vm.console.bytesWritten,
    uptimeSeconds: uptimeMs / 1000,
    exitStatus: vm.state === 'exited' ? (vm.exitStatus ?? 0) : null,
    fault: vm.fault ? { cause: vm.fault.cause, detail: vm.fault.detail, eip: vm.fault.eip } : null,
  };
}

/** Sum of a VM's drops over every reason. */
export function totalDrops(d: DropCounts): number {
  return d.txFifoFull + d.txBadLength + d.txBadFlags + d.txSpoofed + d.rxFifoFull;
}

/** Host-wide totals of an instance (`Totals` in openapi.json). */
export interface Totals {
  vms: number;
  byState: Record<(typeof VM_STATES)[number], number>;
  residentBytes: number;
  /** The memory budget when the instance can swap (`Yakima.swapStats`), else null. */
  memoryBudgetBytes: number | null;
  swapIns: number;
  swapOuts: number;
  cpuTimeUs: number;
  instructionsRetired: number;
  exits: number;
  rxFrames: number;
  txFrames: number;
  rxBytes: number;
  txBytes: number;
  drops: number;
}

/** Totals over `vms` (their counters, already taken). */
export function totalsOf(yakima: Yakima, vms: VmCounters[]): Totals {
  const byState = Object.fromEntries(VM_STATES.map((s) => [s, 0])) as Totals['byState'];
  const t: Totals = {
    vms: vms.length,
    byState,
    residentBytes: 0,
    memoryBudgetBytes: null,
    swapIns: 0,
    swapOuts: 0,
    cpuTimeUs: 0,
    instructionsRetired: 0,
    exits: 0,
    rxFrames: 0,
    txFrames: 0,
    rxBytes: 0,
    txBytes: 0,
    drops: 0,
  };
  for (const v of vms) {
    byState[v.state]++;
    t.residentBytes += v.residentBytes;
    t.swapIns += v.swapIns;
    t.swapOuts += v.swapOuts;
    t.cpuTimeUs += v.cpuTimeUs;
    t.instructionsRetired += v.instructionsRetired;
    t.exits += v.exits;
    t.rxFrames += v.rxFrames;
    t.txFrames += v.txFrames;
    t.rxBytes += v.rxBytes;
    t.txBytes += v.txBytes;
    t.drops += totalDrops(v.drops);
  }
  const budget = yakima.swapStats().memoryBudget;
  t.memoryBudgetBytes = budget > 0 && Number.isFinite(budget) ? budget : null;
  return t;
}

/** The host as `denali top` shows it (`Host` in openapi.json). CPU times in ms summed over all cores. */
export interface HostInfo {
  cpus: number;
  loadAverage: number[];
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  cpuBusyMs: number;
  cpuTotalMs: number;
  /** This Yakima process: CPU time (µs) and resident memory (bytes). */
  processCpuUs: number;
  processRssBytes: number;
}

/** What the host looks like now (os.cpus, os.loadavg; process.cpuUsage, process.memoryUsage). */
export function hostInfo(): HostInfo {
  const cs = cpus();
  let busy = 0;
  let total = 0;
  for (const c of cs) {
    const t = c.times;
    busy += t.user + t.nice + t.sys + t.irq;
    total += t.user + t.nice + t.sys + t.irq + t.idle;
  }
  const u = process.cpuUsage();
  return {
    cpus: cs.length,
    loadAverage: loadavg(),
    totalMemoryBytes: totalmem(),
    freeMemoryBytes: freemem(),
    cpuBusyMs: busy,
    cpuTotalMs: total,
    processCpuUs: u.user + u.system,
    processRssBytes: process.memoryUsage.rss(),
  };
}
