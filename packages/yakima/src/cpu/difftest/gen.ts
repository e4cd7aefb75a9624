/**
 * Random instruction sequences for the differential tester, drawn from the emulator's own
 * instruction table (`TABLE`). Every table entry the host can run safely in a sequence gets
 * an encoder that picks operands at random (seeded):
 *
 * * Registers: EBX is the pointer register (it holds an address inside the case's scratch
 *   memory for the whole sequence) and ESP the stack pointer, so neither is ever named as an
 *   operand; every other GPR, byte register and XMM register is.
 * * Memory operands address the scratch area through EBX ([ebx+disp8], [ebx+disp32], both SIB
 *   forms) or an absolute disp32/moffs; 16-byte SSE operands are aligned unless the form
 *   allows misalignment.
 * * Instructions whose safety or flag effects depend on run-time values come with the
 *   instructions that set those values (a "step"): `mov cl, n` before shifts by CL, the
 *   dividend and a non-zero divisor before div/idiv, ESI/EDI/ECX before string instructions,
 *   `push imm32` before popf (only arithmetic flags and DF), a bit offset before bt* with a
 *   memory operand. Shrinking removes whole steps.
 * * Branches (jcc, loop*, jecxz) only jump forward inside the sequence (skipping 0-3 steps).
 *
 * Flags: each step records the flags it reads, writes and leaves undefined (SDM "Flags
 * Affected", from the table, refined by the actual shift count). `analyze` walks the sequence
 * (joining at branch targets): a step must not read a flag that is undefined at that point
 * (such steps are dropped), and the flags still undefined at the end are masked.
 */
import { ARITH, AF, CF, DF, OF, PF, SF, ZF } from '../emu/flags.js';
import type { OpSpec } from '../emu/instr.js';
import { TABLE } from '../emu/table.js';
import { PTR_OFF, REC, type CaseInput, type CodePiece } from './image.js';
import { Rng } from './rng.js';

/** One machine instruction of a step; `branch` = a forward branch whose displacement is laid out later. */
export interface GenInsn {
  bytes: CodePiece[];
  branch?: { skip: number; wide: boolean };
}

/** The unit of generation and shrinking: the instruction under test plus the ones that set up its operands. */
export interface Step {
  /** Short description: the table entry (mnemonic, opcode) and setup. */
  text: string;
  insns: GenInsn[];
  /** Flags read / written with defined values / left undefined. */
  fin: number;
  fout: number;
  fundef: number;
  /** Net bytes pushed on the stack (negative: popped). */
  push: number;
  /** Uses XMM registers. */
  sse: boolean;
}

/** A generated test case: steps plus the initial state. */
export interface DiffCase {
  steps: Step[];
  /** EAX..EDI (EBX and ESP are set by the harness). */
  regs: number[];
  eflags: number;
  /** 128 bytes or null. */
  xmm: number[] | null;
  scratch: number[];
  stack: number[];
}

export interface GenOptions {
  /** Generate SSE/SSE2 instructions (and load/store XMM0-7). */
  sse: boolean;
  /** Maximum steps per sequence. */
  maxSteps: number;
  /** Entries to leave out (e.g. what an oracle cannot run). */
  exclude?: (s: OpSpec) => boolean;
}

// ------------------------------------------------------------------ operand values
const EDGE32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0x80000001, 0xffffffff, 0xfffffffe, 0xffffff80, 0xffff8000];
const EDGE8 = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 0x7f, 0x80, 0x81, 0xfe, 0xff];

function edge32(r: Rng): number {
  switch (r.int(4)) {
    case 0: return r.pick(EDGE32);
    case 1: return r.int(64);
    default: return r.u32();
  }
}
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const leN = (v: number, n: number): number[] => le32(v).slice(0, n);

function immBytes(r: Rng, n: number): number[] {
  if (n === 1) return [r.oneIn(3) ? r.int(256) : r.pick(EDGE8)];
  return leN(edge32(r), n);
}

function f64(v: number): number[] {
  return Array.from(new Uint8Array(new Float64Array([v]).buffer));
}
function f32(v: number): number[] {
  return Array.from(new Uint8Array(new Float32Array([v]).buffer));
}
function specialF64(r: Rng): number[] {
  switch (r.int(20)) {
    case 0: return f64(0);
    case 1: return f64(-0);
    case 2: return f64(Infinity);
    case 3: return f64(-Infinity);
    case 4: return [...le32(0), ...le32(0x7ff80000)];
    case 5: return [...le32(0x12345), ...le32(0x7ff01234)]; // SNaN
    case 6: return [...le32(0xabcdef), ...le32(0xfff81234)];
    case 7: return f64(5e-324);
    case 8: return f64(r.pick([2147483648, -2147483648.5, 2147483647.5, -2147483649, 9223372036854775808]));
    case 9: return f64(r.pick([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.5, 1, -1, 0.1, 3, 1e-310, 1e300]));
    default: return f64(((r.u32() | 0) / (1 + r.int(1000))) * (r.bool() ? 1 : 1e-3));
  }
}
function specialF32(r: Rng): number[] {
  switch (r.int(16)) {
    case 0: return f32(0);
    case 1: return f32(-0);
    case 2: return f32(r.bool() ? Infinity : -Infinity);
    case 3: return le32(0x7fc00000);
    case 4: return le32(0x7f801234);
    case 5: return le32(0xffc01234);
    case 6: return le32(1);
    case 7: return f32(r.pick([2147483648, -2147483648, 0.5, 1.5, 2.5, -0.5, -2.5, 3.5, 3.4e38, 1e-40]));
    default: return f32(((r.u32() | 0) / (1 + r.int(1000))) * (r.bool() ? 1 : 1e-3));
  }
}
/** 16 bytes: two doubles, four floats or four integers. */
function vec16(r: Rng): number[] {
  const kind = r.int(3);
  const out: number[] = [];
  while (out.length < 16) {
    if (kind === 0) out.push(...specialF64(r));
    else if (kind === 1) out.push(...specialF32(r));
    else out.push(...le32(r.oneIn(3) ? r.pick(EDGE32) : r.u32()));
  }
  return out;
}

// ------------------------------------------------------------------ registers and operands
/** Writable 16/32-bit registers (not EBX: the pointer; not ESP). */
const GPR_W = [0, 1, 2, 5, 6, 7];
/** Writable byte registers: AL CL DL AH CH DH (not BL, BH). */
const GPR8_W = [0, 1, 2, 4, 5, 6];
const XMM = [0, 1, 2, 3, 4, 5, 6, 7];

/** SSE forms whose memory operand may be misaligned. */
const UNALIGNED_OK = /^(movups|movupd|movdqu|movss|movsd|movlps|movlpd|movhps|movhpd|movd|movq|cvtt?s[sd]2si|cvts[sd]2s[sd]|cvtsi2s[sd]|cvtps2pd|cvtdq2pd|u?comis[sd]|(add|sub|mul|div|min|max|sqrt|cmp)s[sd]|pinsrw)$/;

/** A memory operand: ModRM(+SIB, disp) bytes for a given ModRM.reg, and the scratch offset it addresses. */
interface MemOp {
  enc: (reg: number) => CodePiece[];
  off: number;
}

function memOp(r: Rng, opts: { align16?: boolean; lo?: number; hi?: number } = {}): MemOp {
  const lo = opts.lo ?? 0;
  const hi = opts.hi ?? REC.SCRATCH_LEN - 24;
  let off = lo + r.int(hi - lo + 1);
  if (opts.align16 || r.oneIn(2)) off = (off + 15) & ~15;
  if (off > hi) off -= 16;
  const d = off - PTR_OFF;
  const disp8 = d >= -128 && d <= 127;
  const form = r.int(5);
  if (disp8 && form === 0) return { off, enc: (reg) => [0x40 | (reg << 3) | 3, d & 0xff] };
  if (disp8 && form === 1) return { off, enc: (reg) => [0x44 | (reg << 3), 0x23, d & 0xff] }; // SIB base=ebx, no index
  if (form === 2) return { off, enc: (reg) => [0x04 | (reg << 3), 0x1d, ...le32(d)] }; // SIB index=ebx*1, no base, disp32
  if (form === 3) return { off, enc: (reg) => [0x05 | (reg << 3), { rel: REC.SCRATCH + off }] }; // absolute disp32
  return { off, enc: (reg) => [0x80 | (reg << 3) | 3, ...le32(d)] }; // [ebx+disp32]
}

/** `mov reg, imm` of the given size. */
function setReg(size: number, reg: number, v: number): CodePiece[] {
  if (size === 1) return [0xb0 + reg, v & 0xff];
  if (size === 2) return [0x66, 0xb8 + reg, ...leN(v, 2)];
  return [0xb8 + reg, ...le32(v)];
}
/** `mov size [mem], imm`. */
function setMem(size: number, m: MemOp, v: number): CodePiece[] {
  if (size === 1) return [0xc6, ...m.enc(0), v & 0xff];
  if (size === 2) return [0x66, 0xc7, ...m.enc(0), ...leN(v, 2)];
  return [0xc7, ...m.enc(0), ...le32(v)];
}

/** Flags each condition code reads. */
const CC_FLAGS = [OF, OF, CF, CF, ZF, ZF, CF | ZF, CF | ZF, SF, SF, PF, PF, SF | OF, SF | OF, ZF | SF | OF, ZF | SF | OF];

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

function entryName(s: OpSpec): string {
  return `${s.mnemonic} ${s.pfx ? hex2(s.pfx) + ' ' : ''}${s.op > 0xff ? '0f ' + hex2(s.op & 0xff) : hex2(s.op)}${s.ext >= 0 ? '/' + s.ext : ''}`;
}

/** Entries never generated: control transfers out of the sequence, stack-frame changes, VMM exits, x87 (state not compared). */
const EXCLUDED = new Set(['enter', 'leave', 'bound', 'popa', 'hlt', 'out', 'jmp', 'call', 'ret', 'cpuid', 'rdtsc', 'ud2', 'ldmxcsr', 'stmxcsr']);

/** Table entries the generator can use (before oracle-specific exclusions). */
export function generatorEntries(sse: boolean): OpSpec[] {
  return TABLE.filter((s) => (s.test === 'oracle' || (sse && s.test === 'sse')) && !EXCLUDED.has(s.mnemonic));
}

const isString = (s: OpSpec): boolean => s.test === 'oracle' && s.op >= 0xa4 && s.op <= 0xaf && s.op !== 0xa8 && s.op !== 0xa9;

/** Build one step around table entry `s`. */
export function makeStep(s: OpSpec, r: Rng): Step {
  const m = s.mnemonic;
  const sse = s.size === 'x' || s.test === 'sse';
  const isBranch = s.imm === 'rel8' || s.imm === 'relz';
  const op16 = s.size === 'v' && !isBranch && !sse && r.oneIn(3);
  const osz = s.size === 'b' ? 1 : op16 ? 2 : 4;
  const pre: CodePiece[] = []; // setup instructions
  const main: CodePiece[] = [];
  let fin = s.flagsIn, fout = s.flagsOut, fundef = s.flagsUndef;
  let push = 0;
  let note = '';

  // String instructions: a complete setup.
  if (isString(s)) {
    const rep = r.pick([0, 0, 0xf3, 0xf2]);
    const n = r.int(9);
    if (r.oneIn(3)) {
      const std = r.bool();
      pre.push(std ? 0xfd : 0xfc);
      fout |= DF;
    }
    const a = 48 + r.int(160), b = r.bool() ? a + 256 : 48 + r.int(400);
    pre.push(0xbe, { rel: REC.SCRATCH + a }, 0xbf, { rel: REC.SCRATCH + b }, 0xb9, ...le32(n));
    if (op16) main.push(0x66);
    if (rep) main.push(rep);
    main.push(s.op);
    if (rep && n === 0) fout = fout & DF;
    note = `${rep ? (rep === 0xf3 ? 'rep ' : 'repne ') : ''}ecx=${n}`;
    return { text: `${entryName(s)}${op16 ? ' o16' : ''} (${note})`, insns: [{ bytes: pre }, { bytes: main }].filter((x) => x.bytes.length), fin, fout, fundef, push, sse };
  }
  if (m === 'popf') {
    const v = (r.u32() & (ARITH | DF)) | 0x202;
    return { text: `push 0x${v.toString(16)}; popf${op16 ? ' o16' : ''}`, insns: [{ bytes: [0x68, ...le32(v)] }, { bytes: op16 ? [0x66, 0x9d] : [0x9d] }], fin: 0, fout: ARITH | DF, fundef: 0, push: op16 ? 2 : 0, sse };
  }
  if (m === 'pusha') {
    const pair = r.bool();
    const p = op16 ? [0x66] : [];
    const insns: GenInsn[] = [{ bytes: [...p, 0x60] }];
    if (pair) insns.push({ bytes: [...p, 0x61] });
    return { text: pair ? 'pusha; popa' : 'pusha', insns, fin: 0, fout: 0, fundef: 0, push: pair ? 0 : 8 * osz, sse };
  }
  if (isBranch) {
    const cc = s.op >= 0x70 && s.op < 0x80 ? s.op - 0x70 : s.op >= 0x0f80 && s.op < 0x0f90 ? s.op - 0x0f80 : -1;
    if (cc >= 0) fin = CC_FLAGS[cc]!;
    const insns: GenInsn[] = [];
    if (s.op >= 0xe0 && s.op <= 0xe3 && r.bool()) {
      const c = r.pick([0, 1, 2, 0xffffffff]);
      insns.push({ bytes: [0xb9, ...le32(c)] });
      note = ` (ecx=${c | 0})`;
    }
    const wide = s.imm === 'relz';
    insns.push({ bytes: s.op > 0xff ? [0x0f, s.op & 0xff] : [s.op], branch: { skip: r.int(4), wide } });
    return { text: entryName(s) + note, insns, fin, fout, fundef, push, sse };
  }

  // Prefixes and opcode.
  const form = s.form === 'any' ? (s.modrm && r.bool() ? 'mem' : 'reg') : s.form;
  const mem = s.modrm && form === 'mem';
  // Redundant segment overrides (ES/SS/DS are flat writable data segments in the guest and a Linux process).
  // CS rarely: a write through it faults (#GP), which costs the native oracle a re-run.
  if (r.oneIn(10)) main.push(r.oneIn(16) ? 0x2e : r.pick([0x26, 0x36, 0x3e]));
  if (s.lockable && mem && r.oneIn(3)) main.push(0xf0);
  if (op16 && !s.pfx) main.push(0x66);
  if (s.pfx) main.push(s.pfx);
  let plus = 0;
  if (s.plusR) {
    if (m === 'push') plus = r.int(8);
    else plus = r.pick(s.size === 'b' ? GPR8_W : GPR_W);
  }
  if (s.op > 0xff) main.push(0x0f);
  main.push((s.op & 0xff) + plus);

  // ModRM operands.
  const gprDestInReg = /^(cvtt?s[sd]2si|movmsk|pmovmskb|pextrw)/.test(m);
  const gprInRm = /^(cvtsi2s|movd|pinsrw)/.test(m);
  const regSet = sse && !gprDestInReg && m !== 'movnti' ? XMM : s.size === 'b' ? GPR8_W : GPR_W;
  const rmSet = sse && !gprInRm ? XMM : s.size === 'b' || (m === 'movzx' || m === 'movsx') && (s.op & 1) === 0 || /^set/.test(m) ? GPR8_W : GPR_W;
  let reg = s.ext >= 0 ? s.ext : r.pick(regSet);
  if (/^set/.test(m)) reg = 0;
  let rm = 0;
  let mo: MemOp | undefined;
  const isDiv = m === 'div' || m === 'idiv';
  const isBtReg = /^bt[src]?$/.test(m) && s.op !== 0x0fba;
  if (s.modrm) {
    if (mem) {
      const align16 = sse && s.size === 'x' && !UNALIGNED_OK.test(m);
      mo = isBtReg ? memOp(r, { lo: 64, hi: 400 }) : memOp(r, { align16 });
      if (sse && !align16 && r.oneIn(3)) mo = memOp(r, {}); // misaligned on purpose sometimes
      main.push(...mo.enc(reg));
    } else {
      rm = s.rmExact >= 0 ? s.rmExact : r.pick(isDiv ? (osz === 1 ? [1, 2, 5, 6] : [1, 5, 6, 7]) : rmSet);
      main.push(0xc0 | (reg << 3) | rm);
    }
  }
  // Immediates.
  let immVal = 0;
  switch (s.imm) {
    case 'ib': case 'ibs': {
      const b = immBytes(r, 1);
      immVal = b[0]!;
      main.push(...b);
      break;
    }
    case 'iw': main.push(...immBytes(r, 2)); break;
    case 'iz': main.push(...immBytes(r, osz === 2 ? 2 : 4)); break;
    case 'moffs': {
      const off = r.int(REC.SCRATCH_LEN - 8);
      main.push({ rel: REC.SCRATCH + off });
      break;
    }
    default:
  }
  const setImm = (v: number) => (main[main.length - 1] = v & 0xff);

  // Shifts and rotates: the count decides which flags are written.
  const isShift = !sse && s.ext >= 0 && (s.op === 0xc0 || s.op === 0xc1 || (s.op >= 0xd0 && s.op <= 0xd3));
  if (isShift) {
    const isCl = s.op === 0xd2 || s.op === 0xd3;
    let raw = s.op === 0xd0 || s.op === 0xd1 ? 1 : immVal;
    if (isCl) {
      raw = r.oneIn(4) ? r.int(256) : r.pick([0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 0xff]);
      pre.push(0xb1, raw);
      note = `cl=${raw}`;
    }
    const cnt = raw & 31;
    const bits = osz * 8;
    if (cnt === 0) fin = fout = fundef = 0;
    else {
      if (cnt === 1) fundef &= ~OF;
      if (s.ext >= 4 && cnt > bits) fundef |= CF;
      if (s.ext >= 4 && cnt >= bits && osz < 4) fundef |= CF;
    }
  }
  if (m === 'shld' || m === 'shrd') {
    const isCl = s.op === 0x0fa5 || s.op === 0x0fad;
    let cnt = (isCl ? r.pick([0, 1, 2, 4, 8, 15, 16, 31, 32, 33, r.int(256)]) : immVal) & 0xff;
    if (osz === 2 && (cnt & 31) > 16) {
      cnt = 3;
      if (!isCl) setImm(3);
    }
    if (isCl) {
      pre.push(0xb1, cnt);
      note = `cl=${cnt}`;
    }
    if ((cnt & 31) === 0) fin = fout = fundef = 0;
    else if ((cnt & 31) === 1) fundef &= ~OF;
  }
  if (m === 'aam' && immVal === 0) setImm(10);
  if (isBtReg && mem) {
    const off = osz === 2 ? r.int(640) - 256 : r.int(768) - 256;
    pre.push(...setReg(osz, reg, off));
    note = `bit offset ${off}`;
  }
  if ((m === 'bsf' || m === 'bsr') && r.oneIn(4)) {
    pre.push(...(mo ? setMem(osz, mo, 0) : setReg(osz, rm, 0)));
    note = 'zero source';
  }
  if (m === 'cmpxchg' && r.bool()) {
    const v = edge32(r);
    pre.push(...setReg(osz, 0, v), ...(mo ? setMem(osz, mo, v) : setReg(osz, rm, v)));
    note = 'equal';
  }
  if (m === 'cmpxchg8b' && mo && r.bool()) {
    const lo = edge32(r), hi = edge32(r);
    // Store the two halves with [ebx+disp32] forms (mov dword [ebx+d], imm32), then EDX:EAX.
    const d = mo.off - PTR_OFF;
    pre.push(0xc7, 0x83, ...le32(d), ...le32(lo), 0xc7, 0x83, ...le32(d + 4), ...le32(hi), 0xb8, ...le32(lo), 0xba, ...le32(hi));
    note = 'equal';
  }
  if (isDiv) note = shapeDivision(s, r, osz, pre, mo, rm);
  const insns: GenInsn[] = [];
  if (pre.length) insns.push({ bytes: pre });
  insns.push({ bytes: main });
  if (m === 'push') push = osz;
  if (m === 'pushf') push = osz;
  if (m === 'pop') push = -osz;
  const text = `${entryName(s)}${mem ? ' mem' : s.modrm ? ' reg' : ''}${op16 ? ' o16' : ''}${note ? ` (${note})` : ''}`;
  return { text, insns, fin, fout, fundef, push, sse };
}

/** Dividend and non-zero divisor that do not raise #DE. */
function shapeDivision(s: OpSpec, r: Rng, osz: number, pre: CodePiece[], mo: MemOp | undefined, rm: number): string {
  const bits = osz * 8;
  const mod = 2 ** bits;
  const signed = s.mnemonic === 'idiv';
  let d = r.pick([1, 2, 3, 7, 10, mod - 1, mod - 2, mod / 2, r.u32() % mod, (r.u32() % 1000) + 1]) % mod;
  if (d === 0) d = 1;
  let low = edge32(r) % mod;
  let high: number;
  if (!signed) high = Math.floor((r.u32() / 2 ** 32) * d) % mod;
  else {
    const sl = low >= mod / 2 ? low - mod : low;
    const sd = d >= mod / 2 ? d - mod : d;
    if (sd === -1 && sl === -mod / 2) low = 5;
    high = low >= mod / 2 ? mod - 1 : 0;
  }
  if (osz === 1) pre.push(0x66, 0xb8, ...leN(low | (high << 8), 2));
  else {
    pre.push(...setReg(osz, 0, low), ...setReg(osz, 2, high));
  }
  pre.push(...(mo ? setMem(osz, mo, d) : setReg(osz, rm, d)));
  return `${high.toString(16)}:${low.toString(16)} / ${d.toString(16)}`;
}

// ------------------------------------------------------------------ sequences
const BRANCH_LIMIT = 127;

/** Code of a step list with branch displacements resolved; `skips` = the skip counts actually used. */
export function layout(steps: Step[]): { code: CodePiece[]; skips: number[]; starts: number[] } {
  const len = (p: CodePiece): number => (typeof p === 'number' ? 1 : 4);
  const stepLen = steps.map((st) => st.insns.reduce((n: number, i) => n + i.bytes.reduce((a: number, p) => a + len(p), 0) + (i.branch ? (i.branch.wide ? 4 : 1) : 0), 0));
  const starts: number[] = [0];
  for (const l of stepLen) starts.push(starts[starts.length - 1]! + l);
  const code: CodePiece[] = [];
  const skips: number[] = [];
  steps.forEach((st, i) => {
    let skip = 0;
    for (const ins of st.insns) {
      code.push(...ins.bytes);
      if (!ins.branch) continue;
      skip = ins.branch.skip;
      let target = Math.min(steps.length, i + 1 + skip);
      while (!ins.branch.wide && starts[target]! - starts[i + 1]! > BRANCH_LIMIT) target--;
      skip = target - i - 1;
      const disp = starts[target]! - starts[i + 1]!;
      if (ins.branch.wide) code.push(...le32(disp));
      else code.push(disp & 0xff);
    }
    skips.push(skip);
  });
  return { code, skips, starts };
}

/** Stack depth limits relative to STACK_TOP (bytes pushed). */
const MAX_DEPTH = REC.STACK_TOP - REC.STACK - 48;
const MIN_DEPTH = -(REC.STACK_END - REC.STACK_TOP - 8);

/**
 * Walk the sequence over both outcomes of every branch. Returns the first step that reads an
 * undefined flag or leaves the stack area (`bad`), else the flags still undefined at the end.
 */
export function analyze(steps: Step[]): { bad: number; undef: number } {
  const { skips } = layout(steps);
  const n = steps.length;
  const inU = new Array<number>(n + 1).fill(0);
  const lo = new Array<number>(n + 1).fill(Infinity);
  const hi = new Array<number>(n + 1).fill(-Infinity);
  const reach = new Array<boolean>(n + 1).fill(false);
  reach[0] = true;
  lo[0] = hi[0] = 0;
  const join = (t: number, u: number, l: number, h: number) => {
    inU[t] |= u;
    lo[t] = Math.min(lo[t]!, l);
    hi[t] = Math.max(hi[t]!, h);
    reach[t] = true;
  };
  for (let i = 0; i < n; i++) {
    if (!reach[i]) continue;
    const st = steps[i]!;
    if (st.fin & inU[i]!) return { bad: i, undef: 0 };
    const l = lo[i]! + st.push, h = hi[i]! + st.push;
    if (h > MAX_DEPTH || l < MIN_DEPTH || hi[i]! + 4 > MAX_DEPTH) return { bad: i, undef: 0 };
    const u = (inU[i]! & ~st.fout) | st.fundef;
    join(i + 1, u, l, h);
    if (st.insns.some((x) => x.branch)) join(i + 1 + skips[i]!, u, l, h);
  }
  return { bad: -1, undef: inU[n]! };
}

/** Drop steps until the sequence is valid (see `analyze`). */
export function sanitize(steps: Step[]): Step[] {
  let s = steps.slice();
  for (;;) {
    const a = analyze(s);
    if (a.bad < 0) return s;
    s = s.slice(0, a.bad).concat(s.slice(a.bad + 1));
  }
}

/**
 * `mov ecx, n; L: add eax, edx; ror edx, 5; dec ecx; jnz L` (n = 1..5): a block that branches
 * back to its own start. dec leaves CF from ror, and writes every other flag: all defined.
 */
function loopStep(r: Rng): Step {
  const n = 1 + r.int(5);
  const body = [0x01, 0xd0, 0xc1, 0xca, 0x05, 0x49];
  const insns: GenInsn[] = [{ bytes: [0xb9, ...le32(n)] }, { bytes: [...body, 0x75, (-(body.length + 2)) & 0xff] }];
  return { text: `loop x${n}: add eax, edx; ror edx, 5; dec ecx; jnz`, insns, fin: 0, fout: ARITH, fundef: 0, push: 0, sse: false };
}

/**
 * Loops the block compiler keeps inside one function (compiler.ts `regions`), n, m = 1..4:
 * a nest `mov ecx, n; L1: mov edi, m; L2: add eax, edx; ror edx, 5; dec edi; jnz L2; xor eax, ecx;
 * dec ecx; jnz L1`; a loop with a skip `L: add eax, edx; test al, 1; jz S; ror edx, 5; S: dec ecx;
 * jnz L`; an if-else in a loop (a jmp over the else); and gcc's rotated CRC loop with two heads, whose back edges cross (one stays a side
 * exit): `jmp H2; H1: add eax, eax; dec ecx; jz out; H2: test al, 2; jz H1; add eax, eax;
 * xor eax, 0x1021; dec ecx; jnz H2; out:`. Every flag is defined after each of them.
 */
function nestStep(r: Rng): Step {
  const n = 1 + r.int(4);
  switch (r.int(4)) {
    case 0: {
      const m = 1 + r.int(4);
      const inner = [0x01, 0xd0, 0xc1, 0xca, 0x05, 0x4f];
      const outer = [0xbf, ...le32(m), ...inner, 0x75, (-(inner.length + 2)) & 0xff, 0x31, 0xc8, 0x49];
      const insns: GenInsn[] = [{ bytes: [0xb9, ...le32(n)] }, { bytes: [...outer, 0x75, (-(outer.length + 2)) & 0xff] }];
      return { text: `nest x${n}x${m}`, insns, fin: 0, fout: ARITH, fundef: 0, push: 0, sse: false };
    }
    case 1: {
      const body = [0x01, 0xd0, 0xa8, 0x01, 0x74, 0x03, 0xc1, 0xca, 0x05, 0x49];
      const insns: GenInsn[] = [{ bytes: [0xb9, ...le32(n)] }, { bytes: [...body, 0x75, (-(body.length + 2)) & 0xff] }];
      return { text: `loop with skip x${n}`, insns, fin: 0, fout: ARITH, fundef: 0, push: 0, sse: false };
    }
    case 2: {
      // An if-else in a loop: `L: test al, 1; jz E; add eax, edx; jmp J; E: ror edx, 5; J: dec ecx; jnz L`
      // (the jmp ends a block inside the loop).
      const body = [0xa8, 0x01, 0x74, 0x04, 0x01, 0xd0, 0xeb, 0x03, 0xc1, 0xca, 0x05, 0x49];
      const insns: GenInsn[] = [{ bytes: [0xb9, ...le32(n)] }, { bytes: [...body, 0x75, (-(body.length + 2)) & 0xff] }];
      return { text: `if-else loop x${n}`, insns, fin: 0, fout: ARITH, fundef: 0, push: 0, sse: false };
    }
    default: {
      const code = [0xeb, 0x05, 0x01, 0xc0, 0x49, 0x74, 0x0e, 0xa8, 0x02, 0x74, 0xf7, 0x01, 0xc0, 0x35, ...le32(0x1021), 0x49, 0x75, 0xf2];
      const insns: GenInsn[] = [{ bytes: [0xb9, ...le32(2 * n)] }, { bytes: code }];
      return { text: `two-headed loop x${2 * n}`, insns, fin: 0, fout: ARITH, fundef: 0, push: 0, sse: false };
    }
  }
}

/**
 * A dword access through [ESP + disp8] (disp 0..63, sometimes unaligned): gcc's spills and
 * locals, which the block compiler checks once per block (compiler.ts `stackWindow`). Only
 * at or above ESP: a signal frame may overwrite the stack below it in the host oracle.
 */
function espStep(r: Rng): Step {
  const reg = [0, 1, 2, 5, 6, 7][r.int(6)]!;
  const d = r.int(16) * 4 + (r.oneIn(4) ? r.int(4) : 0);
  const m = [0x44 | (reg << 3), 0x24, d];
  const step = (text: string, bytes: number[], fout: number): Step => ({ text, insns: [{ bytes }], fin: 0, fout, fundef: 0, push: 0, sse: false });
  switch (r.int(5)) {
    case 0: return step(`mov [esp+${d}], r${reg}`, [0x89, ...m], 0);
    case 1: return step(`mov r${reg}, [esp+${d}]`, [0x8b, ...m], 0);
    case 2: return step(`add r${reg}, [esp+${d}]`, [0x03, ...m], ARITH);
    case 3: return step(`cmp [esp+${d}], r${reg}`, [0x39, ...m], ARITH);
    default: return step(`mov dword [esp+${d}], imm32`, [0xc7, 0x44, 0x24, d, ...le32(r.u32())], 0);
  }
}

/**
 * `call L; jmp over; L: ret; over: mov dword [esp-4], 0`: a call and a return (the return
 * address, which differs between the host and the guest, is wiped from the stack area).
 */
function callStep(): Step {
  const insns: GenInsn[] = [
    { bytes: [0xe8, ...le32(2)] },
    { bytes: [0xeb, 0x01] },
    { bytes: [0xc3] },
    { bytes: [0xc7, 0x44, 0x24, 0xfc, ...le32(0)] },
  ];
  return { text: 'call; ret', insns, fin: 0, fout: 0, fundef: 0, push: 0, sse: false };
}

/** Generate one random case. */
export function generateCase(r: Rng, entries: readonly OpSpec[], opts: GenOptions): DiffCase {
  const n = 1 + r.int(opts.maxSteps);
  let steps: Step[] = [];
  for (let k = 0; k < n; k++) {
    // Now and then a backward loop, a loop nest, a call/ret pair or a stack access: the
    // emulator's compiled loops, inlined call/ret and unchecked stack window (compiler.ts).
    if (r.oneIn(16)) {
      const kind = r.int(3);
      steps.push(kind === 0 ? loopStep(r) : kind === 1 ? nestStep(r) : callStep());
    } else if (r.oneIn(8)) steps.push(espStep(r));
    else steps.push(makeStep(r.pick(entries), r));
  }
  steps = sanitize(steps);
  const usesSse = steps.some((s) => s.sse);
  const regs = Array.from({ length: 8 }, () => edge32(r) >>> 0);
  regs[3] = 0;
  regs[4] = 0;
  const eflags = 0x202 | (r.u32() & ARITH) | (r.oneIn(4) ? DF : 0);
  const scratch: number[] = [];
  while (scratch.length < REC.SCRATCH_LEN) {
    switch (r.int(4)) {
      case 0: scratch.push(...vec16(r)); break;
      case 1: for (let k = 0; k < 4; k++) scratch.push(...le32(edge32(r))); break;
      default: for (let k = 0; k < 16; k++) scratch.push(r.int(256));
    }
  }
  if (r.bool()) {
    const half = REC.SCRATCH_LEN / 2;
    for (let k = 0; k < half; k++) scratch[half + k] = scratch[k]! ^ (r.oneIn(64) ? 1 << r.int(8) : 0);
  }
  const stack = Array.from({ length: REC.STACK_END - REC.STACK }, () => r.int(256));
  const xmm = usesSse && opts.sse ? Array.from({ length: 8 }, () => vec16(r)).flat() : null;
  return { steps, regs, eflags, xmm, scratch, stack };
}

/** The harness input of a case and the EFLAGS bits to compare afterwards. */
export function caseInput(c: DiffCase): { input: CaseInput; flagMask: number } {
  const { code } = layout(c.steps);
  const { undef } = analyze(c.steps);
  const regs: CaseInput['regs'] = c.regs.slice();
  regs[3] = { rel: REC.SCRATCH + PTR_OFF };
  return {
    input: { code, regs, eflags: c.eflags, xmm: c.xmm ? new Uint8Array(c.xmm) : null, scratch: new Uint8Array(c.scratch), stack: new Uint8Array(c.stack) },
    flagMask: (ARITH | DF) & ~undef,
  };
}

export { AF, CF, OF, PF, SF, ZF };
