/**
 * Find the instruction that caused an MMIO write exit. KVM completes an emulated write before
 * it exits to user space, so EIP is already past the instruction; the fault report wants the
 * instruction itself (like the emulator's). Candidates ending exactly at EIP are decoded with
 * the emulator's decoder and kept when their memory operand (with the current registers)
 * addresses the faulting location, or when they write it implicitly (push, call, stos, movs).
 */
import type { GuestMemory } from '../../boot/guest-memory.js';
import { decodeInstr } from '../emu/decoder.js';
import type { Instr } from '../emu/instr.js';
import { Reg } from '../vcpu.js';

/** Start address of the write instruction that ends at `eipAfter` and wrote `address`, if found. */
export function locateWriter(mem: GuestMemory, eipAfter: number, address: number, gpr: readonly number[]): number | undefined {
  let explicit: number | undefined;
  let implicit: number | undefined;
  // Longest first: with several matches the longest one includes its prefixes.
  for (let len = 15; len >= 1; len--) {
    const start = eipAfter - len;
    if (!mem.canRead(start, len)) continue;
    let i: Instr;
    try {
      i = decodeInstr(mem, start);
    } catch {
      continue;
    }
    if (i.spec === null || i.len !== len) continue;
    const name = i.spec.mnemonic;
    if (i.mem && near(effectiveAddress(i, gpr), address, 16)) explicit ??= start;
    else if (/^(push|call|enter)/.test(name) && near(gpr[Reg.ESP]!, address, 64)) implicit ??= start;
    else if (/^(stos|movs)/.test(name) && near(gpr[Reg.EDI]!, address, 16)) implicit ??= start;
  }
  return explicit ?? implicit;
}

function near(a: number, b: number, within: number): boolean {
  return ((a - b) >>> 0) <= within || ((b - a) >>> 0) <= within;
}

/** The ModRM/moffs effective address of a decoded instruction (flat segments). */
function effectiveAddress(i: Instr, gpr: readonly number[]): number {
  switch (i.eaKind) {
    case 0:
      return i.disp >>> 0;
    case 1:
      return (gpr[i.base]! + i.disp) >>> 0;
    case 2:
      return (gpr[i.base]! + gpr[i.index]! * (1 << i.scale) + i.disp) >>> 0;
    default:
      return (gpr[i.index]! * (1 << i.scale) + i.disp) >>> 0;
  }
}
