/**
 * Seeded random test-case generation from the instruction table: every entry whose test
 * kind is 'oracle' or 'sse' gets encoded directly from its table fields (prefixes, opcode,
 * ModRM, immediates) with edge-case operands.
 */
import { ARITH, CF, DF, OF } from '../../src/cpu/emu/flags.js';
import type { OpSpec } from '../../src/cpu/emu/instr.js';
import { Rng as SeededRng } from '../../src/cpu/difftest/rng.js';
import { REC, type OracleCase, type Piece } from './harness.js';

/** The difftest xorshift32 without warm-up: deterministic, so built harnesses are cached across runs. */
export class Rng extends SeededRng {
  constructor(seed: number) {
    super(seed, 0);
  }
}

const EDGE32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000001, 0xffffffff, 0xfffffffe, 0xffffff80, 0xffff8000];
const EDGE8 = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 0x7f, 0x80, 0x81, 0xfe, 0xff];

export function edge32(r: Rng): number {
  switch (r.int(4)) {
    case 0: return r.pick(EDGE32);
    case 1: return r.int(64);
    default: return r.u32();
  }
}

function f64bytes(v: number): number[] {
  return Array.from(new Uint8Array(new Float64Array([v]).buffer));
}
function u64bytes(lo: number, hi: number): number[] {
  return Array.from(new Uint8Array(new Uint32Array([lo, hi]).buffer));
}
function f32bytes(v: number): number[] {
  return Array.from(new Uint8Array(new Float32Array([v]).buffer));
}
function u32bytes(v: number): number[] {
  return Array.from(new Uint8Array(new Uint32Array([v >>> 0]).buffer));
}

/** 8 bytes holding an interesting double (or raw NaN patterns). */
export function specialF64(r: Rng): number[] {
  switch (r.int(24)) {
    case 0: return f64bytes(0);
    case 1: return f64bytes(-0);
    case 2: return f64bytes(Infinity);
    case 3: return f64bytes(-Infinity);
    case 4: return u64bytes(0, 0x7ff80000); // QNaN
    case 5: return u64bytes(0x12345, 0x7ff00000 | 0x1234); // SNaN with payload
    case 6: return u64bytes(0xabcdef, 0xfff81234); // negative QNaN with payload
    case 7: return f64bytes(5e-324);
    case 8: return f64bytes(2147483648);
    case 9: return f64bytes(-2147483648.5);
    case 10: return f64bytes(2147483647.5);
    case 11: return f64bytes(-2147483649);
    case 12: return f64bytes(r.pick([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5]));
    case 13: return f64bytes(1e300);
    case 14: return f64bytes(Number.MAX_VALUE);
    case 15: return f64bytes(9223372036854775808);
    case 16: return f64bytes(r.pick([1, -1, 0.1, 3, 10, 1e-310]));
    default: return f64bytes(((r.u32() | 0) / (1 + r.int(1000))) * (r.bool() ? 1 : 1e-3));
  }
}

/** 4 bytes holding an interesting float. */
export function specialF32(r: Rng): number[] {
  switch (r.int(20)) {
    case 0: return f32bytes(0);
    case 1: return f32bytes(-0);
    case 2: return f32bytes(Infinity);
    case 3: return f32bytes(-Infinity);
    case 4: return u32bytes(0x7fc00000);
    case 5: return u32bytes(0x7f801234); // SNaN
    case 6: return u32bytes(0xffc01234);
    case 7: return u32bytes(1); // denormal
    case 8: return f32bytes(2147483648);
    case 9: return f32bytes(-2147483648);
    case 10: return f32bytes(r.pick([0.5, 1.5, 2.5, -0.5, -2.5, 3.5]));
    case 11: return f32bytes(3.4e38);
    case 12: return f32bytes(r.pick([1, -1, 0.1, 3, 10, 1e-40]));
    default: return f32bytes(((r.u32() | 0) / (1 + r.int(1000))) * (r.bool() ? 1 : 1e-3));
  }
}

/** 16 bytes of lanes matching the entry's data type. */
function vec(r: Rng, kind: 'f64' | 'f32' | 'int'): number[] {
  const out: number[] = [];
  while (out.length < 16) {
    if (kind === 'f64') out.push(...specialF64(r));
    else if (kind === 'f32') out.push(...specialF32(r));
    else out.push(...u32bytes(r.int(3) === 0 ? r.pick(EDGE32) : r.u32()));
  }
  return out;
}

function laneKind(s: OpSpec): 'f64' | 'f32' | 'int' {
  const m = s.mnemonic;
  if (/(sd|pd)$/.test(m) || /2s[sd]$|2pd|2dq$/.test(m) && m.includes('d2')) return 'f64';
  if (/(ss|ps)$/.test(m) || m.startsWith('cvtss') || m.startsWith('cvttss') || m.startsWith('cvtps') || m.startsWith('cvttps')) return 'f32';
  if (m.startsWith('cvtsd') || m.startsWith('cvttsd') || m.startsWith('cvtpd') || m.startsWith('cvttpd')) return 'f64';
  return 'int';
}

function imm(r: Rng, bytes: number): number[] {
  const v = bytes === 1 ? r.pick(EDGE8.concat([r.int(256), r.int(256)])) : edge32(r);
  return Array.from({ length: bytes }, (_, k) => (v >>> (8 * k)) & 0xff);
}

const GPR_NO_ESP = [0, 1, 2, 3, 5, 6, 7];

/** SSE forms whose memory operand has no 16-byte alignment requirement. */
const UNALIGNED_OK = /^(movups|movupd|movdqu|movss|movsd|movlps|movlpd|movhps|movhpd|movd|movq|cvtt?s[sd]2si|cvts[sd]2s[sd]|cvtsi2s[sd]|cvtps2pd|cvtdq2pd|u?comis[sd]|(add|sub|mul|div|min|max|sqrt|cmp)s[sd]|pinsrw)$/;

/** True when the oracle generator can exercise the entry (the rest have directed tests). */
export function oracleTestable(s: OpSpec): boolean {
  return (s.test === 'oracle' || s.test === 'sse');
}

/** Build `n` random cases for one table entry. */
export function casesFor(s: OpSpec, r: Rng, n: number): OracleCase[] {
  const out: OracleCase[] = [];
  for (let k = 0; k < n; k++) out.push(oneCase(s, r, k));
  return out;
}

function oneCase(s: OpSpec, r: Rng, k: number): OracleCase {
  const code: Piece[] = [];
  const regs: (number | string)[] = Array.from({ length: 8 }, () => edge32(r));
  const sse = s.size === 'x' || s.test === 'sse';
  const isBranch = s.imm === 'rel8' || s.imm === 'relz';
  const op16 = s.size === 'v' && !isBranch && r.int(3) === 0;
  const osz = s.size === 'b' ? 1 : op16 ? 2 : 4;
  let flagMask = (ARITH | DF) & ~s.flagsUndef;
  let eflags = 0x202 | (r.u32() & ARITH);
  const buf = Array.from({ length: 64 }, () => r.int(256));
  const buf2 = Array.from({ length: 64 }, () => r.int(256));
  const lane = sse ? laneKind(s) : 'int';
  const xmm = sse ? Array.from({ length: 8 }, () => vec(r, lane)).flat() : null;
  if (sse) buf.splice(16, 16, ...vec(r, lane));
  const isString = s.op >= 0xa4 && s.op <= 0xaf && s.op !== 0xa8 && s.op !== 0xa9;

  // Prefixes.
  const mem = s.form === 'mem' || (s.form === 'any' && s.modrm && r.bool());
  if (s.lockable && mem && r.int(3) === 0) code.push(0xf0);
  if (op16 && s.mnemonic !== 'popf') code.push(0x66);
  if (s.pfx) code.push(s.pfx);
  if (isString) {
    const rep = r.pick([0, 0xf3, 0xf2]);
    if (rep) code.push(rep);
    regs[6] = `REC+${REC.BUF + 16 + r.int(16)}`;
    regs[7] = `REC+${REC.BUF2 + 16 + r.int(16)}`;
    regs[1] = r.int(7);
    if (r.bool()) eflags |= DF;
    if (r.bool()) for (let x = 0; x < 64; x++) buf2[x] = buf[x] ^ (r.int(5) === 0 ? 1 : 0);
    if (r.bool()) regs[0] = buf[16] | (buf[17] << 8) | (buf[18] << 16) | (buf[19] << 24);
  }
  if (s.mnemonic === 'popf') {
    // Pop a safe image: random arithmetic flags and DF (never TF or AC, which would trap natively).
    const v = (r.u32() & (ARITH | DF)) | 0x202;
    code.push(0x68, v & 0xff, (v >>> 8) & 0xff, 0, 0);
    if (op16) code.push(0x66);
  }
  // Opcode.
  let reg = s.plusR ? r.pick(s.size === 'b' ? [0, 1, 2, 3, 4, 5, 6, 7] : GPR_NO_ESP) : 0;
  if (s.op >> 8 === 0x0f) code.push(0x0f);
  code.push((s.op & 0xff) + (s.plusR ? reg : 0));
  // ModRM.
  const ALL8 = [0, 1, 2, 3, 4, 5, 6, 7];
  const anyReg = s.size === 'b' && !sse ? ALL8 : GPR_NO_ESP;
  // SSE operands are XMM registers (all eight usable) except where a GPR is named.
  const regChoices = sse && !/^(cvtt?s[sd]2si|movmsk|pmovmskb|pextrw)/.test(s.mnemonic) ? ALL8 : anyReg;
  const rmChoices = sse && !/^(cvtsi2s|movd|pinsrw)/.test(s.mnemonic) ? ALL8 : anyReg;
  let rm = 0;
  const m = s.mnemonic;
  const isDiv = m === 'div' || m === 'idiv';
  if (s.modrm) {
    reg = s.ext >= 0 ? s.ext : r.pick(regChoices);
    if (mem) {
      const plain = /^(bt|bts|btr|btc)$/.test(s.mnemonic) && s.op !== 0x0fba;
      // Operands without an alignment rule also get misaligned addresses (x86 allows them).
      const skew = sse && UNALIGNED_OK.test(s.mnemonic) && r.bool() ? 1 + r.int(7) : 0;
      code.push(...memOperand(r, reg, regs, plain ? 0 : r.int(4), skew));
    } else {
      rm = s.rmExact >= 0 ? s.rmExact : r.pick(isDiv ? [1, 3, 5, 6, 7] : rmChoices);
      code.push(0xc0 | (reg << 3) | rm);
    }
  }
  // Immediates.
  let immVal = 0;
  switch (s.imm) {
    case 'ib': case 'ibs': {
      const b = imm(r, 1);
      immVal = b[0];
      code.push(...b);
      break;
    }
    case 'iw': code.push(...imm(r, 2)); break;
    case 'iz': code.push(...imm(r, osz === 2 ? 2 : 4)); break;
    case 'moffs': code.push({ long: `REC+${REC.BUF + 16}` }); break;
    case 'iwib': code.push(r.int(40), 0, r.int(4)); break;
    case 'rel8': code.push(1, 0x45); break; // taken: skip `inc ebp`
    case 'relz': code.push(1, 0, 0, 0, 0x45); break;
    default:
  }
  // Per-instruction operand shaping.
  if (m === 'xlat') regs[3] = `REC+${REC.BUF}`;
  if (m === 'enter' || m === 'leave') regs[5] = `REC+${REC.STACK_TOP - 48}`;
  if (m === 'loop' || m === 'loope' || m === 'loopne' || m === 'jecxz') regs[1] = r.pick([0, 1, 2, 0xffffffff]);
  if (/^(bt|bts|btr|btc)$/.test(m) && s.op !== 0x0fba && mem) regs[reg] = (r.int(384) - 128) | 0;
  if (s.op >= 0xc0 && s.op <= 0xd3 && s.ext >= 0 && !sse) {
    // Shifts/rotates: a small count set, OF defined only for a count of 1, CF undefined past the width.
    const isCl = s.op === 0xd2 || s.op === 0xd3;
    if (isCl) regs[1] = ((regs[1] as number) & ~0xff) | r.pick([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 0xff]);
    const raw = s.op === 0xd0 || s.op === 0xd1 ? 1 : isCl ? (regs[1] as number) & 0xff : immVal;
    const cnt = raw & 31;
    if (cnt === 1) flagMask |= OF;
    if (cnt === 0) flagMask = ARITH | DF;
    const bits = osz * 8;
    if (s.ext >= 4 && cnt > bits) flagMask &= ~CF;
    if (s.ext >= 4 && cnt >= bits && osz < 4) flagMask &= ~CF;
  }
  if (m === 'shld' || m === 'shrd') {
    const isCl = s.op === 0x0fa5 || s.op === 0x0fad;
    if (isCl) regs[1] = r.pick([0, 1, 2, 4, 8, 15, 16, 31, 32, 33]);
    const cnt = (isCl ? (regs[1] as number) : immVal) & 31;
    if (osz === 2 && cnt > 16) {
      // Result and flags undefined: use a defined count instead.
      if (isCl) regs[1] = 3;
      else code[code.length - 1] = 3;
    }
    const c2 = (isCl ? (regs[1] as number) : (code[code.length - 1] as number)) & 31;
    if (c2 === 1) flagMask |= OF;
    if (c2 === 0) flagMask = ARITH | DF;
  }
  if (m === 'cmpxchg' && r.bool()) {
    const v = mem ? buf[16] | (buf[17] << 8) | (buf[18] << 16) | (buf[19] << 24) : (regs[rm] as number);
    regs[0] = v;
  }
  if (m === 'cmpxchg8b' && r.bool()) {
    regs[0] = buf[16] | (buf[17] << 8) | (buf[18] << 16) | (buf[19] << 24);
    regs[2] = buf[20] | (buf[21] << 8) | (buf[22] << 16) | (buf[23] << 24);
  }
  if (m === 'bsf' || m === 'bsr') {
    if (r.int(4) === 0) {
      if (mem) buf.fill(0, 16, 20);
      else regs[rm] = 0;
    }
  }
  if (isDiv) shapeDivision(s, r, regs, buf, mem, rm, osz);
  if (m === 'aam' && immVal === 0) code[code.length - 1] = 10; // aam 0 raises #DE (tested separately)
  if (m === 'out' || m === 'hlt') throw new Error('not oracle-testable');
  const name = `${s.mnemonic} (${s.pfx ? s.pfx.toString(16) + ' ' : ''}${s.op.toString(16)}${s.ext >= 0 ? '/' + s.ext : ''}${mem ? ' mem' : s.modrm ? ' reg' : ''}${osz === 2 ? ' o16' : ''}) #${k}`;
  return {
    name,
    code,
    regs,
    eflags,
    xmm: xmm ? new Uint8Array(xmm) : null,
    buf: new Uint8Array(buf),
    buf2: new Uint8Array(buf2),
    flagMask,
  };
}

/**
 * ModRM (+SIB, displacement) bytes addressing REC.BUF+16 in one of four forms: 0 disp32,
 * 1 [base+disp8], 2 [base+index*scale+disp32] (base may be ESP), 3 [index*scale+disp32].
 * Address registers come from EBX/EBP/ESI/EDI so implicit EAX/ECX/EDX uses never clash.
 */
function memOperand(r: Rng, reg: number, regs: (number | string)[], form: number, skew = 0): Piece[] {
  const target = REC.BUF + 16 + skew;
  const addrRegs = [3, 5, 6, 7];
  switch (form) {
    case 1: {
      const base = r.pick(addrRegs);
      const d8 = r.int(128) - 64;
      regs[base] = `REC+${target - d8}`;
      return [0x40 | (reg << 3) | base, d8 & 0xff];
    }
    case 2: {
      const base = r.pick([...addrRegs, 4]);
      const index = r.pick(addrRegs.filter((x) => x !== base));
      const scale = r.int(4);
      const iv = r.int(4);
      regs[index] = iv;
      const sib = (scale << 6) | (index << 3) | base;
      if (base === 4) {
        // ESP is the harness stack pointer (REC+STACK_TOP): the displacement does the rest.
        const d = target - REC.STACK_TOP - (iv << scale);
        return [0x80 | (reg << 3) | 4, sib, d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff, (d >>> 24) & 0xff];
      }
      const d = r.int(200) - 100;
      regs[base] = `REC+${target - (iv << scale) - d}`;
      return [0x80 | (reg << 3) | 4, sib, d & 0xff, (d >> 8) & 0xff, (d >> 16) & 0xff, (d >>> 24) & 0xff];
    }
    case 3: {
      const index = r.pick(addrRegs);
      const scale = r.int(4);
      const iv = r.int(4);
      regs[index] = iv;
      return [(reg << 3) | 4, (scale << 6) | (index << 3) | 5, { long: `REC+${target - (iv << scale)}` }];
    }
    default:
      return [(reg << 3) | 5, { long: `REC+${target}` }];
  }
}

/** Pick dividend/divisor values that do not raise #DE (faults are tested separately). */
function shapeDivision(s: OpSpec, r: Rng, regs: (number | string)[], buf: number[], mem: boolean, rm: number, osz: number): void {
  const signed = s.mnemonic === 'idiv';
  const R = regs as number[];
  const readDivisor = (): number => {
    if (mem) {
      const v = buf[16] | (buf[17] << 8) | (buf[18] << 16) | (buf[19] << 24);
      return osz === 1 ? v & 0xff : osz === 2 ? v & 0xffff : v >>> 0;
    }
    if (osz === 1) return rm < 4 ? R[rm] & 0xff : (R[rm - 4] >>> 8) & 0xff;
    return osz === 2 ? R[rm] & 0xffff : R[rm] >>> 0;
  };
  const writeDivisor = (v: number) => {
    if (mem) { buf[16] = v & 0xff; buf[17] = (v >>> 8) & 0xff; buf[18] = (v >>> 16) & 0xff; buf[19] = (v >>> 24) & 0xff; return; }
    if (osz === 1) {
      if (rm < 4) R[rm] = (R[rm] & ~0xff) | (v & 0xff);
      else R[rm - 4] = (R[rm - 4] & ~0xff00) | ((v & 0xff) << 8);
    } else if (osz === 2) R[rm] = (R[rm] & ~0xffff) | (v & 0xffff);
    else R[rm] = v;
  };
  let d = readDivisor();
  if (d === 0) { d = 1 + r.int(200); writeDivisor(d); }
  const bits = osz * 8;
  const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const lowOf = () => (osz === 1 ? R[0] & 0xff : osz === 2 ? R[0] & 0xffff : R[0] >>> 0);
  const setHigh = (h: number) => {
    if (osz === 1) R[0] = (R[0] & ~0xff00) | ((h & 0xff) << 8);
    else if (osz === 2) R[2] = (R[2] & ~0xffff) | (h & 0xffff);
    else R[2] = h >>> 0;
  };
  if (!signed) {
    setHigh(r.int(d));
    return;
  }
  const sd = d & (1 << (bits - 1)) ? d - 2 ** bits : d;
  let low = lowOf();
  const sl = low & (1 << (bits - 1)) || (bits === 32 && low >= 0x80000000) ? low - 2 ** bits : low;
  if (sd === -1 && sl === -(2 ** (bits - 1))) {
    low = 5;
    if (osz === 1) R[0] = (R[0] & ~0xff) | 5;
    else if (osz === 2) R[0] = (R[0] & ~0xffff) | 5;
    else R[0] = 5;
    setHigh(0);
    return;
  }
  setHigh(sl < 0 ? mask : 0);
}

/** A special double with moderate magnitude (the x87 model uses doubles, whose exponent range is narrower). */
export function moderateF64(r: Rng): number[] {
  for (;;) {
    const b = specialF64(r);
    const v = new Float64Array(new Uint8Array(b).buffer)[0];
    if (!(Math.abs(v) > 1e150) && !(v !== 0 && Math.abs(v) < 1e-150)) return b;
  }
}
