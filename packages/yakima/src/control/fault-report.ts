import type { FaultCause } from '../cpu/vcpu.js';

/** Why a VM was stopped by Yakima, with everything needed for its one-line report. */
export interface FaultReport {
  vmId: number;
  vmName: string;
  cause: FaultCause;
  /** Short human explanation, e.g. "write of 4 bytes at 0x00000000". */
  detail: string;
  /** Guest address of the faulting instruction. */
  eip: number;
  /** Up to 15 bytes of the faulting instruction (fewer if memory ends). */
  bytes: Uint8Array;
}

const hex8 = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0');

/**
 * The one-line report printed when a VM faults: VM, EIP, cause, instruction bytes.
 * Example: `vm hello#1 faulted at eip 0x00100a3c: memory (write of 4 bytes at 0x00000000) [89 04 24 00]`.
 */
export function formatFault(r: FaultReport): string {
  const bytes = Array.from(r.bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const detail = r.detail ? ` (${r.detail})` : '';
  return `vm ${r.vmName}#${r.vmId} faulted at eip ${hex8(r.eip)}: ${r.cause}${detail} [${bytes}]`;
}
