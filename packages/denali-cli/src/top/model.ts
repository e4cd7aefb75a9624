import type { InstanceInfo, VmCounters } from '../control/client.js';

/** The counters a table row shows (`GET /v1/vms?fields=…`: half the bytes of all of them). */
export const SUMMARY_FIELDS = ['state', 'residentBytes', 'cpuTimeUs', 'instructionsRetired', 'exits', 'rxBytes', 'txBytes', 'drops', 'swapIns', 'uptimeSeconds'] as const;

/** A VM as the table polls it: id, name and `SUMMARY_FIELDS`. */
export type VmSummary = Pick<VmCounters, 'id' | 'name' | (typeof SUMMARY_FIELDS)[number]>;

/** One poll of an instance: its info, its VMs, and when it was taken (`performance.now()`, ms). */
export interface Sample {
  instance: InstanceInfo;
  vms: VmSummary[];
  at: number;
}

/** A VM as a table row: its counters and the rates since the previous sample (per second). */
export interface Row {
  vm: VmSummary;
  /** Host CPU time share over the last interval, % of one core. */
  cpuPct: number;
  /** Instructions retired per second (emulator) or VM exits per second (KVM). */
  workPerSec: number;
  rxPerSec: number;
  txPerSec: number;
  drops: number;
}

/** Header numbers over the last interval, plus their history for sparklines. */
export interface Summary {
  /** Whole-host CPU busy, % of all cores; Yakima's share, % of one core. */
  hostCpuPct: number;
  yakimaCpuPct: number;
  swapInsPerSec: number;
  framesPerSec: number;
}

/** Table columns, in display order; `key` is also the sort key. */
export const COLUMNS = [
  { key: 'name', title: 'NAME', width: 0 },
  { key: 'state', title: 'STATE', width: 8 },
  { key: 'cpu', title: 'CPU%', width: 6 },
  { key: 'work', title: 'INSTR/s', width: 7 },
  { key: 'mem', title: 'MEM', width: 6 },
  { key: 'rx', title: 'RX/s', width: 6 },
  { key: 'tx', title: 'TX/s', width: 6 },
  { key: 'drops', title: 'DROPS', width: 5 },
  { key: 'swapins', title: 'SWPIN', width: 5 },
  { key: 'uptime', title: 'UPTIME', width: 7 },
] as const;

export type SortKey = (typeof COLUMNS)[number]['key'];

/** Samples of history kept for the header sparklines (one a refresh: about a minute). */
export const HISTORY = 60;

/** Every drop reason the instance reports, so a reason added to the API is never left out of the column. */
const sumDrops = (v: VmSummary): number => Object.values(v.drops).reduce((a, n) => a + n, 0);

/**
 * Rows with rates over the interval from `prev` to `cur`. A VM new in `cur` has rates over its
 * whole life. `kvm` selects exits/s instead of instructions/s.
 */
export function computeRows(prev: Sample | undefined, cur: Sample): Row[] {
  const before = new Map<number, VmSummary>();
  for (const v of prev?.vms ?? []) before.set(v.id, v);
  const dtSec = prev ? Math.max(1e-3, (cur.at - prev.at) / 1000) : 0;
  const kvm = cur.instance.backend === 'kvm';
  const rows: Row[] = new Array(cur.vms.length);
  for (let i = 0; i < cur.vms.length; i++) {
    const v = cur.vms[i]!;
    const p = before.get(v.id);
    const dt = p && dtSec > 0 ? dtSec : Math.max(1e-3, v.uptimeSeconds);
    const work = kvm ? v.exits - (p?.exits ?? 0) : v.instructionsRetired - (p?.instructionsRetired ?? 0);
    rows[i] = {
      vm: v,
      cpuPct: Math.max(0, ((v.cpuTimeUs - (p?.cpuTimeUs ?? 0)) / 1e6 / dt) * 100),
      workPerSec: Math.max(0, work / dt),
      rxPerSec: Math.max(0, (v.rxBytes - (p?.rxBytes ?? 0)) / dt),
      txPerSec: Math.max(0, (v.txBytes - (p?.txBytes ?? 0)) / dt),
      drops: sumDrops(v),
    };
  }
  return rows;
}

/** Header rates between two samples (zeros for the first). */
export function summarize(prev: Sample | undefined, cur: Sample): Summary {
  if (!prev) return { hostCpuPct: 0, yakimaCpuPct: 0, swapInsPerSec: 0, framesPerSec: 0 };
  const dt = Math.max(1e-3, (cur.at - prev.at) / 1000);
  const h = cur.instance.host;
  const ph = prev.instance.host;
  const busy = h.cpuBusyMs - ph.cpuBusyMs;
  const total = h.cpuTotalMs - ph.cpuTotalMs;
  const t = cur.instance.totals;
  const pt = prev.instance.totals;
  return {
    hostCpuPct: total > 0 ? Math.min(100, Math.max(0, (busy / total) * 100)) : 0,
    yakimaCpuPct: Math.max(0, ((h.processCpuUs - ph.processCpuUs) / 1e6 / dt) * 100),
    swapInsPerSec: Math.max(0, (t.swapIns - pt.swapIns) / dt),
    framesPerSec: Math.max(0, (t.rxFrames + t.txFrames - pt.rxFrames - pt.txFrames) / dt),
  };
}

/** Sort value of a row for a column. */
function sortValue(r: Row, key: SortKey): number | string {
  switch (key) {
    case 'name':
      return r.vm.name;
    case 'state':
      return r.vm.state;
    case 'cpu':
      return r.cpuPct;
    case 'work':
      return r.workPerSec;
    case 'mem':
      return r.vm.residentBytes;
    case 'rx':
      return r.rxPerSec;
    case 'tx':
      return r.txPerSec;
    case 'drops':
      return r.drops;
    case 'swapins':
      return r.vm.swapIns;
    case 'uptime':
      return r.vm.uptimeSeconds;
  }
}

/**
 * Rows whose VM name contains `filter` or whose state is `filter` (case-insensitive), sorted
 * by `key` (numbers biggest first, text A→Z; `reverse` flips), ties by VM id.
 */
export function arrange(rows: Row[], key: SortKey, reverse: boolean, filter: string): Row[] {
  const f = filter.trim().toLowerCase();
  const kept = f === '' ? rows.slice() : rows.filter((r) => r.vm.name.toLowerCase().includes(f) || r.vm.state === f);
  const numeric = key !== 'name' && key !== 'state';
  const dir = reverse ? -1 : 1;
  kept.sort((a, b) => {
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    let c = numeric ? (y as number) - (x as number) : (x as string) < (y as string) ? -1 : x > y ? 1 : 0;
    if (c === 0) c = a.vm.id - b.vm.id;
    return c * dir;
  });
  return kept;
}

/** Append to a bounded history. */
export function pushHistory(h: number[], value: number): number[] {
  const next = h.length >= HISTORY ? h.slice(h.length - HISTORY + 1) : h.slice();
  next.push(value);
  return next;
}
