import type { EmuCpu } from './cpu.js';
import { fault } from './fault.js';
import type { Instr } from './instr.js';

/**
 * Instructions that talk to the VMM or describe the CPU: out (hypercalls), hlt, cpuid, rdtsc,
 * and the deprecated privileged/non-virtualizable instructions of Denali (paper 3.1.2).
 */

/** out imm8/dx, AL/AX/EAX (E6, E7, EE, EF): EIP is already past the instruction. */
export function out(c: EmuCpu, i: Instr): void {
  const port = i.opcode === 0xe6 || i.opcode === 0xe7 ? i.imm : c.r16[4];
  const size = i.opsize as 1 | 2 | 4;
  const value = size === 4 ? c.regs[0] >>> 0 : size === 2 ? c.r16[0] : c.r8[0];
  c.eip = i.next;
  c.exitWith({ kind: 'io-out', port, value, size });
}

/** hlt (F4): terminates the VM (paper 3.2). */
export function hlt(c: EmuCpu, i: Instr): void {
  c.eip = i.next;
  c.exitWith({ kind: 'halt' });
}

/** Vendor string reported by cpuid leaf 0 (12 ASCII bytes, in EBX, EDX, ECX order). */
export const CPUID_VENDOR = 'DenaliEmuCPU';
/** cpuid leaf 1 EDX: FPU, TSC, CX8, CMOV, SSE, SSE2 (SDM vol. 2A, CPUID table 3-11). */
export const CPUID_1_EDX = (1 << 0) | (1 << 4) | (1 << 8) | (1 << 15) | (1 << 25) | (1 << 26);
/** cpuid leaf 1 EAX: family 6, model 3, stepping 3 (a Pentium II-class i686 signature). */
export const CPUID_1_EAX = 0x0633;

function ascii4(s: string, at: number): number {
  return s.charCodeAt(at) | (s.charCodeAt(at + 1) << 8) | (s.charCodeAt(at + 2) << 16) | (s.charCodeAt(at + 3) << 24);
}

/** cpuid (0F A2): leaf 0 vendor, leaf 1 i686 + SSE + SSE2; every other leaf returns zeros. */
export function cpuid(c: EmuCpu, _i: Instr): void {
  const R = c.regs;
  const leaf = R[0] >>> 0;
  if (leaf === 0) {
    R[0] = 1;
    R[3] = ascii4(CPUID_VENDOR, 0);
    R[2] = ascii4(CPUID_VENDOR, 4);
    R[1] = ascii4(CPUID_VENDOR, 8);
  } else if (leaf === 1) {
    R[0] = CPUID_1_EAX;
    R[3] = 0;
    R[1] = 0;
    R[2] = CPUID_1_EDX;
  } else {
    R[0] = R[1] = R[2] = R[3] = 0;
  }
}

/** rdtsc (0F 31): EDX:EAX = instructions retired before this one. */
export function rdtsc(c: EmuCpu, i: Instr): void {
  const n = c.retired + i.idx;
  c.regs[0] = n % 0x100000000;
  c.regs[2] = Math.floor(n / 0x100000000);
}

/** ud2 (0F 0B) and other defined-invalid opcodes. */
export function ud(_c: EmuCpu, i: Instr): void {
  fault('invalid-opcode', `${i.spec?.mnemonic ?? 'undefined opcode'} raises #UD`);
}

/** Privileged or non-virtualizable instructions that Denali deprecates (paper 3.1.2). */
export function deprecated(_c: EmuCpu, i: Instr): void {
  fault('deprecated-instruction', `${i.spec?.mnemonic ?? 'instruction'} is deprecated in Denali`);
}
