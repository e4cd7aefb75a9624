import type { EmuCpu } from './cpu.js';
import { fault } from './fault.js';
import { ARITH, CF, PF, ZF } from './flags.js';
import type { Instr } from './instr.js';

/**
 * The x87 subset that gcc emits for the 32-bit ABI with -mfpmath=sse (Intel SDM vol. 1
 * chapter 8, vol. 2 F* pages): loads/stores of float/double/int16/32/64, fxch, fchs, fabs,
 * constants, control/status word access, compares, and basic arithmetic.
 * Limitation: registers hold doubles, so arithmetic rounds to 53 bits at every step and
 * 80-bit loads/stores (fld/fstp m80) convert through double. Integer conversions are exact.
 */

const TWO32 = 4294967296;

/** C0, C1, C2, C3 bits of the FPU status word. */
const C0 = 0x0100, C1 = 0x0200, C2 = 0x0400, C3 = 0x4000;

/** Push a value (as a double) onto the register stack. */
export function fpush(c: EmuCpu, v: number): void {
  const f = c.fpu;
  f.top = (f.top - 1) & 7;
  if ((f.empty & (1 << f.top)) === 0) {
    // Masked stack overflow: the register receives the real indefinite QNaN (SDM 8.5.1.1).
    f.ru32[f.top * 2] = 0;
    f.ru32[f.top * 2 + 1] = 0xfff80000;
    f.sw |= 0x41 | C1;
    return;
  }
  f.empty &= ~(1 << f.top);
  f.r[f.top] = v;
  f.ex[f.top] = null;
}

/** Round an integer to the x87's 64-bit significand (nearest, ties to even). */
export function round64(x: bigint): bigint {
  const neg = x < 0n;
  let a = neg ? -x : x;
  const bits = a.toString(2).length;
  if (bits <= 64) return x;
  const sh = BigInt(bits - 64);
  const q = a >> sh;
  const rem = a - (q << sh);
  const half = 1n << (sh - 1n);
  const r = rem > half || (rem === half && (q & 1n) === 1n) ? q + 1n : q;
  a = r << sh;
  return neg ? -a : a;
}

/** Exact integer value of st register p, or null when it is not a known integer. */
function exactOf(c: EmuCpu, p: number): bigint | null {
  const f = c.fpu;
  const e = f.ex[p];
  if (e !== null) return e;
  const v = f.r[p];
  return Number.isInteger(v) ? BigInt(v) : null;
}

/** Push raw double bits (keeps NaN payloads). */
function fpushBits(c: EmuCpu, lo: number, hi: number): void {
  fpush(c, 0);
  const f = c.fpu;
  f.ru32[f.top * 2] = lo;
  f.ru32[f.top * 2 + 1] = hi;
}

export function fpop(c: EmuCpu): void {
  const f = c.fpu;
  f.empty |= 1 << f.top;
  f.top = (f.top + 1) & 7;
}

/** Physical index of st(i); an empty register reads as the real indefinite (masked underflow). */
function st(c: EmuCpu, i: number): number {
  const f = c.fpu;
  const p = (f.top + i) & 7;
  if (f.empty & (1 << p)) {
    f.ru32[p * 2] = 0;
    f.ru32[p * 2 + 1] = 0xfff80000;
    f.sw |= 0x41;
  }
  return p;
}

function stv(c: EmuCpu, i: number): number {
  return c.fpu.r[st(c, i)];
}

/** Push a float32 from memory as a double (NaN payloads kept, quieted). */
function loadF32(c: EmuCpu, a: number): void {
  const bits = c.rd32(a);
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
    const m = (bits & 0x7fffff) | 0x400000;
    fpushBits(c, (m & 7) << 29, ((bits & 0x80000000) | 0x7ff00000 | (m >>> 3)) >>> 0);
  } else {
    scratchI32[0] = bits;
    fpush(c, scratchF32[0]);
  }
}

const scratch = new ArrayBuffer(8);
const scratchF32 = new Float32Array(scratch);
const scratchI32 = new Int32Array(scratch);
const scratchF64 = new Float64Array(scratch);

/** fld m32/m64/m80/st(i), fild m16/m32/m64, fldz, fld1 (D9 /0, DD /0, DB /5, D9 C0+i, DF /0, DB /0, DF /5, D9 EE, D9 E8). sub selects. */
export function fld(c: EmuCpu, i: Instr): void {
  switch (i.sub) {
    case 0: loadF32(c, c.ea(i)); return;
    case 1: {
      const a = c.ea(i);
      c.checkRead(a, 8);
      const lo = c.rd32(a) >>> 0, hi = c.rd32(a + 4) >>> 0;
      const nan = (hi & 0x7ff00000) === 0x7ff00000 && ((hi & 0xfffff) !== 0 || lo !== 0);
      fpushBits(c, lo, nan ? (hi | 0x80000) >>> 0 : hi);
      return;
    }
    case 2: { // fld st(i): read before pushing
      const p = st(c, i.rm);
      const lo = c.fpu.ru32[p * 2], hi = c.fpu.ru32[p * 2 + 1];
      const e = c.fpu.ex[p];
      fpushBits(c, lo, hi);
      c.fpu.ex[c.fpu.top] = e;
      return;
    }
    case 3: fpush(c, (c.rd16(c.ea(i)) << 16) >> 16); return;
    case 4: fpush(c, c.rd32(c.ea(i))); return;
    case 5: {
      const a = c.ea(i);
      c.checkRead(a, 8);
      const big = (BigInt(c.rd32(a + 4)) << 32n) | BigInt(c.rd32(a) >>> 0);
      fpush(c, Number(big));
      c.fpu.ex[c.fpu.top] = big;
      return;
    }
    case 6: fpush(c, 0); return;
    case 7: fpush(c, 1); return;
    case 8: { // fld m80
      const a = c.ea(i);
      c.checkRead(a, 10);
      const lo = c.rd32(a) >>> 0, hi = c.rd32(a + 4) >>> 0, se = c.rd16(a + 8);
      if ((se & 0x7fff) === 0x7fff && ((hi & 0x7fffffff) !== 0 || lo !== 0)) {
        // NaN: keep the top 52 fraction bits (quieted).
        fpushBits(c, ((hi << 21) | (lo >>> 11)) >>> 0, ((se & 0x8000) << 16 | 0x7ff80000 | ((hi >>> 11) & 0xfffff)) >>> 0);
        return;
      }
      fpush(c, f80ToDouble(lo, hi, se));
      return;
    }
    case 9: fpush(c, Math.PI); return;
    case 10: fpush(c, Math.LOG2E); return;
    case 11: fpush(c, Math.LN2); return;
    case 12: fpush(c, Math.log10(2)); return;
    default: fpush(c, Math.log2(10)); return;
  }
}

/** Convert an 80-bit extended value (mantissa lo/hi words, sign+exponent) to the nearest double. */
export function f80ToDouble(lo: number, hi: number, se: number): number {
  const sign = se & 0x8000 ? -1 : 1;
  const e = se & 0x7fff;
  if (e === 0x7fff) {
    if ((hi & 0x7fffffff) === 0 && lo === 0) return sign * Infinity;
    return NaN;
  }
  const mant = hi * TWO32 + lo; // rounded to 53 bits once
  const exp = (e === 0 ? 1 : e) - 16383 - 63;
  // Scale in two exact power-of-two steps so results in the double denormal range survive.
  if (exp < -1000) return sign * mant * Math.pow(2, exp + 1000) * Math.pow(2, -1000);
  return sign * mant * Math.pow(2, exp);
}

/** Store st(0) as float32/float64/int/m80 (with optional pop). sub: 0 m32, 1 m64, 2 st(i), 3 m80; bit 4 = pop. */
export function fst(c: EmuCpu, i: Instr): void {
  const pop = (i.sub & 16) !== 0;
  const p = st(c, 0);
  const f = c.fpu;
  const v = f.r[p];
  switch (i.sub & 15) {
    case 0: {
      const a = c.ea(i);
      let bits: number;
      if (v !== v) {
        const lo = f.ru32[p * 2], hi = f.ru32[p * 2 + 1];
        bits = (hi & 0x80000000) | 0x7fc00000 | (((hi & 0xfffff) << 3) | (lo >>> 29));
      } else {
        scratchF32[0] = v;
        bits = scratchI32[0];
      }
      c.wr32(a, bits);
      break;
    }
    case 1: {
      const a = c.ea(i);
      c.checkWrite(a, 8);
      c.wr32(a, f.ru32[p * 2]);
      c.wr32(a + 4, f.ru32[p * 2 + 1]);
      break;
    }
    case 2: {
      const q = (f.top + i.rm) & 7;
      f.ru32[q * 2] = f.ru32[p * 2];
      f.ru32[q * 2 + 1] = f.ru32[p * 2 + 1];
      f.ex[q] = f.ex[p];
      f.empty &= ~(1 << q);
      break;
    }
    default: { // m80
      const a = c.ea(i);
      c.checkWrite(a, 10);
      const w = doubleToF80(v, f.ru32[p * 2], f.ru32[p * 2 + 1]);
      c.wr32(a, w[0]);
      c.wr32(a + 4, w[1]);
      c.wr16(a + 8, w[2]);
    }
  }
  if (pop) fpop(c);
}

/** Double (with its raw words) to 80-bit extended words [mant lo, mant hi, sign+exponent]. */
function doubleToF80(v: number, lo: number, hi: number): number[] {
  const sign = hi & 0x80000000 ? 0x8000 : 0;
  const e = (hi >>> 20) & 0x7ff;
  const m = hi & 0xfffff;
  if (e === 0x7ff) {
    const mhi = 0x80000000 | (m << 11) | (lo >>> 21);
    return [(lo << 11) >>> 0, mhi >>> 0, sign | 0x7fff];
  }
  if (v === 0) return [0, 0, sign];
  let exp = e, mh = m, ml = lo;
  if (e === 0) { // double denormal: normalize (representable as a normal extended value)
    exp = 1;
    while ((mh & 0x100000) === 0) {
      mh = (mh << 1) | (ml >>> 31);
      ml = (ml << 1) >>> 0;
      exp--;
    }
    mh &= 0xfffff;
  }
  const mantHi = (0x80000000 | (mh << 11) | (ml >>> 21)) >>> 0;
  const mantLo = (ml << 11) >>> 0;
  return [mantLo, mantHi, sign | (exp - 1023 + 16383)];
}

/** Round per the x87 control word's RC field (00 nearest even, 01 down, 10 up, 11 truncate). */
function roundRC(c: EmuCpu, v: number, forceTrunc: boolean): number {
  const rc = forceTrunc ? 3 : (c.fpu.cw >> 10) & 3;
  switch (rc) {
    case 0: {
      const f = Math.floor(v), d = v - f;
      return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
    }
    case 1: return Math.floor(v);
    case 2: return Math.ceil(v);
    default: return Math.trunc(v);
  }
}

/** fist/fistp/fisttp m16/m32/m64. sub: 0 m16, 1 m32, 2 m64; bit 4 pop; bit 5 truncate (fisttp). */
export function fist(c: EmuCpu, i: Instr): void {
  const p = st(c, 0);
  const v = c.fpu.r[p];
  const a = c.ea(i);
  const e = c.fpu.ex[p];
  if (e !== null && (i.sub & 15) === 2) {
    c.checkWrite(a, 8);
    const ok = e >= -(1n << 63n) && e < 1n << 63n;
    const u = ok ? BigInt.asUintN(64, e) : 1n << 63n;
    c.wr32(a, Number(u & 0xffffffffn));
    c.wr32(a + 4, Number(u >> 32n));
    if (i.sub & 16) fpop(c);
    return;
  }
  const r = roundRC(c, v, (i.sub & 32) !== 0);
  switch (i.sub & 15) {
    case 0:
      c.wr16(a, r >= -32768 && r <= 32767 ? r : 0x8000);
      break;
    case 1:
      c.wr32(a, r >= -2147483648 && r <= 2147483647 ? r : -0x80000000);
      break;
    default: {
      c.checkWrite(a, 8);
      if (r >= -9223372036854775808 && r < 9223372036854775808) {
        const hi = Math.floor(r / TWO32);
        c.wr32(a, r - hi * TWO32);
        c.wr32(a + 4, hi);
      } else {
        c.wr32(a, 0);
        c.wr32(a + 4, -0x80000000);
      }
    }
  }
  if (i.sub & 16) fpop(c);
}

/** fxch st(i) (D9 C8+i). */
export function fxch(c: EmuCpu, i: Instr): void {
  const f = c.fpu;
  const p = st(c, 0), q = st(c, i.rm);
  const lo = f.ru32[p * 2], hi = f.ru32[p * 2 + 1];
  f.ru32[p * 2] = f.ru32[q * 2];
  f.ru32[p * 2 + 1] = f.ru32[q * 2 + 1];
  f.ru32[q * 2] = lo;
  f.ru32[q * 2 + 1] = hi;
  const e = f.ex[p];
  f.ex[p] = f.ex[q];
  f.ex[q] = e;
}

/** One-operand st(0) operations. sub: 0 fchs, 1 fabs, 2 fsqrt, 3 frndint, 4 ftst, 5 fxam. */
export function funary(c: EmuCpu, i: Instr): void {
  const f = c.fpu;
  if (i.sub === 5) { // fxam works on empty registers too
    const p = (f.top) & 7;
    const sign = f.ru32[p * 2 + 1] >>> 31 ? C1 : 0;
    let cls: number;
    if (f.empty & (1 << p)) cls = C3 | C0;
    else {
      const v = f.r[p];
      if (v !== v) cls = C0;
      else if (v === Infinity || v === -Infinity) cls = C2 | C0;
      else if (v === 0) cls = C3;
      else cls = C2;
    }
    f.sw = (f.sw & ~(C0 | C1 | C2 | C3)) | cls | sign;
    return;
  }
  const p = st(c, 0);
  switch (i.sub) {
    case 0: {
      f.ru32[p * 2 + 1] ^= 0x80000000;
      const e = f.ex[p];
      if (e !== null) f.ex[p] = -e;
      return;
    }
    case 1: {
      f.ru32[p * 2 + 1] &= 0x7fffffff;
      const e = f.ex[p];
      if (e !== null && e < 0n) f.ex[p] = -e;
      return;
    }
    case 2: {
      const v = f.r[p];
      f.ex[p] = null;
      if (v === v) {
        const r = Math.sqrt(v);
        if (r !== r) { f.ru32[p * 2] = 0; f.ru32[p * 2 + 1] = 0xfff80000; } else f.r[p] = r;
      }
      return;
    }
    case 3: {
      const v = f.r[p];
      f.ex[p] = null;
      if (v === v && v !== Infinity && v !== -Infinity) {
        const r = roundRC(c, v, false);
        f.r[p] = r === 0 && (v < 0 || Object.is(v, -0)) ? -0 : r;
      }
      return;
    }
    default: fcompare(c, f.r[p], 0, false);
  }
}

/** Set C3/C2/C0 (fcom family) or ZF/PF/CF (fcomi family) from comparing a with b. */
function fcompare(c: EmuCpu, a: number, b: number, toEflags: boolean): void {
  const un = a !== a || b !== b;
  if (toEflags) {
    const fl = un ? ZF | PF | CF : a > b ? 0 : a < b ? CF : ZF;
    c.flags = (c.flags & ~ARITH) | fl;
    c.lazy = 0; // fcomi clears OF, SF and AF (SDM FCOMI)
    return;
  }
  const f = c.fpu;
  const cc = un ? C3 | C2 | C0 : a > b ? 0 : a < b ? C0 : C3;
  f.sw = (f.sw & ~(C0 | C1 | C2 | C3)) | cc;
}

/**
 * Compares. sub: 0 fcomi/fucomi st(i), 1 fcom/fucom st(i), 2 fcom m32, 3 fcom m64, 4 fucompp/fcompp;
 * bit 4: pop once.
 */
export function fcom(c: EmuCpu, i: Instr): void {
  const a = stv(c, 0);
  switch (i.sub & 15) {
    case 0: fcompare(c, a, stv(c, i.rm), true); break;
    case 1: fcompare(c, a, stv(c, i.rm), false); break;
    case 2: {
      scratchI32[0] = c.rd32(c.ea(i));
      fcompare(c, a, scratchF32[0], false);
      break;
    }
    case 3: {
      const ea = c.ea(i);
      c.checkRead(ea, 8);
      scratchI32[0] = c.rd32(ea);
      scratchI32[1] = c.rd32(ea + 4);
      fcompare(c, a, scratchF64[0], false);
      break;
    }
    default:
      fcompare(c, a, stv(c, 1), false);
      fpop(c);
  }
  if (i.sub & 16) fpop(c);
}

function arith(op: number, a: number, b: number): number {
  switch (op) {
    case 0: return a + b;
    case 1: return a * b;
    case 4: return a - b;
    case 5: return b - a;
    case 6: return a / b;
    default: return b / a;
  }
}

/**
 * Arithmetic fadd/fmul/fsub/fsubr/fdiv/fdivr. sub: bits 0-2 the ModRM.reg operation (0 add,
 * 1 mul, 4 sub, 5 subr, 6 div, 7 divr), bits 4-6 the operand: 0 m32, 1 m64, 2 st(0) op= st(i),
 * 3 st(i) op= st(0), 4 st(i) op= st(0) and pop, 5 m32int, 6 m16int.
 */
export function farith(c: EmuCpu, i: Instr): void {
  const op = i.sub & 7;
  const kind = (i.sub >> 4) & 7;
  const f = c.fpu;
  const top = st(c, 0);
  let dst = top;
  // B operand as double bits in scratch (so NaN payloads survive).
  switch (kind) {
    case 0: {
      const bits = c.rd32(c.ea(i));
      if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
        const m = bits & 0x7fffff;
        scratchI32[1] = (bits & 0x80000000) | 0x7ff00000 | (m >>> 3);
        scratchI32[0] = (m & 7) << 29;
      } else {
        scratchI32[0] = bits;
        scratchF64[0] = scratchF32[0];
      }
      break;
    }
    case 1: {
      const ea = c.ea(i);
      c.checkRead(ea, 8);
      scratchI32[0] = c.rd32(ea);
      scratchI32[1] = c.rd32(ea + 4);
      break;
    }
    case 2: {
      const q = st(c, i.rm);
      scratchI32[0] = f.ru32[q * 2];
      scratchI32[1] = f.ru32[q * 2 + 1];
      break;
    }
    case 5: scratchF64[0] = c.rd32(c.ea(i)); break;
    case 6: scratchF64[0] = (c.rd16(c.ea(i)) << 16) >> 16; break;
    default: {
      // st(i) = st(i) op st(0): in this encoding the sub/div "reverse" sense is swapped (SDM FSUB notes).
      dst = st(c, i.rm);
      scratchI32[0] = f.ru32[top * 2];
      scratchI32[1] = f.ru32[top * 2 + 1];
    }
  }
  const realOp = kind >= 3 && kind <= 4 && op >= 4 ? op ^ 1 : op;
  const a = f.r[dst];
  const b = scratchF64[0];
  if (a !== a || b !== b) {
    pickNaN(c, dst);
    if (kind === 4) fpop(c);
    return;
  }
  const bSrc = kind === 2 ? (f.top + i.rm) & 7 : kind >= 3 && kind <= 4 ? top : -1;
  if ((realOp === 0 || realOp === 4 || realOp === 5) && (f.ex[dst] !== null || (bSrc >= 0 && f.ex[bSrc] !== null))) {
    // Integer-valued add/sub with a 64-bit-exact operand: compute exactly, round once to 64 bits.
    const ea = exactOf(c, dst);
    const eb = bSrc >= 0 ? exactOf(c, bSrc) : Number.isInteger(b) ? BigInt(b) : null;
    if (ea !== null && eb !== null) {
      const sum = round64(realOp === 0 ? ea + eb : realOp === 4 ? ea - eb : eb - ea);
      f.r[dst] = Number(sum);
      f.ex[dst] = sum === 0n && realOp !== 0 ? null : sum;
      if (kind === 4) fpop(c);
      return;
    }
  }
  f.ex[dst] = null;
  const r = arith(realOp, a, b);
  if (r !== r) {
    f.ru32[dst * 2] = 0;
    f.ru32[dst * 2 + 1] = 0xfff80000;
  } else f.r[dst] = r;
  if (kind === 4) fpop(c);
}

/**
 * x87 NaN propagation (SDM vol. 1, table 4-7): one NaN operand is returned quieted; with two,
 * a QNaN beats an SNaN, otherwise the larger significand wins. A is register `dst`, B is in
 * the scratch words; the result goes to `dst`.
 */
function pickNaN(c: EmuCpu, dst: number): void {
  const f = c.fpu;
  const aLo = f.ru32[dst * 2], aHi = f.ru32[dst * 2 + 1];
  const bLo = scratchI32[0] >>> 0, bHi = scratchI32[1] >>> 0;
  const aNaN = (aHi & 0x7ff00000) === 0x7ff00000 && ((aHi & 0xfffff) !== 0 || aLo !== 0);
  const bNaN = (bHi & 0x7ff00000) === 0x7ff00000 && ((bHi & 0xfffff) !== 0 || bLo !== 0);
  let useB: boolean;
  if (aNaN && bNaN) {
    const aQ = (aHi & 0x80000) !== 0, bQ = (bHi & 0x80000) !== 0;
    if (aQ !== bQ) useB = bQ;
    else {
      const am = aHi & 0xfffff, bm = bHi & 0xfffff;
      useB = bm > am || (bm === am && bLo > aLo);
    }
  } else useB = bNaN;
  f.ex[dst] = null;
  if (useB) {
    f.ru32[dst * 2] = bLo;
    f.ru32[dst * 2 + 1] = bHi | 0x80000;
  } else f.ru32[dst * 2 + 1] = aHi | 0x80000;
}

/** fldcw/fnstcw/fnstsw/fninit/fnclex/ffree/fnop. sub: 0 fldcw, 1 fnstcw, 2 fnstsw m16, 3 fnstsw ax, 4 fninit, 5 fnclex, 6 ffree, 7 fnop. */
export function fctl(c: EmuCpu, i: Instr): void {
  const f = c.fpu;
  switch (i.sub) {
    case 0: {
      const cw = c.rd16(c.ea(i));
      f.cw = cw | 0x40;
      return;
    }
    case 1: c.wr16(c.ea(i), f.cw); return;
    case 2: c.wr16(c.ea(i), f.statusWord()); return;
    case 3: c.r16[0] = f.statusWord(); return;
    case 4: f.reset(); return;
    case 5: f.sw &= ~0x80ff; return;
    case 6: f.empty |= 1 << ((f.top + i.rm) & 7); return;
    default:
  }
}

/** x87 forms outside the supported subset (transcendentals, BCD, environment save...). */
export function x87Missing(_c: EmuCpu, i: Instr): void {
  fault('invalid-opcode', `x87 ${i.spec?.mnemonic ?? 'instruction'} is not supported by the emulator`);
}

