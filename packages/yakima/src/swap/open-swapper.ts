/** Choosing the swap manager of a Yakima instance from its options. */
import { defaultMemoryBudget } from '../memory/accounting.js';
import { createMemfd } from '../memory/native.js';
import { closeSync } from 'node:fs';
import { FileSwapStore, type SwapStore } from './swap-area.js';
import { DEFAULT_MAX_RESIDENT_VMS, Swapper, type SwapHost } from './swapper.js';

/** Swap options of `YakimaOptions`. */
export interface SwapOptions {
  /** Host bytes all VMs may hold; default `defaultMemoryBudget()` (half the available memory). */
  memoryBudget?: number;
  /** Parent directory of the swap area; default `defaultSwapParent()` (the user's cache directory). */
  swapDir?: string;
  /** Most VMs resident at once, even under the budget; default `DEFAULT_MAX_RESIDENT_VMS`. */
  maxResidentVms?: number;
  /** Where records go instead of files (tests simulate failing disks with it). */
  swapStore?: SwapStore;
}

/**
 * The swap manager, or undefined where guest memory cannot be a shared mapping (not Linux
 * x86-64, koffi missing): VMs then use ordinary ArrayBuffer memory and cannot be swapped.
 * @throws RangeError for a memory budget that is not a positive number of bytes, or a resident cap below 1.
 */
export function openSwapper(opts: SwapOptions, host: SwapHost): Swapper | undefined {
  const budget = opts.memoryBudget ?? defaultMemoryBudget();
  if (!Number.isFinite(budget) || budget <= 0) throw new RangeError(`memory budget must be a positive number of bytes, got ${budget}`);
  try {
    closeSync(createMemfd('denali-probe'));
  } catch {
    return undefined;
  }
  const max = opts.maxResidentVms ?? DEFAULT_MAX_RESIDENT_VMS;
  if (!(max >= 1)) throw new RangeError(`the most resident VMs must be at least 1, got ${max}`);
  return new Swapper(budget, opts.swapStore ?? new FileSwapStore(opts.swapDir), host, max);
}
