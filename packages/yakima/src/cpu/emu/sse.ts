import type { EmuCpu } from './cpu.js';
import { fault } from './fault.js';
import { ARITH, CF, PF, ZF } from './flags.js';
import type { Instr } from './instr.js';

/**
 * SSE/SSE2 (Intel SDM vol. 1 chapters 10-11, vol. 2 instruction pages). XMM registers live in
 * one ArrayBuffer aliased as float64/float32/int32/byte lanes so bit patterns (NaN payloads,
 * signed zeros) are exact; NaN results are produced explicitly from the integer views:
 * an invalid operation gives the default QNaN (sign set: 0xFFF8... / 0xFFC00000), and a NaN
 * operand propagates quieted, the first (destination) operand winning (SDM vol. 1, 4.8.3.5).
 * MXCSR exception status bits are not tracked; only round-to-nearest is supported.
 */

/** Index of the scratch XMM register that holds memory source operands. */
const SCR = 8;

/** Pages touched by an SSE store must be checked for decoded code like any other write. */
function storeBytes(c: EmuCpu, a: number, fromByte: number, n: number): void {
  c.checkWrite(a, n);
  if (c.codePages[a >>> 12] !== 0 || c.codePages[(a + n - 1) >>> 12] !== 0) c.codeWrite(a, n);
  const u8 = c.u8, x = c.xu8;
  for (let k = 0; k < n; k++) u8[a + k] = x[fromByte + k];
}

function loadBytes(c: EmuCpu, a: number, toByte: number, n: number): void {
  c.checkRead(a, n);
  const u8 = c.u8, x = c.xu8;
  for (let k = 0; k < n; k++) x[toByte + k] = u8[a + k];
}

function checkAlign16(a: number): void {
  if ((a & 15) !== 0) fault('general-protection', `misaligned 16-byte SSE operand at 0x${(a >>> 0).toString(16)}`);
}

/**
 * The XMM register index holding the r/m source: the register itself, or the scratch register
 * after loading `n` bytes from memory (the rest of the scratch is zero).
 */
export function srcX(c: EmuCpu, i: Instr, n: number, aligned: boolean): number {
  if (!i.mem) return i.rm;
  const a = c.ea(i);
  if (aligned) checkAlign16(a);
  const x = c.xi32;
  x[32] = x[33] = x[34] = x[35] = 0;
  loadBytes(c, a, SCR * 16, n);
  return SCR;
}

function copy16(c: EmuCpu, d: number, s: number): void {
  const x = c.xi32;
  x[d * 4] = x[s * 4];
  x[d * 4 + 1] = x[s * 4 + 1];
  x[d * 4 + 2] = x[s * 4 + 2];
  x[d * 4 + 3] = x[s * 4 + 3];
}

/**
 * Register/memory moves (0F 10-17, 28, 29, 6E, 6F, 7E, 7F, D6). sub: low byte = variant,
 * 0x100 = 16-byte alignment required.
 */
export function sseMov(c: EmuCpu, i: Instr): void {
  const x = c.xi32;
  const aligned = (i.sub & 0x100) !== 0;
  const d = i.reg;
  switch (i.sub & 0xff) {
    case 0: // load 128
      copy16(c, d, srcX(c, i, 16, aligned));
      return;
    case 1: // store 128
      if (i.mem) {
        const a = c.ea(i);
        if (aligned) checkAlign16(a);
        storeBytes(c, a, d * 16, 16);
      } else copy16(c, i.rm, d);
      return;
    case 2: // movss xmm, xmm/m32
      if (i.mem) {
        const s = srcX(c, i, 4, false);
        copy16(c, d, s);
      } else x[d * 4] = x[i.rm * 4];
      return;
    case 3: // movss xmm/m32, xmm
      if (i.mem) storeBytes(c, c.ea(i), d * 16, 4);
      else x[i.rm * 4] = x[d * 4];
      return;
    case 4: // movsd xmm, xmm/m64
      if (i.mem) copy16(c, d, srcX(c, i, 8, false));
      else {
        x[d * 4] = x[i.rm * 4];
        x[d * 4 + 1] = x[i.rm * 4 + 1];
      }
      return;
    case 5: // movsd xmm/m64, xmm
      if (i.mem) storeBytes(c, c.ea(i), d * 16, 8);
      else {
        x[i.rm * 4] = x[d * 4];
        x[i.rm * 4 + 1] = x[d * 4 + 1];
      }
      return;
    case 6: // movd xmm, r/m32
      x[d * 4] = c.rdE(i);
      x[d * 4 + 1] = x[d * 4 + 2] = x[d * 4 + 3] = 0;
      return;
    case 7: // movd r/m32, xmm
      if (i.mem) c.wr32(c.ea(i), x[d * 4]);
      else c.regs[i.rm] = x[d * 4];
      return;
    case 8: { // movq xmm, xmm/m64
      const s = srcX(c, i, 8, false);
      x[d * 4] = x[s * 4];
      x[d * 4 + 1] = x[s * 4 + 1];
      x[d * 4 + 2] = x[d * 4 + 3] = 0;
      return;
    }
    case 9: // movq xmm/m64, xmm
      if (i.mem) storeBytes(c, c.ea(i), d * 16, 8);
      else {
        x[i.rm * 4] = x[d * 4];
        x[i.rm * 4 + 1] = x[d * 4 + 1];
        x[i.rm * 4 + 2] = x[i.rm * 4 + 3] = 0;
      }
      return;
    case 10: { // movlps/movlpd xmm, m64
      const a = c.ea(i);
      loadBytes(c, a, d * 16, 8);
      return;
    }
    case 11: // movlps/movlpd m64, xmm
      storeBytes(c, c.ea(i), d * 16, 8);
      return;
    case 12: // movhps/movhpd xmm, m64
      loadBytes(c, c.ea(i), d * 16 + 8, 8);
      return;
    case 13: // movhps/movhpd m64, xmm
      storeBytes(c, c.ea(i), d * 16 + 8, 8);
      return;
    case 14: // movhlps xmm, xmm
      x[d * 4] = x[i.rm * 4 + 2];
      x[d * 4 + 1] = x[i.rm * 4 + 3];
      return;
    default: // movlhps xmm, xmm
      x[d * 4 + 2] = x[i.rm * 4];
      x[d * 4 + 3] = x[i.rm * 4 + 1];
  }
}

/** The default QNaN bit patterns x86 produces for invalid operations. */
export const QNAN64_HI = 0xfff80000 | 0;
export const QNAN32 = 0xffc00000 | 0;

/**
 * Arithmetic (0F 51, 58, 59, 5C-5F). sub: bits 0-3 operation (0 add, 1 mul, 2 sub, 3 min,
 * 4 div, 5 max, 6 sqrt), bits 4-5 form (0 ps, 1 pd, 2 ss, 3 sd).
 */
export function sseArith(c: EmuCpu, i: Instr): void {
  const op = i.sub & 15;
  const form = i.sub >> 4;
  const dbl = (form & 1) === 1;
  const scalar = form >= 2;
  const lanes = scalar ? 1 : dbl ? 2 : 4;
  const s = srcX(c, i, scalar ? (dbl ? 8 : 4) : 16, !scalar);
  const d = i.reg;
  if (dbl) {
    for (let l = 0; l < lanes; l++) arith64(c, op, d * 2 + l, s * 2 + l);
  } else {
    for (let l = 0; l < lanes; l++) arith32(c, op, d * 4 + l, s * 4 + l);
  }
}

function arith64(c: EmuCpu, op: number, di: number, si: number): void {
  const f = c.xf64, x = c.xi32;
  const a = f[di], b = f[si];
  if (op === 3 || op === 5) {
    // min/max return the second operand when either is NaN or both are zero (SDM MINSD).
    const keep = op === 3 ? a < b : a > b;
    if (!keep) { x[di * 2] = x[si * 2]; x[di * 2 + 1] = x[si * 2 + 1]; }
    return;
  }
  if (op === 6) {
    if (b !== b) { x[di * 2] = x[si * 2]; x[di * 2 + 1] = x[si * 2 + 1] | 0x80000; return; }
    const r = Math.sqrt(b);
    if (r !== r) { x[di * 2] = 0; x[di * 2 + 1] = QNAN64_HI; return; }
    f[di] = r;
    return;
  }
  if (a !== a || b !== b) {
    const from = a !== a ? di : si;
    x[di * 2] = x[from * 2];
    x[di * 2 + 1] = x[from * 2 + 1] | 0x80000;
    return;
  }
  const r = op === 0 ? a + b : op === 1 ? a * b : op === 2 ? a - b : a / b;
  if (r !== r) { x[di * 2] = 0; x[di * 2 + 1] = QNAN64_HI; return; }
  f[di] = r;
}

function arith32(c: EmuCpu, op: number, di: number, si: number): void {
  const f = c.xf32, x = c.xi32;
  const a = f[di], b = f[si];
  if (op === 3 || op === 5) {
    const keep = op === 3 ? a < b : a > b;
    if (!keep) x[di] = x[si];
    return;
  }
  if (op === 6) {
    if (b !== b) { x[di] = x[si] | 0x400000; return; }
    const r = Math.sqrt(b);
    if (r !== r) { x[di] = QNAN32; return; }
    f[di] = r;
    return;
  }
  if (a !== a || b !== b) {
    x[di] = (a !== a ? x[di] : x[si]) | 0x400000;
    return;
  }
  const r = op === 0 ? a + b : op === 1 ? a * b : op === 2 ? a - b : a / b;
  if (r !== r) { x[di] = QNAN32; return; }
  f[di] = r; // Float32Array stores round to nearest even: exact single-precision results
}

/** ucomiss/comiss/ucomisd/comisd (0F 2E, 2F; 66 = double): ZF, PF, CF; OF = SF = AF = 0. sub: 1 = double. */
export function comis(c: EmuCpu, i: Instr): void {
  const dbl = i.sub === 1;
  const s = srcX(c, i, dbl ? 8 : 4, false);
  const a = dbl ? c.xf64[i.reg * 2] : c.xf32[i.reg * 4];
  const b = dbl ? c.xf64[s * 2] : c.xf32[s * 4];
  let f: number;
  if (a !== a || b !== b) f = ZF | PF | CF;
  else if (a > b) f = 0;
  else if (a < b) f = CF;
  else f = ZF;
  c.flags = (c.flags & ~ARITH) | f;
  c.lazy = 0;
}

/** cmpps/cmppd/cmpss/cmpsd (0F C2 ib): all-ones/zero masks. sub: form as in sseArith. */
export function sseCmp(c: EmuCpu, i: Instr): void {
  const form = i.sub >> 4;
  const dbl = (form & 1) === 1;
  const scalar = form >= 2;
  const lanes = scalar ? 1 : dbl ? 2 : 4;
  const s = srcX(c, i, scalar ? (dbl ? 8 : 4) : 16, !scalar);
  const d = i.reg;
  const pred = i.imm & 7;
  for (let l = 0; l < lanes; l++) {
    const a = dbl ? c.xf64[d * 2 + l] : c.xf32[d * 4 + l];
    const b = dbl ? c.xf64[s * 2 + l] : c.xf32[s * 4 + l];
    const un = a !== a || b !== b;
    let t: boolean;
    switch (pred) {
      case 0: t = a === b; break;
      case 1: t = a < b; break;
      case 2: t = a <= b; break;
      case 3: t = un; break;
      case 4: t = !(a === b); break;
      case 5: t = !(a < b); break;
      case 6: t = !(a <= b); break;
      default: t = !un;
    }
    const v = t ? -1 : 0;
    if (dbl) c.xi32[d * 4 + l * 2] = c.xi32[d * 4 + l * 2 + 1] = v;
    else c.xi32[d * 4 + l] = v;
  }
}

/** Round to nearest, ties to even (MXCSR.RC = 00). */
export function roundEven(v: number): number {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** Convert to int32 with x86's "integer indefinite" (0x80000000) for NaN and out-of-range. */
export function toInt32(v: number, truncate: boolean): number {
  const r = truncate ? Math.trunc(v) : roundEven(v);
  return r >= -2147483648 && r <= 2147483647 ? r | 0 : -0x80000000;
}

/** Float32 bits -> float64 words (for NaN, with the payload kept and quieted). */
function f32NaNTo64(c: EmuCpu, bits: number, di: number): void {
  const m = (bits & 0x7fffff) | 0x400000;
  c.xi32[di * 2 + 1] = (bits & 0x80000000) | 0x7ff00000 | (m >>> 3);
  c.xi32[di * 2] = (m & 7) << 29;
}

function f64NaNTo32(c: EmuCpu, lo: number, hi: number): number {
  const m = ((hi & 0xfffff) << 3) | (lo >>> 29);
  return (hi & 0x80000000) | 0x7f800000 | 0x400000 | m;
}

/**
 * Conversions (0F 2A, 2C, 2D, 5A, 5B, E6). sub selects:
 * 0 cvtsi2ss, 1 cvtsi2sd, 2 cvttss2si, 3 cvttsd2si, 4 cvtss2si, 5 cvtsd2si, 6 cvtps2pd,
 * 7 cvtpd2ps, 8 cvtss2sd, 9 cvtsd2ss, 10 cvtdq2ps, 11 cvtps2dq, 12 cvttps2dq, 13 cvtdq2pd,
 * 14 cvttpd2dq, 15 cvtpd2dq.
 */
export function sseCvt(c: EmuCpu, i: Instr): void {
  const d = i.reg;
  const f64 = c.xf64, f32 = c.xf32, x = c.xi32;
  switch (i.sub) {
    case 0: f32[d * 4] = c.rdE(i); return;
    case 1: f64[d * 2] = c.rdE(i); return;
    case 2: case 4: {
      const s = srcX(c, i, 4, false);
      c.regs[d] = toInt32(f32[s * 4], i.sub === 2);
      return;
    }
    case 3: case 5: {
      const s = srcX(c, i, 8, false);
      c.regs[d] = toInt32(f64[s * 2], i.sub === 3);
      return;
    }
    case 6: { // cvtps2pd xmm, xmm/m64
      const s = srcX(c, i, 8, false);
      const b0 = x[s * 4], b1 = x[s * 4 + 1];
      const v0 = f32[s * 4], v1 = f32[s * 4 + 1];
      if (v0 !== v0) f32NaNTo64(c, b0, d * 2); else f64[d * 2] = v0;
      if (v1 !== v1) f32NaNTo64(c, b1, d * 2 + 1); else f64[d * 2 + 1] = v1;
      return;
    }
    case 7: { // cvtpd2ps: two floats in the low half, upper half zeroed
      const s = srcX(c, i, 16, true);
      const v0 = f64[s * 2], v1 = f64[s * 2 + 1];
      const w0 = v0 !== v0 ? f64NaNTo32(c, x[s * 4], x[s * 4 + 1]) : 0;
      const w1 = v1 !== v1 ? f64NaNTo32(c, x[s * 4 + 2], x[s * 4 + 3]) : 0;
      if (v0 !== v0) x[d * 4] = w0; else f32[d * 4] = v0;
      if (v1 !== v1) x[d * 4 + 1] = w1; else f32[d * 4 + 1] = v1;
      x[d * 4 + 2] = x[d * 4 + 3] = 0;
      return;
    }
    case 8: { // cvtss2sd
      const s = srcX(c, i, 4, false);
      const v = f32[s * 4];
      if (v !== v) f32NaNTo64(c, x[s * 4], d * 2); else f64[d * 2] = v;
      return;
    }
    case 9: { // cvtsd2ss
      const s = srcX(c, i, 8, false);
      const v = f64[s * 2];
      if (v !== v) x[d * 4] = f64NaNTo32(c, x[s * 4], x[s * 4 + 1]); else f32[d * 4] = v;
      return;
    }
    case 10: { // cvtdq2ps
      const s = srcX(c, i, 16, true);
      for (let l = 0; l < 4; l++) f32[d * 4 + l] = x[s * 4 + l];
      return;
    }
    case 11: case 12: { // cvtps2dq, cvttps2dq
      const s = srcX(c, i, 16, true);
      for (let l = 0; l < 4; l++) x[d * 4 + l] = toInt32(f32[s * 4 + l], i.sub === 12);
      return;
    }
    case 13: { // cvtdq2pd xmm, xmm/m64
      const s = srcX(c, i, 8, false);
      const a0 = x[s * 4], a1 = x[s * 4 + 1];
      f64[d * 2] = a0;
      f64[d * 2 + 1] = a1;
      return;
    }
    default: { // cvttpd2dq, cvtpd2dq
      const s = srcX(c, i, 16, true);
      const r0 = toInt32(f64[s * 2], i.sub === 14), r1 = toInt32(f64[s * 2 + 1], i.sub === 14);
      x[d * 4] = r0;
      x[d * 4 + 1] = r1;
      x[d * 4 + 2] = x[d * 4 + 3] = 0;
    }
  }
}

// Scratch lanes for integer SIMD: A = destination copy, B = source copy, R = result.
const bufA = new ArrayBuffer(16), bufB = new ArrayBuffer(16), bufR = new ArrayBuffer(16);
const A8 = new Uint8Array(bufA), B8 = new Uint8Array(bufB), R8 = new Uint8Array(bufR);
const A8s = new Int8Array(bufA), B8s = new Int8Array(bufB);
const A16 = new Uint16Array(bufA), B16 = new Uint16Array(bufB), R16 = new Uint16Array(bufR);
const A16s = new Int16Array(bufA), B16s = new Int16Array(bufB);
const A32 = new Int32Array(bufA), B32 = new Int32Array(bufB), R32 = new Int32Array(bufR);

function sat8s(v: number): number { return v > 127 ? 127 : v < -128 ? -128 : v; }
function sat8u(v: number): number { return v > 255 ? 255 : v < 0 ? 0 : v; }
function sat16s(v: number): number { return v > 32767 ? 32767 : v < -32768 ? -32768 : v; }
function sat16u(v: number): number { return v > 65535 ? 65535 : v < 0 ? 0 : v; }

/** 64-bit lane add/sub on int32 word pairs. */
function add64(lo1: number, hi1: number, lo2: number, hi2: number, sub: boolean, out: Int32Array, at: number): void {
  const l1 = lo1 >>> 0, l2 = lo2 >>> 0;
  let lo: number, carry: number;
  if (sub) { lo = l1 - l2; carry = lo < 0 ? -1 : 0; } else { lo = l1 + l2; carry = lo > 0xffffffff ? 1 : 0; }
  out[at] = lo | 0;
  out[at + 1] = (sub ? hi1 - hi2 : hi1 + hi2) + carry;
}

/**
 * Packed integer and packed logical operations, 66 0F xx and 0F 54-57 (sub = opcode byte,
 * plus 0x100 for the no-prefix ps logic forms). Memory operands must be 16-byte aligned.
 */
export function sseInt(c: EmuCpu, i: Instr): void {
  const s = srcX(c, i, 16, true);
  const d = i.reg;
  const x = c.xi32;
  for (let k = 0; k < 4; k++) { A32[k] = x[d * 4 + k]; B32[k] = x[s * 4 + k]; }
  const op = i.sub & 0xff;
  switch (op) {
    case 0x54: case 0xdb: for (let k = 0; k < 4; k++) R32[k] = A32[k] & B32[k]; break;
    case 0x55: case 0xdf: for (let k = 0; k < 4; k++) R32[k] = ~A32[k] & B32[k]; break;
    case 0x56: case 0xeb: for (let k = 0; k < 4; k++) R32[k] = A32[k] | B32[k]; break;
    case 0x57: case 0xef: for (let k = 0; k < 4; k++) R32[k] = A32[k] ^ B32[k]; break;
    case 0xfc: for (let k = 0; k < 16; k++) R8[k] = A8[k] + B8[k]; break;
    case 0xfd: for (let k = 0; k < 8; k++) R16[k] = A16[k] + B16[k]; break;
    case 0xfe: for (let k = 0; k < 4; k++) R32[k] = A32[k] + B32[k]; break;
    case 0xd4: add64(A32[0], A32[1], B32[0], B32[1], false, R32, 0); add64(A32[2], A32[3], B32[2], B32[3], false, R32, 2); break;
    case 0xf8: for (let k = 0; k < 16; k++) R8[k] = A8[k] - B8[k]; break;
    case 0xf9: for (let k = 0; k < 8; k++) R16[k] = A16[k] - B16[k]; break;
    case 0xfa: for (let k = 0; k < 4; k++) R32[k] = A32[k] - B32[k]; break;
    case 0xfb: add64(A32[0], A32[1], B32[0], B32[1], true, R32, 0); add64(A32[2], A32[3], B32[2], B32[3], true, R32, 2); break;
    case 0xec: for (let k = 0; k < 16; k++) R8[k] = sat8s(A8s[k] + B8s[k]); break;
    case 0xed: for (let k = 0; k < 8; k++) R16[k] = sat16s(A16s[k] + B16s[k]); break;
    case 0xe8: for (let k = 0; k < 16; k++) R8[k] = sat8s(A8s[k] - B8s[k]); break;
    case 0xe9: for (let k = 0; k < 8; k++) R16[k] = sat16s(A16s[k] - B16s[k]); break;
    case 0xdc: for (let k = 0; k < 16; k++) R8[k] = sat8u(A8[k] + B8[k]); break;
    case 0xdd: for (let k = 0; k < 8; k++) R16[k] = sat16u(A16[k] + B16[k]); break;
    case 0xd8: for (let k = 0; k < 16; k++) R8[k] = sat8u(A8[k] - B8[k]); break;
    case 0xd9: for (let k = 0; k < 8; k++) R16[k] = sat16u(A16[k] - B16[k]); break;
    case 0xd5: for (let k = 0; k < 8; k++) R16[k] = Math.imul(A16[k], B16[k]); break;
    case 0xe5: for (let k = 0; k < 8; k++) R16[k] = (A16s[k] * B16s[k]) >> 16; break;
    case 0xe4: for (let k = 0; k < 8; k++) R16[k] = (A16[k] * B16[k]) >>> 16; break;
    case 0xf4: for (let k = 0; k < 2; k++) {
      const a = A32[k * 2] >>> 0, b = B32[k * 2] >>> 0;
      R32[k * 2] = Math.imul(a, b);
      const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
      const mid = ((al * bl) >>> 16) + ((al * bh) & 0xffff) + ((ah * bl) & 0xffff);
      R32[k * 2 + 1] = ah * bh + ((al * bh) >>> 16) + ((ah * bl) >>> 16) + (mid >>> 16);
    } break;
    case 0xf5: for (let k = 0; k < 4; k++) R32[k] = A16s[k * 2] * B16s[k * 2] + A16s[k * 2 + 1] * B16s[k * 2 + 1]; break;
    case 0x74: for (let k = 0; k < 16; k++) R8[k] = A8[k] === B8[k] ? 0xff : 0; break;
    case 0x75: for (let k = 0; k < 8; k++) R16[k] = A16[k] === B16[k] ? 0xffff : 0; break;
    case 0x76: for (let k = 0; k < 4; k++) R32[k] = A32[k] === B32[k] ? -1 : 0; break;
    case 0x64: for (let k = 0; k < 16; k++) R8[k] = A8s[k] > B8s[k] ? 0xff : 0; break;
    case 0x65: for (let k = 0; k < 8; k++) R16[k] = A16s[k] > B16s[k] ? 0xffff : 0; break;
    case 0x66: for (let k = 0; k < 4; k++) R32[k] = A32[k] > B32[k] ? -1 : 0; break;
    case 0x60: for (let k = 0; k < 8; k++) { R8[k * 2] = A8[k]; R8[k * 2 + 1] = B8[k]; } break;
    case 0x61: for (let k = 0; k < 4; k++) { R16[k * 2] = A16[k]; R16[k * 2 + 1] = B16[k]; } break;
    case 0x62: R32[0] = A32[0]; R32[1] = B32[0]; R32[2] = A32[1]; R32[3] = B32[1]; break;
    case 0x6c: R32[0] = A32[0]; R32[1] = A32[1]; R32[2] = B32[0]; R32[3] = B32[1]; break;
    case 0x68: for (let k = 0; k < 8; k++) { R8[k * 2] = A8[k + 8]; R8[k * 2 + 1] = B8[k + 8]; } break;
    case 0x69: for (let k = 0; k < 4; k++) { R16[k * 2] = A16[k + 4]; R16[k * 2 + 1] = B16[k + 4]; } break;
    case 0x6a: R32[0] = A32[2]; R32[1] = B32[2]; R32[2] = A32[3]; R32[3] = B32[3]; break;
    case 0x6d: R32[0] = A32[2]; R32[1] = A32[3]; R32[2] = B32[2]; R32[3] = B32[3]; break;
    case 0x63: for (let k = 0; k < 8; k++) { R8[k] = sat8s(A16s[k]); R8[k + 8] = sat8s(B16s[k]); } break;
    case 0x67: for (let k = 0; k < 8; k++) { R8[k] = sat8u(A16s[k]); R8[k + 8] = sat8u(B16s[k]); } break;
    case 0x6b: for (let k = 0; k < 4; k++) { R16[k] = sat16s(A32[k]); R16[k + 4] = sat16s(B32[k]); } break;
    case 0xda: for (let k = 0; k < 16; k++) R8[k] = Math.min(A8[k], B8[k]); break;
    case 0xde: for (let k = 0; k < 16; k++) R8[k] = Math.max(A8[k], B8[k]); break;
    case 0xea: for (let k = 0; k < 8; k++) R16[k] = Math.min(A16s[k], B16s[k]); break;
    case 0xee: for (let k = 0; k < 8; k++) R16[k] = Math.max(A16s[k], B16s[k]); break;
    case 0xe0: for (let k = 0; k < 16; k++) R8[k] = (A8[k] + B8[k] + 1) >> 1; break;
    case 0xe3: for (let k = 0; k < 8; k++) R16[k] = (A16[k] + B16[k] + 1) >> 1; break;
    case 0xf6: {
      let s0 = 0, s1 = 0;
      for (let k = 0; k < 8; k++) { s0 += Math.abs(A8[k] - B8[k]); s1 += Math.abs(A8[k + 8] - B8[k + 8]); }
      R32[0] = s0; R32[1] = 0; R32[2] = s1; R32[3] = 0;
      break;
    }
    default: { // shifts by the count in an XMM register/m128 (D1-D3, E1, E2, F1-F3)
      const cnt = B32[1] !== 0 ? 64 : B32[0] >>> 0;
      shiftLanes(op, cnt);
    }
  }
  for (let k = 0; k < 4; k++) x[d * 4 + k] = R32[k];
}

/** Packed shifts of A into R. op: the opcode byte of the xmm-count form. */
function shiftLanes(op: number, cnt: number): void {
  switch (op) {
    case 0xd1: for (let k = 0; k < 8; k++) R16[k] = cnt > 15 ? 0 : A16[k] >>> cnt; break;
    case 0xd2: for (let k = 0; k < 4; k++) R32[k] = cnt > 31 ? 0 : A32[k] >>> cnt; break;
    case 0xd3: for (let k = 0; k < 2; k++) shift64(k, cnt, 'r'); break;
    case 0xe1: for (let k = 0; k < 8; k++) R16[k] = A16s[k] >> Math.min(cnt, 15); break;
    case 0xe2: for (let k = 0; k < 4; k++) R32[k] = A32[k] >> Math.min(cnt, 31); break;
    case 0xf1: for (let k = 0; k < 8; k++) R16[k] = cnt > 15 ? 0 : A16[k] << cnt; break;
    case 0xf2: for (let k = 0; k < 4; k++) R32[k] = cnt > 31 ? 0 : A32[k] << cnt; break;
    case 0xf3: for (let k = 0; k < 2; k++) shift64(k, cnt, 'l'); break;
    default: fault('invalid-opcode', `packed integer opcode 66 0f ${op.toString(16)} is not implemented`);
  }
}

function shift64(k: number, cnt: number, dir: 'l' | 'r'): void {
  const lo = A32[k * 2] >>> 0, hi = A32[k * 2 + 1] >>> 0;
  if (cnt > 63) { R32[k * 2] = 0; R32[k * 2 + 1] = 0; return; }
  if (cnt === 0) { R32[k * 2] = lo; R32[k * 2 + 1] = hi; return; }
  if (dir === 'l') {
    if (cnt >= 32) { R32[k * 2 + 1] = lo << (cnt - 32); R32[k * 2] = 0; }
    else { R32[k * 2 + 1] = (hi << cnt) | (lo >>> (32 - cnt)); R32[k * 2] = lo << cnt; }
  } else {
    if (cnt >= 32) { R32[k * 2] = hi >>> (cnt - 32); R32[k * 2 + 1] = 0; }
    else { R32[k * 2] = (lo >>> cnt) | (hi << (32 - cnt)); R32[k * 2 + 1] = hi >>> cnt; }
  }
}

/** Packed shifts by imm8 (66 0F 71/72/73 /n ib): sub = opcode byte << 4 | /n. */
export function sseShiftImm(c: EmuCpu, i: Instr): void {
  const d = i.rm;
  const x = c.xi32;
  for (let k = 0; k < 4; k++) A32[k] = x[d * 4 + k];
  const grp = i.sub >> 4, n = i.sub & 7, cnt = i.imm;
  if (grp === 0x73 && (n === 3 || n === 7)) { // psrldq / pslldq: whole-register byte shifts
    const b = Math.min(cnt, 16);
    for (let k = 0; k < 16; k++) {
      const from = n === 3 ? k + b : k - b;
      R8[k] = from >= 0 && from < 16 ? A8[from] : 0;
    }
  } else {
    const base = grp === 0x71 ? 0 : grp === 0x72 ? 1 : 2; // word, dword, qword
    const op = n === 2 ? [0xd1, 0xd2, 0xd3][base] : n === 4 ? [0xe1, 0xe2, -1][base] : n === 6 ? [0xf1, 0xf2, 0xf3][base] : -1;
    if (op < 0) fault('invalid-opcode', 'undefined packed shift');
    shiftLanes(op, cnt);
  }
  for (let k = 0; k < 4; k++) x[d * 4 + k] = R32[k];
}

/**
 * Shuffles and unpacks: sub 0 shufps, 1 shufpd, 2 pshufd, 3 pshuflw, 4 pshufhw,
 * 5 unpcklps, 6 unpcklpd, 7 unpckhps, 8 unpckhpd.
 */
export function sseShuf(c: EmuCpu, i: Instr): void {
  const s = srcX(c, i, 16, true);
  const d = i.reg;
  const x = c.xi32;
  for (let k = 0; k < 4; k++) { A32[k] = x[d * 4 + k]; B32[k] = x[s * 4 + k]; }
  const m = i.imm;
  switch (i.sub) {
    case 0: R32[0] = A32[m & 3]; R32[1] = A32[(m >> 2) & 3]; R32[2] = B32[(m >> 4) & 3]; R32[3] = B32[(m >> 6) & 3]; break;
    case 1: {
      const a = (m & 1) * 2, b = ((m >> 1) & 1) * 2;
      R32[0] = A32[a]; R32[1] = A32[a + 1]; R32[2] = B32[b]; R32[3] = B32[b + 1];
      break;
    }
    case 2: for (let k = 0; k < 4; k++) R32[k] = B32[(m >> (k * 2)) & 3]; break;
    case 3: for (let k = 0; k < 4; k++) { R16[k] = B16[(m >> (k * 2)) & 3]; R16[k + 4] = B16[k + 4]; } break;
    case 4: for (let k = 0; k < 4; k++) { R16[k] = B16[k]; R16[k + 4] = B16[4 + ((m >> (k * 2)) & 3)]; } break;
    case 5: R32[0] = A32[0]; R32[1] = B32[0]; R32[2] = A32[1]; R32[3] = B32[1]; break;
    case 6: R32[0] = A32[0]; R32[1] = A32[1]; R32[2] = B32[0]; R32[3] = B32[1]; break;
    case 7: R32[0] = A32[2]; R32[1] = B32[2]; R32[2] = A32[3]; R32[3] = B32[3]; break;
    default: R32[0] = A32[2]; R32[1] = A32[3]; R32[2] = B32[2]; R32[3] = B32[3];
  }
  for (let k = 0; k < 4; k++) x[d * 4 + k] = R32[k];
}

/** movmskps (0F 50), movmskpd (66 0F 50), pmovmskb (66 0F D7). sub: 0 ps, 1 pd, 2 b. */
export function sseMovmsk(c: EmuCpu, i: Instr): void {
  const s = i.rm;
  const x = c.xi32;
  let r = 0;
  if (i.sub === 0) for (let k = 0; k < 4; k++) r |= (x[s * 4 + k] >>> 31) << k;
  else if (i.sub === 1) r = (x[s * 4 + 1] >>> 31) | ((x[s * 4 + 3] >>> 31) << 1);
  else for (let k = 0; k < 16; k++) r |= (c.xu8[s * 16 + k] >> 7) << k;
  c.regs[i.reg] = r;
}

/** pextrw r32, xmm, imm8 (66 0F C5) and pinsrw xmm, r32/m16, imm8 (66 0F C4). sub: 0 extract, 1 insert. */
export function ssePw(c: EmuCpu, i: Instr): void {
  if (i.sub === 0) c.regs[i.reg] = c.xu16[i.rm * 8 + (i.imm & 7)];
  else c.xu16[i.reg * 8 + (i.imm & 7)] = i.mem ? c.rd16(c.ea(i)) : c.regs[i.rm];
}

/** ldmxcsr/stmxcsr (0F AE /2, /3). Only round-to-nearest without FTZ/DAZ is supported. */
export function mxcsrOp(c: EmuCpu, i: Instr): void {
  const a = c.ea(i);
  if (i.sub === 3) {
    c.wr32(a, c.mxcsr);
    return;
  }
  const v = c.rd32(a) >>> 0;
  if (v > 0xffff) fault('general-protection', 'ldmxcsr with reserved bits set');
  if ((v & 0xe040) !== 0) fault('general-protection', 'ldmxcsr: only round-to-nearest without FTZ/DAZ is supported by the emulator');
  c.mxcsr = v;
}
