import { freemem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { formatBytes } from './format.js';

/** Host memory (MemAvailable, bytes) below which no more VMs are booted. */
export const MIN_FREE_HOST_MEMORY = 1.5 * 2 ** 30;

/** Share of the V8 heap limit beyond which no more VMs are booted (V8 aborts the process past 100%). */
export const MAX_HEAP_SHARE = 0.85;

/**
 * Why booting more VMs now would risk the host or this process, or undefined when it is safe:
 * Yakima is not keeping to its memory budget (the process holds over 4× the budget, and at
 * least 2 GiB more, with no VM swapped out: a Yakima without swapping), the host is nearly out
 * of memory (the OOM killer would pick a process, maybe not ours), or the V8 heap is nearly
 * full (per-VM JavaScript objects; V8 would abort the process).
 * @param budget Yakima's memory budget, bytes.
 * @param swappedVms VMs swapped out now.
 * @param slack bytes over the budget always allowed before the first swap-out (default 2 GiB).
 */
export function hostMemoryProblem(budget: number, swappedVms: number, slack = 2 * 2 ** 30): string | undefined {
  const rss = process.memoryUsage.rss();
  if (swappedVms === 0 && rss > Math.max(4 * budget, budget + slack)) {
    return `Yakima is not keeping to the memory budget (host RSS ${formatBytes(rss)}, no VM swapped out)`;
  }
  const free = freemem();
  if (free < MIN_FREE_HOST_MEMORY) return `the host has only ${formatBytes(free)} of memory left`;
  const h = getHeapStatistics();
  if (h.used_heap_size > MAX_HEAP_SHARE * h.heap_size_limit) {
    return `the V8 heap is nearly full (${formatBytes(h.used_heap_size)} of ${formatBytes(h.heap_size_limit)})`;
  }
  return undefined;
}
