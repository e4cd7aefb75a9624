/**
 * What Yakima counts as a VM's host memory besides its private guest pages (paper 3.2 and
 * the OSDI version: a swapped-out VM costs 8,472 bytes of kernel memory). Measured with
 * `pnpm bench:swap-core` (heap plus native memory over thousands of VMs, divided by their
 * number); re-measure when the vCPU or device objects change.
 */
import { freemem } from 'node:os';

/** Per-VM objects of a resident VM on the emulator before it decodes any code (vCPU, devices), bytes. */
export const EMU_VM_BASE_BYTES = 48 * 1024;
/** Heap per decoded (and possibly compiled) emulator block, bytes: httpd measured 1.5 KiB. */
export const EMU_BLOCK_BYTES = 1536;
/** What Yakima assumes a VM being booted or swapped in will need besides its pages, bytes. */
export const EMU_VM_STATE_BYTES = EMU_VM_BASE_BYTES + 500 * EMU_BLOCK_BYTES;
/** Per-VM objects of a resident VM on KVM (kvm_run area, fds, devices), bytes. */
export const KVM_VM_STATE_BYTES = 64 * 1024;
/**
 * Per-VM cost of a resident VM on the process backend besides its guest memfd, bytes: its
 * tender process (52 KiB anonymous memory and 52 KiB of page tables in /proc/<pid>/status, a
 * 16 KiB kernel stack) plus Yakima's per-VM objects as on KVM. The tender binary's pages are
 * shared by every tender.
 */
export const PROCESS_VM_STATE_BYTES = 52 * 1024 + 52 * 1024 + 16 * 1024 + KVM_VM_STATE_BYTES;
/** What a swapped-out VM keeps: its Vm object, devices with empty FIFOs, swap slot, bytes (measured 2.35 KiB). */
export const SWAPPED_VM_BYTES = 2560;

/** Share of the host's available memory that the default budget takes. */
export const DEFAULT_BUDGET_SHARE = 0.5;

/** The default memory budget: `DEFAULT_BUDGET_SHARE` of the host's available memory (os.freemem), in bytes. */
export function defaultMemoryBudget(): number {
  return Math.floor(freemem() * DEFAULT_BUDGET_SHARE);
}
