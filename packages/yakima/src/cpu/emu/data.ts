import type { EmuCpu } from './cpu.js';
import { STOP_YIELD } from './stop.js';
import { fault } from './fault.js';
import { CF, DF, GUEST_WRITABLE, IF, LazyOp, SIZE_MASK } from './flags.js';
import type { Instr } from './instr.js';

/**
 * Data movement, stack, string and flag-register instructions (Intel SDM vol. 2).
 */

/** mov r/m, reg (88, 89). */
export function movEG(c: EmuCpu, i: Instr): void {
  const v = c.getReg(i.reg, i.opsize);
  if (i.mem) c.wr(c.ea(i), i.opsize, v);
  else c.setReg(i.rm, i.opsize, v);
}
/** mov reg, r/m (8A, 8B). */
export function movGE(c: EmuCpu, i: Instr): void {
  c.setReg(i.reg, i.opsize, c.rdE(i));
}
/** mov r/m, imm (C6 /0, C7 /0) and mov reg, imm (B0+r, B8+r: decoded with rm = r). */
export function movEI(c: EmuCpu, i: Instr): void {
  if (i.mem) c.wr(c.ea(i), i.opsize, i.imm);
  else c.setReg(i.rm, i.opsize, i.imm);
}
export function mov32rr(c: EmuCpu, i: Instr): void {
  c.regs[i.rm] = c.regs[i.reg];
}
export function mov32rr2(c: EmuCpu, i: Instr): void {
  c.regs[i.reg] = c.regs[i.rm];
}
export function mov32load(c: EmuCpu, i: Instr): void {
  c.regs[i.reg] = c.rd32(c.ea(i));
}
export function mov32store(c: EmuCpu, i: Instr): void {
  c.wr32(c.ea(i), c.regs[i.reg]);
}
export function mov32ri(c: EmuCpu, i: Instr): void {
  c.regs[i.rm] = i.imm;
}
export function mov32mi(c: EmuCpu, i: Instr): void {
  c.wr32(c.ea(i), i.imm);
}
/** Base+disp loads/stores without the EA switch. */
export function mov32loadBD(c: EmuCpu, i: Instr): void {
  c.regs[i.reg] = c.rd32((c.regs[i.base] + i.disp) | 0);
}
export function mov32storeBD(c: EmuCpu, i: Instr): void {
  c.wr32((c.regs[i.base] + i.disp) | 0, c.regs[i.reg]);
}

export function movFast(i: Instr): ((c: EmuCpu, i: Instr) => void) | undefined {
  if (i.opsize !== 4) return undefined;
  switch (i.opcode) {
    case 0x89: return i.mem ? (i.eaKind === 1 ? mov32storeBD : mov32store) : mov32rr;
    case 0x8b: return i.mem ? (i.eaKind === 1 ? mov32loadBD : mov32load) : mov32rr2;
    case 0xc7: return i.mem ? mov32mi : mov32ri;
  }
  if (i.opcode >= 0xb8 && i.opcode <= 0xbf) return mov32ri;
  return undefined;
}

/** mov AL/eAX, moffs and mov moffs, AL/eAX (A0-A3). */
export function movMoffs(c: EmuCpu, i: Instr): void {
  if (i.opcode === 0xa0 || i.opcode === 0xa1) c.setReg(0, i.opsize, c.rd(i.disp, i.opsize));
  else c.wr(i.disp, i.opsize, c.getReg(0, i.opsize));
}

/** movzx/movsx reg, r/m8|r/m16 (0F B6, B7, BE, BF). The source size is in the opcode. */
export function movx(c: EmuCpu, i: Instr): void {
  const wordSrc = i.opcode === 0x1b7 || i.opcode === 0x1bf;
  let v = i.mem ? (wordSrc ? c.rd16(c.ea(i)) : c.rd8(c.ea(i))) : wordSrc ? c.r16[i.rm << 1] : c.getReg(i.rm, 1);
  if (i.opcode >= 0x1be) v = wordSrc ? (v << 16) >> 16 : (v << 24) >> 24;
  c.setReg(i.reg, i.opsize, v);
}
export function movzx8(c: EmuCpu, i: Instr): void {
  c.regs[i.reg] = i.mem ? c.rd8(c.ea(i)) : c.r8[((i.rm & 3) << 2) | (i.rm >> 2)];
}

/** lea reg, m (8D). */
export function lea(c: EmuCpu, i: Instr): void {
  c.setReg(i.reg, i.opsize, c.ea(i));
}
export function lea32(c: EmuCpu, i: Instr): void {
  c.regs[i.reg] = c.ea(i);
}

/** xchg r/m, reg (86, 87) and xchg eAX, reg (91-97, decoded with rm = 0). */
export function xchg(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const r = c.getReg(i.reg, sz);
  if (i.mem) {
    const a = c.ea(i);
    const m = c.rd(a, sz);
    c.wr(a, sz, r);
    c.setReg(i.reg, sz, m);
  } else {
    const m = c.getReg(i.rm, sz);
    c.setReg(i.rm, sz, r);
    c.setReg(i.reg, sz, m);
  }
}

/** nop, multi-byte nop, pause, prefetch hints, fences. */
export function nop(_c: EmuCpu, _i: Instr): void {}

/** push reg (50+r), push imm (68, 6A), push r/m (FF /6). */
export function pushReg(c: EmuCpu, i: Instr): void {
  c.pushSz(c.getReg(i.reg, i.opsize), i.opsize);
}
export function push32r(c: EmuCpu, i: Instr): void {
  const v = c.regs[i.reg];
  const sp = (c.regs[4] - 4) | 0;
  c.wr32(sp, v);
  c.regs[4] = sp;
}
export function pushImm(c: EmuCpu, i: Instr): void {
  c.pushSz(i.imm, i.opsize);
}
export function pushE(c: EmuCpu, i: Instr): void {
  c.pushSz(c.rdE(i), i.opsize);
}
/** pop reg (58+r). */
export function popReg(c: EmuCpu, i: Instr): void {
  const v = c.popSz(i.opsize);
  c.setReg(i.reg, i.opsize, v);
}
export function pop32r(c: EmuCpu, i: Instr): void {
  const sp = c.regs[4];
  const v = c.rd32(sp);
  c.regs[4] = sp + 4;
  c.regs[i.reg] = v;
}
/** pop r/m (8F /0): an ESP-based address is computed after the increment (SDM POP). */
export function popE(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const sp = c.regs[4];
  const v = c.rd(sp, sz);
  if (!i.mem) {
    c.regs[4] = sp + sz;
    c.setReg(i.rm, sz, v);
    return;
  }
  c.regs[4] = sp + sz;
  const a = c.ea(i);
  c.regs[4] = sp;
  c.wr(a, sz, v);
  c.regs[4] = sp + sz;
}

/** pusha/pushad (60). */
export function pusha(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const sp = c.regs[4];
  c.checkWrite((sp - 8 * sz) | 0, 8 * sz);
  for (let r = 0; r < 8; r++) {
    const v = r === 4 ? sp : c.getReg(r, sz);
    c.wr((sp - (r + 1) * sz) | 0, sz, v);
  }
  c.regs[4] = sp - 8 * sz;
}
/** popa/popad (61): the stored ESP is skipped. */
export function popa(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const sp = c.regs[4];
  c.checkRead(sp, 8 * sz);
  for (let r = 7; r >= 0; r--) {
    const v = c.rd((sp + (7 - r) * sz) | 0, sz);
    if (r !== 4) c.setReg(r, sz, v);
  }
  c.regs[4] = sp + 8 * sz;
}

/**
 * pushf/pushfd (9C). IF always reads as 1, as for user-mode code on real hardware: Denali
 * guests cannot mask interrupts with EFLAGS (the virtual INTERRUPT_ENABLE register does that).
 * VM and RF read as 0 in the pushed image.
 */
export function pushf(c: EmuCpu, i: Instr): void {
  c.pushSz((c.getFlags() | IF) & 0x00fcffff, i.opsize);
}
/** popf/popfd (9D): only the arithmetic flags and DF change (Denali: IF, TF, IOPL... are not guest state). */
export function popf(c: EmuCpu, i: Instr): void {
  const v = c.popSz(i.opsize);
  c.writeFlags(v, GUEST_WRITABLE);
}
/** lahf (9F): AH = SF:ZF:0:AF:0:PF:1:CF. */
export function lahf(c: EmuCpu, _i: Instr): void {
  c.r8[1] = (c.getFlags() & 0xd5) | 2;
}
/** sahf (9E). */
export function sahf(c: EmuCpu, _i: Instr): void {
  c.writeFlags(c.r8[1], 0xd5);
}

/** cbw/cwde (98) and cwd/cdq (99). */
export function cbw(c: EmuCpu, i: Instr): void {
  if (i.opsize === 2) c.r16[0] = (c.regs[0] << 24) >> 24;
  else c.regs[0] = (c.regs[0] << 16) >> 16;
}
export function cwd(c: EmuCpu, i: Instr): void {
  if (i.opsize === 2) c.r16[4] = (c.regs[0] << 16) >> 31;
  else c.regs[2] = c.regs[0] >> 31;
}

/** setcc r/m8 (0F 90+cc). */
export function setcc(c: EmuCpu, i: Instr): void {
  const v = c.cond(i.sub) ? 1 : 0;
  if (i.mem) c.wr8(c.ea(i), v);
  else c.r8[((i.rm & 3) << 2) | (i.rm >> 2)] = v;
}
/** cmovcc reg, r/m (0F 40+cc): a memory source is always read (and may fault). */
export function cmovcc(c: EmuCpu, i: Instr): void {
  const v = c.rdE(i);
  if (c.cond(i.sub)) c.setReg(i.reg, i.opsize, v);
}

/** clc/stc/cmc/cld/std (F8, F9, F5, FC, FD). */
export function flagOp(c: EmuCpu, i: Instr): void {
  switch (i.opcode) {
    case 0xf8: c.flags &= ~CF; c.lazy &= ~CF; break;
    case 0xf9: c.flags |= CF; c.lazy &= ~CF; break;
    case 0xf5: { const cf = c.getCF(); c.flags = (c.flags & ~CF) | (cf ^ 1); c.lazy &= ~CF; break; }
    case 0xfc: c.flags &= ~DF; break;
    default: c.flags |= DF;
  }
}

/** enter imm16, imm8 (C8), with nesting levels (SDM ENTER; 32-bit stack). */
export function enter(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const level = i.imm2 & 31;
  const R = c.regs;
  c.pushSz(c.getReg(5, sz), sz);
  const frame = R[4];
  if (level > 0) {
    let bp = R[5];
    for (let k = 1; k < level; k++) {
      bp = (bp - sz) | 0;
      c.pushSz(c.rd(bp, sz), sz);
    }
    c.pushSz(frame, sz);
    R[5] = bp; // the nesting walk really moves EBP (only BP is replaced below for o16)
  }
  c.setReg(5, sz, frame);
  R[4] = (R[4] - i.imm) | 0;
}
/** leave (C9): ESP = EBP, then pop (E)BP. */
export function leave(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const bp = c.regs[5];
  const v = c.rd(bp, sz);
  c.regs[4] = bp + sz;
  c.setReg(5, sz, v);
}

/** xlat (D7): AL = [EBX + AL]. */
export function xlat(c: EmuCpu, _i: Instr): void {
  c.r8[0] = c.rd8((c.regs[3] + c.r8[0]) | 0);
}

/** bound reg, m (62): #BR is reported as 'general-protection'. */
export function bound(c: EmuCpu, i: Instr): void {
  const a = c.ea(i);
  const sz = i.opsize;
  const idx = sz === 4 ? c.regs[i.reg] : (c.r16[i.reg << 1] << 16) >> 16;
  const lo = sz === 4 ? c.rd32(a) : (c.rd16(a) << 16) >> 16;
  const hi = sz === 4 ? c.rd32(a + 4) : (c.rd16(a + 2) << 16) >> 16;
  if (idx < lo || idx > hi) fault('general-protection', 'bound range exceeded (#BR)');
}

// ------------------------------------------------------------------ strings

/** Most iterations of a rep string instruction per execution before it yields (budget). */
export const REP_CHUNK = 1 << 14;
/** Most bytes the bulk rep movs/stos path moves per execution before it yields. */
export const REP_BULK_BYTES = 1 << 20;

/** movs/stos/lods/cmps/scas with optional rep prefixes (A4-A7, AA-AF). sub: 0 movs 1 cmps 2 stos 3 lods 4 scas. */
export function stringOp(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const R = c.regs;
  const delta = c.flags & DF ? -sz : sz;
  const kind = i.sub;
  if (i.rep === 0) {
    stringOnce(c, kind, sz, delta);
    return;
  }
  let n = R[1] >>> 0;
  if (n === 0) return;
  if (kind === 0 || kind === 2) {
    const chunk = Math.min(n, Math.floor(REP_BULK_BYTES / sz));
    if (delta > 0 ? fastForward(c, kind, sz, chunk) : kind === 0 && fastBackward(c, sz, chunk)) {
      n -= chunk;
      R[1] = n;
      if (n !== 0) yieldRep(c, i);
      return;
    }
    let k = 0;
    for (; k < REP_CHUNK && n !== 0; k++) {
      stringOnce(c, kind, sz, delta);
      R[1] = --n;
    }
    if (n !== 0) yieldRep(c, i);
    return;
  }
  if (kind === 3) {
    let k = 0;
    for (; k < REP_CHUNK && n !== 0; k++) {
      stringOnce(c, kind, sz, delta);
      R[1] = --n;
    }
    if (n !== 0) yieldRep(c, i);
    return;
  }
  // cmps/scas: repe (F3) stops on ZF = 0, repne (F2) on ZF = 1.
  const wantZ = i.rep === 0xf3 ? 1 : 0;
  for (let k = 0; k < REP_CHUNK; k++) {
    stringOnce(c, kind, sz, delta);
    R[1] = --n;
    if (n === 0 || c.getZF() !== wantZ) return;
  }
  yieldRep(c, i);
}

/**
 * Leave a rep instruction unfinished: EIP stays on it, it does not count as retired, and the
 * quantum ends (so one huge rep cannot hold the CPU for longer than a chunk).
 */
function yieldRep(c: EmuCpu, i: Instr): void {
  c.eip = i.addr;
  c.retired -= 1;
  c.stop |= STOP_YIELD;
}

function stringOnce(c: EmuCpu, kind: number, sz: number, delta: number): void {
  const R = c.regs;
  switch (kind) {
    case 0: {
      const v = c.rd(R[6], sz);
      c.wr(R[7], sz, v);
      R[6] += delta;
      R[7] += delta;
      return;
    }
    case 1: {
      const a = c.rd(R[6], sz);
      const b = c.rd(R[7], sz);
      R[6] += delta;
      R[7] += delta;
      c.setArith(LazyOp.SUB, a, b, (a - b) | 0, sz, 0);
      return;
    }
    case 2:
      c.wr(R[7], sz, c.getReg(0, sz));
      R[7] += delta;
      return;
    case 3:
      c.setReg(0, sz, c.rd(R[6], sz));
      R[6] += delta;
      return;
    default: {
      const a = c.getReg(0, sz) & SIZE_MASK[sz];
      const b = c.rd(R[7], sz);
      R[7] += delta;
      c.setArith(LazyOp.SUB, a, b, (a - b) | 0, sz, 0);
    }
  }
}

/**
 * Bulk rep movs/stos with DF = 0 when every byte is accessible, no decoded code is
 * overwritten, and (movs) the copy direction cannot observe its own writes.
 * @returns false when the slow per-element loop must run instead.
 */
function fastForward(c: EmuCpu, kind: number, sz: number, n: number): boolean {
  const R = c.regs;
  const len = n * sz;
  const dst = R[7] >>> 0;
  if (len > c.size || dst < 0x2000 || dst + len > c.size) return false;
  for (let p = dst >>> 12; p <= (dst + len - 1) >>> 12; p++) if (c.codePages[p] !== 0) return false;
  if (kind === 0) {
    const src = R[6] >>> 0;
    if (src < 0x1000 || src + len > c.size) return false;
    if (dst > src && dst < src + len) return false;
    c.u8.copyWithin(dst, src, src + len);
    R[6] = src + len;
  } else {
    const v = c.regs[0];
    if (sz === 1 || (v & 0xff) * 0x01010101 === (sz === 2 ? (v & 0xffff) * 0x10001 : v >>> 0)) {
      c.u8.fill(v & 0xff, dst, dst + len);
    } else {
      for (let k = 0; k < n; k++) c.wr(dst + k * sz, sz, v);
    }
  }
  R[7] = dst + len;
  return true;
}

/**
 * Bulk rep movs with DF = 1 (memmove of an overlapping block to a higher address): the
 * elements `[esi - (n-1)*sz, esi + sz)` go to the same span below edi + sz. When dst is not
 * below src, copying downwards never reads a byte it wrote, so one memmove (copyWithin) gives
 * the element loop's result. @returns false when the slow per-element loop must run instead.
 */
function fastBackward(c: EmuCpu, sz: number, n: number): boolean {
  const R = c.regs;
  const len = n * sz;
  const dstEnd = ((R[7] >>> 0) + sz) >>> 0; // one past the highest byte written
  const srcEnd = ((R[6] >>> 0) + sz) >>> 0;
  const dst = dstEnd - len;
  const src = srcEnd - len;
  if (len > c.size || dst < 0x2000 || dstEnd > c.size || src < 0x1000 || srcEnd > c.size || dst < src) return false;
  for (let p = dst >>> 12; p <= (dstEnd - 1) >>> 12; p++) if (c.codePages[p] !== 0) return false;
  c.u8.copyWithin(dst, src, srcEnd);
  R[6] = src - sz;
  R[7] = dst - sz;
  return true;
}
