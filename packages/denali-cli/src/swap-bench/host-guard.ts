import { freemem } from 'node:os';
import { getHeapStatistics } from 'node:v8';
import { formatBytes } from './format.js';

/** Host memory (MemAvailable, bytes) below which no more VMs are booted. */
export const MIN_FREE_HOST_MEMORY = 1.5 * 2 ** 30;

/** Share of the V8 heap limit beyond which no more VMs are booted (V8 aborts the process past 100%). */
export const MAX_HEAP_SHARE = 0.85;

/**
 * Why booting more VMs now would risk the host or this process, or undefined when it is safe:
 * the host is nearly out of memory (a Yakima that keeps every VM resident, e.g. without a
 * working memory budget, would push it into the OOM killer), or the V8 heap is nearly full
 * (per-VM JavaScript objects; V8 would abort the process).
 */
export function hostMemoryProblem(): string | undefined {
  const free = freemem();
  if (free < MIN_FREE_HOST_MEMORY) return `the host has only ${formatBytes(free)} of memory left`;
  const h = getHeapStatistics();
  if (h.used_heap_size > MAX_HEAP_SHARE * h.heap_size_limit) {
    return `the V8 heap is nearly full (${formatBytes(h.used_heap_size)} of ${formatBytes(h.heap_size_limit)})`;
  }
  return undefined;
}
