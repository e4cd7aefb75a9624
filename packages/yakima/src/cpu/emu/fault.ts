import type { FaultCause } from '../vcpu.js';

/**
 * Thrown by handlers and memory accessors to stop the vCPU. Caught only by `EmuCpu.run`,
 * which turns it into a `{kind:'fault'}` exit at the faulting instruction. Not an `Error`:
 * faults are ordinary guest events and need no stack trace.
 */
export class CpuFault {
  constructor(
    readonly cause: FaultCause,
    readonly detail: string,
    /** Bad guest address for 'memory' faults. */
    readonly address?: number,
  ) {}
}

/** Throw a fault (typed `never` so callers need no dead code after it). */
export function fault(cause: FaultCause, detail: string, address?: number): never {
  throw new CpuFault(cause, detail, address);
}
