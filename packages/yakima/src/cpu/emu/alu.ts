import type { EmuCpu } from './cpu.js';
import { fault } from './fault.js';
import { AF, ARITH, CF, LazyOp, OF, PF, SF, SIZE_MASK, SIZE_SIGN, ZF } from './flags.js';
import type { Instr } from './instr.js';

/**
 * Integer arithmetic, logic, shifts, multiply/divide and bit instructions
 * (Intel SDM vol. 2A/2B, the individual instruction pages).
 * Convention: 8/16-bit values are unsigned and masked; 32-bit values are int32.
 */

/** ALU operation numbers: the ModRM.reg / opcode bits 3-5 of the 00-3F and 80-83 groups. */
export const ALU_NAMES = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'] as const;

/** Run ALU operation `op` on a, b at operand size `size`; sets flags; returns the raw result. */
export function alu(c: EmuCpu, op: number, a: number, b: number, size: number): number {
  switch (op) {
    case 0: {
      const r = (a + b) | 0;
      c.setArith(LazyOp.ADD, a, b, r, size, 0);
      return r;
    }
    case 1: {
      const r = a | b;
      c.setLogic(r, size);
      return r;
    }
    case 2: {
      const cin = c.getCF();
      const r = (a + b + cin) | 0;
      c.setArith(LazyOp.ADD, a, b, r, size, cin);
      return r;
    }
    case 3: {
      const cin = c.getCF();
      const r = (a - b - cin) | 0;
      c.setArith(LazyOp.SUB, a, b, r, size, cin);
      return r;
    }
    case 4: {
      const r = a & b;
      c.setLogic(r, size);
      return r;
    }
    case 6: {
      const r = a ^ b;
      c.setLogic(r, size);
      return r;
    }
    default: {
      const r = (a - b) | 0;
      c.setArith(LazyOp.SUB, a, b, r, size, 0);
      return r;
    }
  }
}

/** op r/m, reg (00, 01, 08, 09 ...). */
export function aluEG(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const b = c.getReg(i.reg, sz);
  if (i.mem) {
    const a = c.ea(i);
    const r = alu(c, i.sub, c.rd(a, sz), b, sz);
    if (i.sub !== 7) c.wr(a, sz, r);
  } else {
    const r = alu(c, i.sub, c.getReg(i.rm, sz), b, sz);
    if (i.sub !== 7) c.setReg(i.rm, sz, r);
  }
}

/** op reg, r/m (02, 03, 0A, 0B ...). */
export function aluGE(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const r = alu(c, i.sub, c.getReg(i.reg, sz), c.rdE(i), sz);
  if (i.sub !== 7) c.setReg(i.reg, sz, r);
}

/** op r/m, imm (80, 81, 82, 83) and op AL/eAX, imm (04, 05 ...: decoded with rm = 0). */
export function aluEI(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  if (i.mem) {
    const a = c.ea(i);
    const r = alu(c, i.sub, c.rd(a, sz), i.imm, sz);
    if (i.sub !== 7) c.wr(a, sz, r);
  } else {
    const r = alu(c, i.sub, c.getReg(i.rm, sz), i.imm, sz);
    if (i.sub !== 7) c.setReg(i.rm, sz, r);
  }
}

// Specialized 32-bit register forms (the bulk of gcc -O2 integer code).
export function add32rr(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.rm], b = c.regs[i.reg], r = (a + b) | 0;
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.ADD; c.la = a; c.lb = b; c.lr = r; c.lsz = 4; c.lcin = 0;
}
export function sub32rr(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.rm], b = c.regs[i.reg], r = (a - b) | 0;
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.SUB; c.la = a; c.lb = b; c.lr = r; c.lsz = 4; c.lcin = 0;
}
export function cmp32rr(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.rm], b = c.regs[i.reg];
  c.lazy = ARITH; c.lop = LazyOp.SUB; c.la = a; c.lb = b; c.lr = (a - b) | 0; c.lsz = 4; c.lcin = 0;
}
export function and32rr(c: EmuCpu, i: Instr): void {
  const r = c.regs[i.rm] & c.regs[i.reg];
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.LOGIC; c.lr = r; c.lsz = 4;
}
export function or32rr(c: EmuCpu, i: Instr): void {
  const r = c.regs[i.rm] | c.regs[i.reg];
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.LOGIC; c.lr = r; c.lsz = 4;
}
export function xor32rr(c: EmuCpu, i: Instr): void {
  const r = c.regs[i.rm] ^ c.regs[i.reg];
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.LOGIC; c.lr = r; c.lsz = 4;
}
export function add32ri(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.rm], b = i.imm, r = (a + b) | 0;
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.ADD; c.la = a; c.lb = b; c.lr = r; c.lsz = 4; c.lcin = 0;
}
export function sub32ri(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.rm], b = i.imm, r = (a - b) | 0;
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.SUB; c.la = a; c.lb = b; c.lr = r; c.lsz = 4; c.lcin = 0;
}
export function cmp32ri(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.rm], b = i.imm;
  c.lazy = ARITH; c.lop = LazyOp.SUB; c.la = a; c.lb = b; c.lr = (a - b) | 0; c.lsz = 4; c.lcin = 0;
}
export function and32ri(c: EmuCpu, i: Instr): void {
  const r = c.regs[i.rm] & i.imm;
  c.regs[i.rm] = r;
  c.lazy = ARITH; c.lop = LazyOp.LOGIC; c.lr = r; c.lsz = 4;
}
export function add32rm(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.reg], b = c.rd32(c.ea(i)), r = (a + b) | 0;
  c.regs[i.reg] = r;
  c.lazy = ARITH; c.lop = LazyOp.ADD; c.la = a; c.lb = b; c.lr = r; c.lsz = 4; c.lcin = 0;
}
export function cmp32rm(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.reg], b = c.rd32(c.ea(i));
  c.lazy = ARITH; c.lop = LazyOp.SUB; c.la = a; c.lb = b; c.lr = (a - b) | 0; c.lsz = 4; c.lcin = 0;
}
export function cmp32mr(c: EmuCpu, i: Instr): void {
  const a = c.rd32(c.ea(i)), b = c.regs[i.reg];
  c.lazy = ARITH; c.lop = LazyOp.SUB; c.la = a; c.lb = b; c.lr = (a - b) | 0; c.lsz = 4; c.lcin = 0;
}
export function cmp32mi(c: EmuCpu, i: Instr): void {
  const a = c.rd32(c.ea(i)), b = i.imm;
  c.lazy = ARITH; c.lop = LazyOp.SUB; c.la = a; c.lb = b; c.lr = (a - b) | 0; c.lsz = 4; c.lcin = 0;
}

/** Pick a specialized executor for ALU forms. */
export function aluFast(i: Instr): ((c: EmuCpu, i: Instr) => void) | undefined {
  if (i.opsize !== 4) return undefined;
  const op = i.opcode;
  const kind = op < 0x40 ? op & 7 : -1;
  if (kind === 1 && !i.mem) return ([add32rr, or32rr, undefined, undefined, and32rr, sub32rr, xor32rr, cmp32rr] as const)[i.sub];
  if (kind === 3) {
    if (!i.mem) {
      // op reg, reg through the 03 form: swap roles so the rr helpers apply (dst = reg).
      return undefined;
    }
    if (i.sub === 0) return add32rm;
    if (i.sub === 7) return cmp32rm;
  }
  if (kind === 1 && i.mem && i.sub === 7) return cmp32mr;
  if ((op === 0x81 || op === 0x83) && !i.mem) return ([add32ri, undefined, undefined, undefined, and32ri, sub32ri, undefined, cmp32ri] as const)[i.sub];
  if ((op === 0x81 || op === 0x83) && i.mem && i.sub === 7) return cmp32mi;
  return undefined;
}

/** test r/m, reg (84, 85) and test r/m, imm (F6/F7 /0, A8, A9 with rm = 0 and imm). */
export function testEG(c: EmuCpu, i: Instr): void {
  c.setLogic(c.rdE(i) & c.getReg(i.reg, i.opsize), i.opsize);
}
export function testEI(c: EmuCpu, i: Instr): void {
  c.setLogic(c.rdE(i) & i.imm, i.opsize);
}
export function test32rr(c: EmuCpu, i: Instr): void {
  c.lazy = ARITH; c.lop = LazyOp.LOGIC; c.lr = c.regs[i.rm] & c.regs[i.reg]; c.lsz = 4;
}

/** inc/dec r/m or reg (40+r, 48+r, FE/FF /0 /1): CF is preserved. sub: 0 inc, 1 dec. */
export function incdec(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  let a: number;
  let addr = 0;
  if (i.mem) a = c.rd((addr = c.ea(i)), sz);
  else a = c.getReg(i.rm, sz);
  const r = i.sub === 0 ? (a + 1) | 0 : (a - 1) | 0;
  if (i.mem) c.wr(addr, sz, r);
  else c.setReg(i.rm, sz, r);
  if (c.lazy & CF) c.flags = (c.flags & ~CF) | c.getCF();
  c.lazy = ARITH & ~CF;
  c.lop = i.sub === 0 ? LazyOp.ADD : LazyOp.SUB;
  c.la = a;
  c.lb = 1;
  c.lr = r;
  c.lsz = sz;
  c.lcin = 0;
}

/** not (F6/F7 /2): no flags. */
export function notE(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  if (i.mem) {
    const a = c.ea(i);
    c.wr(a, sz, ~c.rd(a, sz));
  } else c.setReg(i.rm, sz, ~c.getReg(i.rm, sz));
}

/** neg (F6/F7 /3): flags of 0 - x. */
export function negE(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const addr = i.mem ? c.ea(i) : 0;
  const a = i.mem ? c.rd(addr, sz) : c.getReg(i.rm, sz);
  const r = (0 - a) | 0;
  if (i.mem) c.wr(addr, sz, r);
  else c.setReg(i.rm, sz, r);
  c.setArith(LazyOp.SUB, 0, a, r, sz, 0);
}

/** Unsigned high 32 bits of a 32x32-bit product. */
export function mulhu(a: number, b: number): number {
  a >>>= 0;
  b >>>= 0;
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0;
}

/** Signed high 32 bits of a 32x32-bit product. */
export function mulhs(a: number, b: number): number {
  let h = mulhu(a, b);
  if (a < 0) h -= b;
  if (b < 0) h -= a;
  return h | 0;
}

/** Set CF = OF = `ov`, ZF/SF/PF from the low result (undefined by the SDM for mul/imul), AF = 0. */
function mulFlags(c: EmuCpu, ov: boolean, lo: number, sz: number): void {
  c.setEagerAndResult(CF | OF | AF, ov ? CF | OF : 0, lo, sz);
}

/** mul/imul/div/idiv r/m (F6/F7 /4-/7): one-operand forms on AL/AX/EAX (and AH/DX/EDX). */
export function mulDivE(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const src = c.rdE(i);
  const R = c.regs;
  switch (i.sub) {
    case 4: // mul
      if (sz === 1) {
        const p = (R[0] & 0xff) * src;
        c.r16[0] = p;
        mulFlags(c, p > 0xff, p, 1);
      } else if (sz === 2) {
        const p = (R[0] & 0xffff) * src;
        c.r16[0] = p;
        c.r16[4] = p >>> 16;
        mulFlags(c, p > 0xffff, p, 2);
      } else {
        const a = R[0];
        const lo = Math.imul(a, src);
        const hi = mulhu(a, src);
        R[0] = lo;
        R[2] = hi;
        mulFlags(c, hi !== 0, lo, 4);
      }
      return;
    case 5: // imul
      if (sz === 1) {
        const p = ((R[0] << 24) >> 24) * ((src << 24) >> 24);
        c.r16[0] = p;
        mulFlags(c, p !== (p << 24) >> 24, p, 1);
      } else if (sz === 2) {
        const p = ((R[0] << 16) >> 16) * ((src << 16) >> 16);
        c.r16[0] = p;
        c.r16[4] = p >> 16;
        mulFlags(c, p !== (p << 16) >> 16, p, 2);
      } else {
        const a = R[0];
        const lo = Math.imul(a, src);
        const hi = mulhs(a, src);
        R[0] = lo;
        R[2] = hi;
        mulFlags(c, hi !== lo >> 31, lo, 4);
      }
      return;
    case 6: // div
      if (src === 0) fault('divide-error', 'div by zero');
      if (sz === 1) {
        const n = R[0] & 0xffff;
        const q = Math.floor(n / src);
        if (q > 0xff) fault('divide-error', 'div quotient overflow');
        c.r8[0] = q;
        c.r8[1] = n - q * src;
      } else if (sz === 2) {
        const n = ((R[2] & 0xffff) * 0x10000) + (R[0] & 0xffff);
        const q = Math.floor(n / src);
        if (q > 0xffff) fault('divide-error', 'div quotient overflow');
        c.r16[0] = q;
        c.r16[4] = n - q * src;
      } else {
        const d = src >>> 0;
        const hi = R[2] >>> 0;
        if (hi >= d) fault('divide-error', 'div quotient overflow');
        const qr = divu64(hi, R[0] >>> 0, d);
        R[0] = qr[0];
        R[2] = qr[1];
      }
      return;
    default: { // idiv
      if (src === 0) fault('divide-error', 'idiv by zero');
      if (sz === 1) {
        const n = (R[0] << 16) >> 16;
        const d = (src << 24) >> 24;
        const q = Math.trunc(n / d);
        if (q > 127 || q < -128) fault('divide-error', 'idiv quotient overflow');
        c.r8[0] = q;
        c.r8[1] = n - q * d;
      } else if (sz === 2) {
        const n = (R[2] << 16) | (R[0] & 0xffff);
        const d = (src << 16) >> 16;
        const q = Math.trunc(n / d);
        if (q > 32767 || q < -32768) fault('divide-error', 'idiv quotient overflow');
        c.r16[0] = q;
        c.r16[4] = n - q * d;
      } else {
        let hi = R[2] >>> 0;
        let lo = R[0] >>> 0;
        const neg = (R[2] | 0) < 0;
        if (neg) { // |dividend|, 64-bit two's complement negation
          lo = (~lo + 1) >>> 0;
          hi = (~hi + (lo === 0 ? 1 : 0)) >>> 0;
        }
        const dneg = src < 0;
        const d = dneg ? (-src) >>> 0 : src >>> 0;
        if (hi >= d) fault('divide-error', 'idiv quotient overflow');
        const qr = divu64(hi, lo, d);
        const q = qr[0] >>> 0;
        const qneg = neg !== dneg;
        if (qneg ? q > 0x80000000 : q > 0x7fffffff) fault('divide-error', 'idiv quotient overflow');
        R[0] = qneg ? -q : q;
        R[2] = neg ? -(qr[1] >>> 0) : qr[1];
      }
    }
  }
}

const qrScratch = new Int32Array(2);
/** (hi:lo) / d for hi < d, all unsigned 32-bit: [quotient, remainder] as int32 (scratch array). */
function divu64(hi: number, lo: number, d: number): Int32Array {
  if (hi === 0) {
    const q = Math.floor(lo / d);
    qrScratch[0] = q;
    qrScratch[1] = lo - q * d;
    return qrScratch;
  }
  // Two 16-bit long-division steps: each partial dividend stays below 2^48, exact in a double.
  let r = hi;
  let t = r * 0x10000 + (lo >>> 16);
  const q1 = Math.floor(t / d);
  r = t - q1 * d;
  t = r * 0x10000 + (lo & 0xffff);
  const q0 = Math.floor(t / d);
  r = t - q0 * d;
  qrScratch[0] = q1 * 0x10000 + q0;
  qrScratch[1] = r;
  return qrScratch;
}

/** imul reg, r/m (0F AF) and imul reg, r/m, imm (69, 6B). */
export function imulGE(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const a = c.rdE(i);
  const b = i.opcode === 0x1af ? c.getReg(i.reg, sz) : i.imm;
  if (sz === 4) {
    const lo = Math.imul(a, b);
    const hi = mulhs(a, b);
    c.regs[i.reg] = lo;
    mulFlags(c, hi !== lo >> 31, lo, 4);
  } else {
    const p = ((a << 16) >> 16) * ((b << 16) >> 16);
    c.r16[i.reg << 1] = p;
    mulFlags(c, p !== (p << 16) >> 16, p, 2);
  }
}

export function imul32rr(c: EmuCpu, i: Instr): void {
  const a = c.regs[i.rm], b = c.regs[i.reg];
  const lo = Math.imul(a, b);
  c.regs[i.reg] = lo;
  c.flags = (c.flags & ~(CF | OF | AF)) | (mulhs(a, b) !== lo >> 31 ? CF | OF : 0);
  c.lazy = ZF | SF | PF; c.lop = LazyOp.LOGIC; c.lr = lo; c.lsz = 4;
}

/**
 * Shift/rotate `v` (masked, unsigned) by `count` (already masked to 5 bits, non-zero) and set
 * flags. kind: 0 rol, 1 ror, 2 rcl, 3 rcr, 4 shl, 5 shr, 6 sal (= shl), 7 sar.
 */
export function shiftValue(c: EmuCpu, kind: number, v: number, count: number, sz: number): number {
  const bits = sz << 3;
  const m = SIZE_MASK[sz];
  v = sz === 4 ? v | 0 : v & m;
  switch (kind) {
    case 0: { // rol: only CF and OF change
      const n = count & (bits - 1);
      const r = n === 0 ? v : ((v << n) | ((v & m) >>> (bits - n))) & m;
      const cf = r & 1;
      const of = ((r >>> (bits - 1)) & 1) ^ cf;
      c.flags = (c.flags & ~(CF | OF)) | cf | (of << 11);
      c.lazy &= ~(CF | OF);
      return r;
    }
    case 1: { // ror
      const n = count & (bits - 1);
      const u = (v & m) >>> 0;
      const r = n === 0 ? u : ((u >>> n) | (u << (bits - n))) & m;
      const cf = (r >>> (bits - 1)) & 1;
      const of = cf ^ ((r >>> (bits - 2)) & 1);
      c.flags = (c.flags & ~(CF | OF)) | cf | (of << 11);
      c.lazy &= ~(CF | OF);
      return r;
    }
    case 2: { // rcl
      const n = sz === 4 ? count : count % (bits + 1);
      if (n === 0) return v;
      let cf = c.getCF();
      let r = v & m;
      for (let k = 0; k < n; k++) {
        const out = (r >>> (bits - 1)) & 1;
        r = ((r << 1) | cf) & m;
        cf = out;
      }
      const of = ((r >>> (bits - 1)) & 1) ^ cf;
      c.flags = (c.flags & ~(CF | OF)) | cf | (of << 11);
      c.lazy &= ~(CF | OF);
      return r;
    }
    case 3: { // rcr
      const n = sz === 4 ? count : count % (bits + 1);
      if (n === 0) return v;
      let cf = c.getCF();
      let r = (v & m) >>> 0;
      const of = ((r >>> (bits - 1)) & 1) ^ cf;
      for (let k = 0; k < n; k++) {
        const out = r & 1;
        r = ((r >>> 1) | (cf << (bits - 1))) & m;
        r >>>= 0;
        cf = out;
      }
      c.flags = (c.flags & ~(CF | OF)) | cf | (of << 11);
      c.lazy &= ~(CF | OF);
      return r;
    }
    case 4:
    case 6: { // shl
      const u = (v & m) >>> 0;
      const r = (u << count) & m;
      const cf = count <= bits ? (u >>> (bits - count)) & 1 : 0;
      // SDM: OF = MSB(result) XOR CF for a count of 1 (undefined otherwise). MSB(result) XOR
      // MSB(source) is the same for count 1 and is what Intel hardware produces for larger counts.
      const of = ((r ^ u) >>> (bits - 1)) & 1;
      c.setEagerAndResult(CF | OF | AF, cf | (of << 11), r, sz);
      return r;
    }
    case 5: { // shr
      const u = (v & m) >>> 0;
      const r = count >= 32 ? 0 : u >>> count;
      const cf = (u >>> (count - 1)) & 1;
      const of = (u >>> (bits - 1)) & 1;
      c.setEagerAndResult(CF | OF | AF, cf | (of << 11), r, sz);
      return r;
    }
    default: { // sar
      const s = sz === 4 ? v | 0 : sz === 2 ? (v << 16) >> 16 : (v << 24) >> 24;
      const r = (s >> count) & m;
      const cf = (s >> (count - 1)) & 1;
      c.setEagerAndResult(CF | OF | AF, cf, r, sz);
      return r;
    }
  }
}

/** Group 2 (C0, C1, D0-D3): sub = shift kind; count from imm, 1 or CL by opcode. */
export function shiftE(c: EmuCpu, i: Instr): void {
  const op = i.opcode;
  const count = (op === 0xd0 || op === 0xd1 ? 1 : op === 0xd2 || op === 0xd3 ? c.regs[1] : i.imm) & 0x1f;
  const sz = i.opsize;
  if (i.mem) {
    const a = c.ea(i);
    const v = c.rd(a, sz);
    if (count === 0) return;
    c.checkWrite(a, sz);
    c.wr(a, sz, shiftValue(c, i.sub, v, count, sz));
  } else {
    if (count === 0) return;
    c.setReg(i.rm, sz, shiftValue(c, i.sub, c.getReg(i.rm, sz), count, sz));
  }
}

/** shl/shr/sar r32, imm8 fast paths. */
export function shl32ri(c: EmuCpu, i: Instr): void {
  const n = i.imm & 31;
  if (n === 0) return;
  const v = c.regs[i.rm];
  const r = v << n;
  c.regs[i.rm] = r;
  const cf = (v >>> (32 - n)) & 1;
  c.flags = (c.flags & ~(CF | OF | AF)) | cf | ((((r ^ v) >>> 31) & 1) << 11);
  c.lazy = ZF | SF | PF; c.lop = LazyOp.LOGIC; c.lr = r; c.lsz = 4;
}
export function shr32ri(c: EmuCpu, i: Instr): void {
  const n = i.imm & 31;
  if (n === 0) return;
  const v = c.regs[i.rm];
  const r = v >>> n;
  c.regs[i.rm] = r;
  c.flags = (c.flags & ~(CF | OF | AF)) | ((v >>> (n - 1)) & 1) | (((v >>> 31) & 1) << 11);
  c.lazy = ZF | SF | PF; c.lop = LazyOp.LOGIC; c.lr = r; c.lsz = 4;
}
export function sar32ri(c: EmuCpu, i: Instr): void {
  const n = i.imm & 31;
  if (n === 0) return;
  const v = c.regs[i.rm];
  const r = v >> n;
  c.regs[i.rm] = r;
  c.flags = (c.flags & ~(CF | OF | AF)) | ((v >> (n - 1)) & 1);
  c.lazy = ZF | SF | PF; c.lop = LazyOp.LOGIC; c.lr = r; c.lsz = 4;
}
export function ror32ri(c: EmuCpu, i: Instr): void {
  const n = i.imm & 31;
  if (n === 0) return;
  const v = c.regs[i.rm];
  const r = (v >>> n) | (v << (32 - n));
  c.regs[i.rm] = r;
  const cf = (r >>> 31) & 1;
  c.flags = (c.flags & ~(CF | OF)) | cf | ((cf ^ ((r >>> 30) & 1)) << 11);
  c.lazy &= ~(CF | OF);
}
export function rol32ri(c: EmuCpu, i: Instr): void {
  const n = i.imm & 31;
  if (n === 0) return;
  const v = c.regs[i.rm];
  const r = (v << n) | (v >>> (32 - n));
  c.regs[i.rm] = r;
  const cf = r & 1;
  c.flags = (c.flags & ~(CF | OF)) | cf | ((((r >>> 31) & 1) ^ cf) << 11);
  c.lazy &= ~(CF | OF);
}

export function shiftFast(i: Instr): ((c: EmuCpu, i: Instr) => void) | undefined {
  if (i.opcode !== 0xc1 || i.opsize !== 4 || i.mem) return undefined;
  switch (i.sub) {
    case 0: return rol32ri;
    case 1: return ror32ri;
    case 4: case 6: return shl32ri;
    case 5: return shr32ri;
    case 7: return sar32ri;
  }
  return undefined;
}

/** shld/shrd r/m, reg, imm8|CL (0F A4, A5, AC, AD). sub: 0 shld, 1 shrd. */
export function shldrd(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const count = (i.opcode === 0x1a5 || i.opcode === 0x1ad ? c.regs[1] : i.imm) & 0x1f;
  const addr = i.mem ? c.ea(i) : 0;
  const d = i.mem ? c.rd(addr, sz) : c.getReg(i.rm, sz);
  if (count === 0) return;
  const s = c.getReg(i.reg, sz);
  let r: number, cf: number;
  if (sz === 4) {
    if (i.sub === 0) {
      r = (d << count) | (s >>> (32 - count));
      cf = (d >>> (32 - count)) & 1;
    } else {
      r = (d >>> count) | (s << (32 - count));
      cf = (d >>> (count - 1)) & 1;
    }
    r |= 0;
  } else {
    // 16-bit: counts above 16 give undefined results (SDM); we shift the 32-bit d:s pair.
    if (i.sub === 0) {
      const x = ((d << 16) | s) >>> 0;
      r = count <= 16 ? ((x << count) >>> 16) & 0xffff : ((s << (count - 16)) | (d >>> (32 - count))) & 0xffff;
      cf = count <= 16 ? (d >>> (16 - count)) & 1 : (s >>> (32 - count)) & 1;
    } else {
      const x = ((s << 16) | d) >>> 0;
      r = count <= 16 ? (x >>> count) & 0xffff : ((s >>> (count - 16)) | (d << (32 - count))) & 0xffff;
      cf = (x >>> (count - 1)) & 1;
    }
  }
  const sign = SIZE_SIGN[sz];
  const of = ((r ^ d) & sign) !== 0 ? OF : 0;
  if (i.mem) c.wr(addr, sz, r);
  else c.setReg(i.rm, sz, r);
  c.setEagerAndResult(CF | OF | AF, cf | of, r, sz);
}

/** bt/bts/btr/btc with a register or imm8 bit offset (0F A3/AB/B3/BB, 0F BA /4-/7). sub: 0 bt 1 bts 2 btr 3 btc. */
export function bitTest(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const bits = sz << 3;
  const immForm = i.opcode === 0x1ba;
  let off = immForm ? i.imm : c.getReg(i.reg, sz);
  if (sz === 2 && !immForm) off = (off << 16) >> 16;
  let v: number;
  let addr = 0;
  if (i.mem) {
    addr = c.ea(i);
    if (!immForm) addr = (addr + (off >> (sz === 4 ? 5 : 4)) * sz) | 0; // bit-string addressing: signed offset
    v = c.rd(addr, sz);
  } else v = c.getReg(i.rm, sz);
  const bit = off & (bits - 1);
  const cf = (v >>> bit) & 1;
  c.materialize(ARITH);
  c.flags = (c.flags & ~CF) | cf;
  if (i.sub === 0) return;
  const r = i.sub === 1 ? v | (1 << bit) : i.sub === 2 ? v & ~(1 << bit) : v ^ (1 << bit);
  if (i.mem) c.wr(addr, sz, r);
  else c.setReg(i.rm, sz, r);
}

/** bsf/bsr (0F BC, BD): source 0 sets ZF and leaves the destination unchanged. sub: 0 bsf, 1 bsr. */
export function bitScan(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const v = c.rdE(i) & SIZE_MASK[sz];
  c.materialize(ARITH);
  if (v === 0) {
    c.flags |= ZF;
    return;
  }
  c.flags &= ~ZF;
  const r = i.sub === 0 ? 31 - Math.clz32(v & -v) : 31 - Math.clz32(v);
  c.setReg(i.reg, sz, r);
}

/** bswap r32 (0F C8+r). */
export function bswap(c: EmuCpu, i: Instr): void {
  const v = c.regs[i.reg];
  c.regs[i.reg] = (v >>> 24) | ((v >> 8) & 0xff00) | ((v & 0xff00) << 8) | (v << 24);
}

/** xadd r/m, reg (0F C0, C1). */
export function xadd(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const s = c.getReg(i.reg, sz);
  if (i.mem) {
    const a = c.ea(i);
    const d = c.rd(a, sz);
    const r = alu(c, 0, d, s, sz);
    c.wr(a, sz, r);
    c.setReg(i.reg, sz, d);
  } else {
    const d = c.getReg(i.rm, sz);
    const r = alu(c, 0, d, s, sz);
    c.setReg(i.reg, sz, d);
    c.setReg(i.rm, sz, r);
  }
}

/** cmpxchg r/m, reg (0F B0, B1): the destination is written back even when unequal (SDM). */
export function cmpxchg(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const acc = c.getReg(0, sz);
  const addr = i.mem ? c.ea(i) : 0;
  const d = i.mem ? c.rd(addr, sz) : c.getReg(i.rm, sz);
  const eq = (acc & SIZE_MASK[sz]) === (d & SIZE_MASK[sz]);
  const nv = eq ? c.getReg(i.reg, sz) : d;
  if (i.mem) c.wr(addr, sz, nv);
  else c.setReg(i.rm, sz, nv);
  if (!eq) c.setReg(0, sz, d);
  alu(c, 7, acc, d, sz);
}

/** cmpxchg8b m64 (0F C7 /1): compares EDX:EAX, sets only ZF. */
export function cmpxchg8b(c: EmuCpu, i: Instr): void {
  const a = c.ea(i);
  c.checkRead(a, 8);
  c.checkWrite(a, 8);
  const lo = c.rd32(a), hi = c.rd32(a + 4);
  const R = c.regs;
  c.materialize(ARITH);
  if (lo === R[0] && hi === R[2]) {
    c.wr32(a, R[3]);
    c.wr32(a + 4, R[1]);
    c.flags |= ZF;
  } else {
    c.wr32(a, lo);
    c.wr32(a + 4, hi);
    R[0] = lo;
    R[2] = hi;
    c.flags &= ~ZF;
  }
}
