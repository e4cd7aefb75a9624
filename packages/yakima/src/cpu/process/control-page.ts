/**
 * The control page shared by Yakima and a tender (layout: tender/control.h — keep in step).
 * Guest code can write this page (it can leave compatibility mode inside its own process), so
 * everything read here is hostile input: each field is read exactly once into a snapshot,
 * every number is bounded, and an unknown kind or cause becomes a fault of that VM only.
 */
import type { FaultCause, VcpuExit, VcpuRegs } from '../vcpu.js';

/** Byte offsets in the control page. */
export const CTL = {
  STATE: 0x00,
  KIND: 0x04,
  PORT: 0x08,
  VALUE: 0x0c,
  SIZE: 0x10,
  CAUSE: 0x14,
  TRAPNO: 0x18,
  ERR: 0x1c,
  ADDR: 0x20,
  SIGNO: 0x24,
  EXITS: 0x28,
  SLEEPING: 0x2c,
  /** Written by Yakima with every resume: 1 lets the tender spin on its next reply (tender.c). */
  REPLY_SPIN: 0x30,
  /** Exits on whose reply the tender spun (written by the tender: statistics only). */
  REPLY_SPINS: 0x34,
  REGS: 0x40,
  EIP: 0x60,
  EFLAGS: 0x64,
  REPLY_REGS: 0x80,
  REPLY_EIP: 0xa0,
  REPLY_EFLAGS: 0xa4,
  REPLY_FLAGS: 0xa8,
  MESSAGE: 0x100,
  MESSAGE_MAX: 128,
  /** The guest's x87/SSE state at the last exit, FXSAVE layout (Intel SDM vol. 1, 10.5.1). */
  FPU: 0x200,
  /** The x87/SSE state to load on the next resume when REPLY_FLAGS has REPLY_LOAD_FPU. */
  REPLY_FPU: 0x400,
  FPU_BYTES: 512,
  BYTES: 4096,
} as const;

/** `state` values: the tender owns the page / an exit is posted and Yakima owns it. */
export const STATE_GUEST = 0;
export const STATE_POSTED = 1;

/** `reply_flags` bit: load REPLY_FPU into the guest on this resume (the tender clears it). */
export const REPLY_LOAD_FPU = 1;

export const EXIT = { READY: 1, IO_OUT: 2, HALT: 3, QUANTUM: 4, FAULT: 5 } as const;

const CAUSES: Record<number, [FaultCause, string]> = {
  1: ['memory', 'access outside the guest-accessible memory'],
  2: ['memory', 'access past the end of guest memory (segment limit)'],
  3: ['invalid-opcode', 'the processor raised #UD'],
  4: ['divide-error', 'divide error (#DE)'],
  5: ['deprecated-instruction', 'privileged or deprecated instruction'],
  6: ['general-protection', 'general protection fault'],
  7: ['deprecated-instruction', 'guest code left its 32-bit segments (far jump, far call or segment load)'],
  8: ['general-protection', 'unmasked floating-point exception'],
};

/** What a posted exit says, after validation; `regs` are the registers at the exit. */
export interface PostedExit {
  kind: number;
  exit: VcpuExit | undefined;
  regs: VcpuRegs;
}

const hex = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0');

/**
 * Read one posted exit. Each field is read once; the result never depends on the page
 * changing under us. `bytesAt(eip)` returns up to 15 instruction bytes for fault reports.
 * Kind READY yields `exit: undefined`; an unknown kind yields an 'unknown-exit' fault.
 */
export function readPostedExit(dv: DataView, bytesAt: (eip: number) => Uint8Array): PostedExit {
  const kind = dv.getUint32(CTL.KIND, true);
  const gpr = new Array<number>(8);
  for (let i = 0; i < 8; i++) gpr[i] = dv.getUint32(CTL.REGS + 4 * i, true);
  const eip = dv.getUint32(CTL.EIP, true);
  const regs: VcpuRegs = { gpr, eip, eflags: dv.getUint32(CTL.EFLAGS, true) };
  switch (kind) {
    case EXIT.READY:
      return { kind, exit: undefined, regs };
    case EXIT.QUANTUM:
      return { kind, exit: { kind: 'quantum' }, regs };
    case EXIT.HALT:
      return { kind, exit: { kind: 'halt' }, regs };
    case EXIT.IO_OUT: {
      const size = dv.getUint32(CTL.SIZE, true);
      const port = dv.getUint32(CTL.PORT, true) & 0xffff;
      const raw = dv.getUint32(CTL.VALUE, true);
      if (size !== 1 && size !== 2 && size !== 4) {
        return { kind, exit: fault('unknown-exit', `control page: bad out size ${size}`, eip, bytesAt), regs };
      }
      const value = size === 4 ? raw : raw & (size === 1 ? 0xff : 0xffff);
      return { kind, exit: { kind: 'io-out', port, value, size }, regs };
    }
    case EXIT.FAULT: {
      const causeCode = dv.getUint32(CTL.CAUSE, true);
      const addr = dv.getUint32(CTL.ADDR, true);
      const trapno = dv.getUint32(CTL.TRAPNO, true) & 0xff;
      const c = CAUSES[causeCode];
      if (!c) return { kind, exit: fault('unknown-exit', `control page: unknown fault cause ${causeCode}`, eip, bytesAt), regs };
      let detail = c[1];
      if (causeCode === 1) detail = `access at ${hex(addr)} (page 0, the read-only page, or outside memory)`;
      if (causeCode === 7) detail = `${c[1]}: CS ${hex(addr & 0xffff).slice(6)}`;
      const f = fault(c[0], `${detail} [vector ${trapno}]`, eip, bytesAt);
      if (causeCode === 1) f.address = addr;
      return { kind, exit: f, regs };
    }
    default:
      return { kind, exit: fault('unknown-exit', `control page: unknown exit kind ${kind}`, eip, bytesAt), regs };
  }
}

function fault(cause: FaultCause, detail: string, eip: number, bytesAt: (eip: number) => Uint8Array): VcpuExit & { kind: 'fault' } {
  return { kind: 'fault', cause, detail, eip, bytes: bytesAt(eip) };
}

/** Write the registers to resume with into the reply area. */
export function writeReply(dv: DataView, regs: VcpuRegs): void {
  for (let i = 0; i < 8; i++) dv.setUint32(CTL.REPLY_REGS + 4 * i, regs.gpr[i]! >>> 0, true);
  dv.setUint32(CTL.REPLY_EIP, regs.eip >>> 0, true);
  dv.setUint32(CTL.REPLY_EFLAGS, regs.eflags >>> 0, true);
}

/** The tender's set-up error message (NUL-terminated, at most MESSAGE_MAX bytes, printable ASCII only). */
export function readMessage(u8: Uint8Array): string {
  let s = '';
  for (let i = 0; i < CTL.MESSAGE_MAX; i++) {
    const b = u8[CTL.MESSAGE + i]!;
    if (b === 0) break;
    s += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '?';
  }
  return s;
}
