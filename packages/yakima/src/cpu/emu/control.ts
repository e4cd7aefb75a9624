import type { EmuCpu } from './cpu.js';
import type { Instr } from './instr.js';
import { STOP_BRANCH } from './stop.js';

/**
 * Control transfer: jcc, jmp, call, ret, loop, jecxz (Intel SDM vol. 2). Branch records carry
 * the absolute target in `imm`; EIP was already set to the fall-through by the run loop.
 */

/** jcc rel8/rel32 (70+cc, 0F 80+cc): sub = condition code. */
export function jcc(c: EmuCpu, i: Instr): void {
  if (c.cond(i.sub)) c.eip = i.imm;
}

/**
 * jcc in the middle of a block (a side exit): the block decoder keeps decoding past a
 * conditional branch along its fall-through, so a taken branch must also leave the block.
 */
export function jccSide(c: EmuCpu, i: Instr): void {
  if (c.cond(i.sub)) {
    c.eip = i.imm;
    c.stop |= STOP_BRANCH;
  }
}

/** jmp rel8/rel32 (EB, E9). */
export function jmpRel(c: EmuCpu, i: Instr): void {
  c.eip = i.imm;
}

/** jmp r/m (FF /4). */
export function jmpE(c: EmuCpu, i: Instr): void {
  const t = c.rdE(i);
  c.eip = i.opsize === 2 ? t & 0xffff : t;
}

/** call rel32 (E8). */
export function callRel(c: EmuCpu, i: Instr): void {
  c.pushSz(i.next, i.opsize);
  c.eip = i.imm;
}

/** call r/m (FF /2): the target is read before the return address is pushed. */
export function callE(c: EmuCpu, i: Instr): void {
  const t = c.rdE(i);
  c.pushSz(i.next, i.opsize);
  c.eip = i.opsize === 2 ? t & 0xffff : t;
}

/** ret and ret imm16 (C3, C2). */
export function ret(c: EmuCpu, i: Instr): void {
  const t = c.popSz(i.opsize);
  c.eip = i.opsize === 2 ? t & 0xffff : t;
  if (i.opcode === 0xc2) c.regs[4] = (c.regs[4] + i.imm) | 0;
}

/** ret without operands, 32-bit (the common case). */
export function ret32(c: EmuCpu, _i: Instr): void {
  const sp = c.regs[4];
  c.eip = c.rd32(sp);
  c.regs[4] = sp + 4;
}

/** call rel32, 32-bit. */
export function call32(c: EmuCpu, i: Instr): void {
  const sp = (c.regs[4] - 4) | 0;
  c.wr32(sp, i.next);
  c.regs[4] = sp;
  c.eip = i.imm;
}

/** loop/loope/loopne/jecxz (E2, E1, E0, E3): ECX is the counter (32-bit addressing only). */
export function loop(c: EmuCpu, i: Instr): void {
  if (i.opcode === 0xe3) {
    if (c.regs[1] === 0) c.eip = i.imm;
    return;
  }
  const n = (c.regs[1] - 1) | 0;
  c.regs[1] = n;
  let take = n !== 0;
  if (i.opcode === 0xe1) take = take && c.getZF() === 1;
  else if (i.opcode === 0xe0) take = take && c.getZF() === 0;
  if (take) c.eip = i.imm;
}
