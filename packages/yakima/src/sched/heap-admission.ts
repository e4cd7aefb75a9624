import { getHeapStatistics } from 'node:v8';

/**
 * Thrown when Yakima refuses new work because its V8 heap could not hold it: better one clear
 * line than V8's "JavaScript heap out of memory" abort, which loses every VM of the instance.
 */
export class CapacityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CapacityError';
  }
}

/**
 * JavaScript heap one VM is assumed to need once it has run a while (its objects, decoded and
 * compiled blocks), in bytes. Measured: ~130 KiB at boot, ~270 KiB after a few quanta of a
 * small C guest; the margin is for bigger guests.
 */
export const VM_HEAP_ESTIMATE = 512 * 1024;

/** Share of the heap limit new VMs may fill; the rest is headroom for the VMs already running. */
export const ADMIT_FRACTION = 0.75;

/** Share of the heap limit past which Yakima stops all VMs rather than let V8 abort. */
export const EMERGENCY_FRACTION = 0.92;

const MiB = 1024 * 1024;

/** Heap numbers in MiB (rounded) for messages. */
function heapText(used: number, limit: number): string {
  return `${Math.round(used / MiB)} of its ${Math.round(limit / MiB)} MiB limit`;
}

/** Advice that ends every capacity message. */
const ADVICE = 'run fewer VMs per instance, or raise the limit with NODE_OPTIONS=--max-old-space-size=<MiB>';

/**
 * Admission control for one Yakima instance: before a VM is created, refuse it when the heap
 * would pass `ADMIT_FRACTION` of V8's limit (`v8.getHeapStatistics()`, Node API docs). The
 * heap is projected as the larger of what is in use now and the instance's starting heap plus
 * `VM_HEAP_ESTIMATE` per VM — VMs booted a moment ago have not grown to their size yet.
 */
export class HeapAdmission {
  private readonly base: number;

  constructor(stats = getHeapStatistics()) {
    this.base = stats.used_heap_size;
  }

  /**
   * @param vmName the VM being added; `liveVms` how many run already.
   * @throws CapacityError naming the VM, the heap use and what to do.
   */
  admit(vmName: string, liveVms: number, stats = getHeapStatistics()): void {
    const limit = stats.heap_size_limit;
    const projected = Math.max(stats.used_heap_size, this.base + liveVms * VM_HEAP_ESTIMATE) + VM_HEAP_ESTIMATE;
    if (projected <= limit * ADMIT_FRACTION) return;
    throw new CapacityError(
      `not enough memory for VM ${vmName}: Yakima's JavaScript heap would hold ${heapText(projected, limit)} with ${liveVms + 1} VMs; ${ADVICE}`,
    );
  }
}

/** One-off form of `HeapAdmission.admit` for an instance whose starting heap is `stats`' own. */
export function admitVm(vmName: string, liveVms: number, stats = getHeapStatistics()): void {
  new HeapAdmission({ ...stats, used_heap_size: 0 }).admit(vmName, liveVms, stats);
}

/**
 * Watchdog for a running instance: a reason to stop every VM in order when the heap is past
 * `EMERGENCY_FRACTION` of its limit (V8 would abort soon), else undefined.
 */
export function heapEmergency(stats = getHeapStatistics()): string | undefined {
  const limit = stats.heap_size_limit;
  const used = stats.used_heap_size;
  if (used <= limit * EMERGENCY_FRACTION) return undefined;
  return `out of memory: Yakima's JavaScript heap holds ${heapText(used, limit)}; stopping all VMs (${ADVICE})`;
}
