import * as A from './alu.js';
import { bcd } from './bcd.js';
import * as C from './control.js';
import type { EmuCpu } from './cpu.js';
import * as D from './data.js';
import { AF, ARITH, CF, DF, OF, PF, SF, ZF, CC_NAMES } from './flags.js';
import type { Handler, ImmKind, Instr, OpSize, OpSpec, TestKind } from './instr.js';
import * as S from './sse.js';
import * as Sys from './system.js';
import * as X from './x87.js';

/**
 * THE instruction table: one entry per opcode form (Intel SDM vol. 2, appendix A opcode
 * maps). The decoder's lookup structures are generated from it (`decoder.ts`), the
 * interpreter dispatches through each entry's `exec`, and the tests iterate over it.
 */

interface Def {
  mnemonic: string;
  op: number;
  exec: Handler;
  pfx?: number;
  ext?: number;
  form?: 'reg' | 'mem' | 'any';
  rmExact?: number;
  modrm?: boolean;
  plusR?: boolean;
  size?: OpSize;
  imm?: ImmKind;
  out?: number;
  undef?: number;
  in?: number;
  lock?: boolean;
  term?: boolean;
  sub?: number;
  fast?: (i: Instr) => Handler | undefined;
  test?: TestKind;
}

const entries: OpSpec[] = [];

function def(d: Def): void {
  entries.push({
    mnemonic: d.mnemonic,
    op: d.op,
    pfx: d.pfx ?? 0,
    ext: d.ext ?? -1,
    form: d.form ?? 'any',
    rmExact: d.rmExact ?? -1,
    modrm: d.modrm ?? (d.ext !== undefined || d.form !== undefined),
    plusR: d.plusR ?? false,
    size: d.size ?? 'none',
    imm: d.imm ?? 'none',
    flagsOut: d.out ?? 0,
    flagsUndef: d.undef ?? 0,
    flagsIn: d.in ?? 0,
    lockable: d.lock ?? false,
    term: d.term ?? false,
    sub: d.sub ?? 0,
    exec: d.exec,
    fast: d.fast,
    test: d.test ?? 'oracle',
  });
}

function xchgAcc(c: EmuCpu, i: Instr): void {
  const sz = i.opsize;
  const a = c.getReg(0, sz);
  c.setReg(0, sz, c.getReg(i.reg, sz));
  c.setReg(i.reg, sz, a);
}

// ------------------------------------------------------------------ integer ALU
for (let op = 0; op < 8; op++) {
  const n = A.ALU_NAMES[op];
  const out = ARITH;
  const undef = op === 1 || op === 4 || op === 6 ? AF : 0;
  const fin = op === 2 || op === 3 ? CF : 0;
  const lock = op !== 7;
  const b = op * 8;
  const common = { out, undef, in: fin, sub: op };
  def({ mnemonic: n, op: b + 0, exec: A.aluEG, modrm: true, size: 'b', lock, ...common });
  def({ mnemonic: n, op: b + 1, exec: A.aluEG, modrm: true, size: 'v', lock, fast: A.aluFast, ...common });
  def({ mnemonic: n, op: b + 2, exec: A.aluGE, modrm: true, size: 'b', ...common });
  def({ mnemonic: n, op: b + 3, exec: A.aluGE, modrm: true, size: 'v', fast: A.aluFast, ...common });
  def({ mnemonic: n, op: b + 4, exec: A.aluEI, size: 'b', imm: 'ib', ...common });
  def({ mnemonic: n, op: b + 5, exec: A.aluEI, size: 'v', imm: 'iz', ...common });
  def({ mnemonic: n, op: 0x80, ext: op, exec: A.aluEI, size: 'b', imm: 'ib', lock, ...common });
  def({ mnemonic: n, op: 0x81, ext: op, exec: A.aluEI, size: 'v', imm: 'iz', lock, fast: A.aluFast, ...common });
  def({ mnemonic: n, op: 0x82, ext: op, exec: A.aluEI, size: 'b', imm: 'ib', lock, ...common });
  def({ mnemonic: n, op: 0x83, ext: op, exec: A.aluEI, size: 'v', imm: 'ibs', lock, fast: A.aluFast, ...common });
}

const testFast = (i: Instr): Handler | undefined => (i.opsize === 4 && !i.mem ? A.test32rr : undefined);
def({ mnemonic: 'test', op: 0x84, exec: A.testEG, modrm: true, size: 'b', out: ARITH, undef: AF });
def({ mnemonic: 'test', op: 0x85, exec: A.testEG, modrm: true, size: 'v', out: ARITH, undef: AF, fast: testFast });
def({ mnemonic: 'test', op: 0xa8, exec: A.testEI, size: 'b', imm: 'ib', out: ARITH, undef: AF });
def({ mnemonic: 'test', op: 0xa9, exec: A.testEI, size: 'v', imm: 'iz', out: ARITH, undef: AF });
for (const ext of [0, 1]) {
  def({ mnemonic: 'test', op: 0xf6, ext, exec: A.testEI, size: 'b', imm: 'ib', out: ARITH, undef: AF });
  def({ mnemonic: 'test', op: 0xf7, ext, exec: A.testEI, size: 'v', imm: 'iz', out: ARITH, undef: AF });
}
for (const [sub, n] of [[0, 'inc'], [1, 'dec']] as const) {
  def({ mnemonic: n, op: 0x40 + sub * 8, plusR: true, exec: A.incdec, size: 'v', sub, out: ARITH & ~CF });
  def({ mnemonic: n, op: 0xfe, ext: sub, exec: A.incdec, size: 'b', sub, out: ARITH & ~CF, lock: true });
  def({ mnemonic: n, op: 0xff, ext: sub, exec: A.incdec, size: 'v', sub, out: ARITH & ~CF, lock: true });
}
for (const [op, size] of [[0xf6, 'b'], [0xf7, 'v']] as const) {
  def({ mnemonic: 'not', op, ext: 2, exec: A.notE, size, lock: true });
  def({ mnemonic: 'neg', op, ext: 3, exec: A.negE, size, lock: true, out: ARITH });
  def({ mnemonic: 'mul', op, ext: 4, exec: A.mulDivE, size, sub: 4, out: CF | OF, undef: SF | ZF | AF | PF });
  def({ mnemonic: 'imul', op, ext: 5, exec: A.mulDivE, size, sub: 5, out: CF | OF, undef: SF | ZF | AF | PF });
  def({ mnemonic: 'div', op, ext: 6, exec: A.mulDivE, size, sub: 6, undef: ARITH });
  def({ mnemonic: 'idiv', op, ext: 7, exec: A.mulDivE, size, sub: 7, undef: ARITH });
}
const imulFast = (i: Instr): Handler | undefined => (i.opsize === 4 && !i.mem ? A.imul32rr : undefined);
def({ mnemonic: 'imul', op: 0x0faf, exec: A.imulGE, modrm: true, size: 'v', out: CF | OF, undef: SF | ZF | AF | PF, fast: imulFast });
def({ mnemonic: 'imul', op: 0x69, exec: A.imulGE, modrm: true, size: 'v', imm: 'iz', out: CF | OF, undef: SF | ZF | AF | PF });
def({ mnemonic: 'imul', op: 0x6b, exec: A.imulGE, modrm: true, size: 'v', imm: 'ibs', out: CF | OF, undef: SF | ZF | AF | PF });

const SHIFT_NAMES = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
for (let k = 0; k < 8; k++) {
  const rot = k < 4;
  const out = rot ? CF | OF : CF | OF | SF | ZF | PF;
  const undef = rot ? OF : OF | AF;
  const fin = k === 2 || k === 3 ? CF : 0;
  const n = SHIFT_NAMES[k];
  const c = { ext: k, sub: k, out, undef, in: fin, exec: A.shiftE };
  def({ mnemonic: n, op: 0xc0, size: 'b', imm: 'ib', ...c });
  def({ mnemonic: n, op: 0xc1, size: 'v', imm: 'ib', fast: A.shiftFast, ...c });
  def({ mnemonic: n, op: 0xd0, size: 'b', ...c });
  def({ mnemonic: n, op: 0xd1, size: 'v', ...c });
  def({ mnemonic: n, op: 0xd2, size: 'b', ...c });
  def({ mnemonic: n, op: 0xd3, size: 'v', ...c });
}
for (const [op, sub, n, imm] of [[0x0fa4, 0, 'shld', 'ib'], [0x0fa5, 0, 'shld', 'none'], [0x0fac, 1, 'shrd', 'ib'], [0x0fad, 1, 'shrd', 'none']] as const) {
  def({ mnemonic: n, op, sub, exec: A.shldrd, modrm: true, size: 'v', imm, out: CF | OF | SF | ZF | PF, undef: AF | OF });
}
for (const [op, sub, n] of [[0x0fa3, 0, 'bt'], [0x0fab, 1, 'bts'], [0x0fb3, 2, 'btr'], [0x0fbb, 3, 'btc']] as const) {
  def({ mnemonic: n, op, sub, exec: A.bitTest, modrm: true, size: 'v', out: CF, undef: OF | SF | AF | PF, lock: sub !== 0 });
  def({ mnemonic: n, op: 0x0fba, ext: 4 + sub, sub, exec: A.bitTest, size: 'v', imm: 'ib', out: CF, undef: OF | SF | AF | PF, lock: sub !== 0 });
}
def({ mnemonic: 'bsf', op: 0x0fbc, sub: 0, exec: A.bitScan, modrm: true, size: 'v', out: ZF, undef: CF | OF | SF | AF | PF });
def({ mnemonic: 'bsr', op: 0x0fbd, sub: 1, exec: A.bitScan, modrm: true, size: 'v', out: ZF, undef: CF | OF | SF | AF | PF });
def({ mnemonic: 'bswap', op: 0x0fc8, plusR: true, exec: A.bswap, size: 'd' });
def({ mnemonic: 'xadd', op: 0x0fc0, exec: A.xadd, modrm: true, size: 'b', out: ARITH, lock: true });
def({ mnemonic: 'xadd', op: 0x0fc1, exec: A.xadd, modrm: true, size: 'v', out: ARITH, lock: true });
def({ mnemonic: 'cmpxchg', op: 0x0fb0, exec: A.cmpxchg, modrm: true, size: 'b', out: ARITH, lock: true });
def({ mnemonic: 'cmpxchg', op: 0x0fb1, exec: A.cmpxchg, modrm: true, size: 'v', out: ARITH, lock: true });
def({ mnemonic: 'cmpxchg8b', op: 0x0fc7, ext: 1, form: 'mem', exec: A.cmpxchg8b, size: 'q', out: ZF, lock: true });

// ------------------------------------------------------------------ conditions and control
for (let cc = 0; cc < 16; cc++) {
  const n = CC_NAMES[cc];
  def({ mnemonic: 'j' + n, op: 0x70 + cc, sub: cc, exec: C.jcc, imm: 'rel8', term: true, in: ARITH, size: 'v' });
  def({ mnemonic: 'j' + n, op: 0x0f80 + cc, sub: cc, exec: C.jcc, imm: 'relz', term: true, in: ARITH, size: 'v' });
  def({ mnemonic: 'set' + n, op: 0x0f90 + cc, sub: cc, exec: D.setcc, modrm: true, size: 'b', in: ARITH });
  def({ mnemonic: 'cmov' + n, op: 0x0f40 + cc, sub: cc, exec: D.cmovcc, modrm: true, size: 'v', in: ARITH });
}
def({ mnemonic: 'jmp', op: 0xeb, exec: C.jmpRel, imm: 'rel8', term: true, size: 'v', test: 'directed' });
def({ mnemonic: 'jmp', op: 0xe9, exec: C.jmpRel, imm: 'relz', term: true, size: 'v', test: 'directed' });
def({ mnemonic: 'jmp', op: 0xff, ext: 4, exec: C.jmpE, term: true, size: 'v', test: 'directed' });
def({ mnemonic: 'call', op: 0xe8, exec: C.callRel, imm: 'relz', term: true, size: 'v', test: 'directed', fast: (i) => (i.opsize === 4 ? C.call32 : undefined) });
def({ mnemonic: 'call', op: 0xff, ext: 2, exec: C.callE, term: true, size: 'v', test: 'directed' });
def({ mnemonic: 'ret', op: 0xc3, exec: C.ret, term: true, size: 'v', test: 'directed', fast: (i) => (i.opsize === 4 ? C.ret32 : undefined) });
def({ mnemonic: 'ret', op: 0xc2, exec: C.ret, imm: 'iw', term: true, size: 'v', test: 'directed' });
def({ mnemonic: 'loopne', op: 0xe0, exec: C.loop, imm: 'rel8', term: true, in: ZF, size: 'v' });
def({ mnemonic: 'loope', op: 0xe1, exec: C.loop, imm: 'rel8', term: true, in: ZF, size: 'v' });
def({ mnemonic: 'loop', op: 0xe2, exec: C.loop, imm: 'rel8', term: true, size: 'v' });
def({ mnemonic: 'jecxz', op: 0xe3, exec: C.loop, imm: 'rel8', term: true, size: 'v' });

// ------------------------------------------------------------------ data movement
def({ mnemonic: 'mov', op: 0x88, exec: D.movEG, modrm: true, size: 'b' });
def({ mnemonic: 'mov', op: 0x89, exec: D.movEG, modrm: true, size: 'v', fast: D.movFast });
def({ mnemonic: 'mov', op: 0x8a, exec: D.movGE, modrm: true, size: 'b' });
def({ mnemonic: 'mov', op: 0x8b, exec: D.movGE, modrm: true, size: 'v', fast: D.movFast });
def({ mnemonic: 'mov', op: 0xc6, ext: 0, exec: D.movEI, size: 'b', imm: 'ib' });
def({ mnemonic: 'mov', op: 0xc7, ext: 0, exec: D.movEI, size: 'v', imm: 'iz', fast: D.movFast });
def({ mnemonic: 'mov', op: 0xb0, plusR: true, exec: D.movEI, size: 'b', imm: 'ib' });
def({ mnemonic: 'mov', op: 0xb8, plusR: true, exec: D.movEI, size: 'v', imm: 'iz', fast: D.movFast });
def({ mnemonic: 'mov', op: 0xa0, exec: D.movMoffs, size: 'b', imm: 'moffs' });
def({ mnemonic: 'mov', op: 0xa1, exec: D.movMoffs, size: 'v', imm: 'moffs' });
def({ mnemonic: 'mov', op: 0xa2, exec: D.movMoffs, size: 'b', imm: 'moffs' });
def({ mnemonic: 'mov', op: 0xa3, exec: D.movMoffs, size: 'v', imm: 'moffs' });
def({ mnemonic: 'movzx', op: 0x0fb6, exec: D.movx, modrm: true, size: 'v', fast: (i) => (i.opsize === 4 ? D.movzx8 : undefined) });
def({ mnemonic: 'movzx', op: 0x0fb7, exec: D.movx, modrm: true, size: 'v' });
def({ mnemonic: 'movsx', op: 0x0fbe, exec: D.movx, modrm: true, size: 'v' });
def({ mnemonic: 'movsx', op: 0x0fbf, exec: D.movx, modrm: true, size: 'v' });
def({ mnemonic: 'lea', op: 0x8d, form: 'mem', exec: D.lea, size: 'v', fast: (i) => (i.opsize === 4 ? D.lea32 : undefined) });
def({ mnemonic: 'xchg', op: 0x86, exec: D.xchg, modrm: true, size: 'b', lock: true });
def({ mnemonic: 'xchg', op: 0x87, exec: D.xchg, modrm: true, size: 'v', lock: true });
def({ mnemonic: 'xchg', op: 0x90, plusR: true, exec: xchgAcc, size: 'v' }); // 90 itself is nop (xchg eax, eax)
def({ mnemonic: 'push', op: 0x50, plusR: true, exec: D.pushReg, size: 'v', fast: (i) => (i.opsize === 4 ? D.push32r : undefined) });
def({ mnemonic: 'pop', op: 0x58, plusR: true, exec: D.popReg, size: 'v', fast: (i) => (i.opsize === 4 ? D.pop32r : undefined) });
def({ mnemonic: 'push', op: 0x68, exec: D.pushImm, size: 'v', imm: 'iz' });
def({ mnemonic: 'push', op: 0x6a, exec: D.pushImm, size: 'v', imm: 'ibs' });
def({ mnemonic: 'push', op: 0xff, ext: 6, exec: D.pushE, size: 'v' });
def({ mnemonic: 'pop', op: 0x8f, ext: 0, exec: D.popE, size: 'v' });
def({ mnemonic: 'pusha', op: 0x60, exec: D.pusha, size: 'v' });
def({ mnemonic: 'popa', op: 0x61, exec: D.popa, size: 'v' });
def({ mnemonic: 'pushf', op: 0x9c, exec: D.pushf, size: 'v', in: ARITH | DF });
def({ mnemonic: 'popf', op: 0x9d, exec: D.popf, size: 'v', out: ARITH | DF });
def({ mnemonic: 'sahf', op: 0x9e, exec: D.sahf, out: SF | ZF | AF | PF | CF });
def({ mnemonic: 'lahf', op: 0x9f, exec: D.lahf, in: SF | ZF | AF | PF | CF });
def({ mnemonic: 'cbw', op: 0x98, exec: D.cbw, size: 'v' });
def({ mnemonic: 'cwd', op: 0x99, exec: D.cwd, size: 'v' });
def({ mnemonic: 'enter', op: 0xc8, exec: D.enter, imm: 'iwib', size: 'v' });
def({ mnemonic: 'leave', op: 0xc9, exec: D.leave, size: 'v' });
def({ mnemonic: 'xlat', op: 0xd7, exec: D.xlat, size: 'b' });
const BCD_FLAGS = { in: AF | CF, size: 'b' as const };
def({ mnemonic: 'daa', op: 0x27, sub: 2, exec: bcd, out: CF | AF | SF | ZF | PF, undef: OF, ...BCD_FLAGS });
def({ mnemonic: 'das', op: 0x2f, sub: 3, exec: bcd, out: CF | AF | SF | ZF | PF, undef: OF, ...BCD_FLAGS });
def({ mnemonic: 'aaa', op: 0x37, sub: 0, exec: bcd, out: CF | AF, undef: OF | SF | ZF | PF, ...BCD_FLAGS });
def({ mnemonic: 'aas', op: 0x3f, sub: 1, exec: bcd, out: CF | AF, undef: OF | SF | ZF | PF, ...BCD_FLAGS });
def({ mnemonic: 'aam', op: 0xd4, sub: 4, exec: bcd, imm: 'ib', out: SF | ZF | PF, undef: OF | AF | CF, ...BCD_FLAGS });
def({ mnemonic: 'aad', op: 0xd5, sub: 5, exec: bcd, imm: 'ib', out: SF | ZF | PF, undef: OF | AF | CF, ...BCD_FLAGS });
def({ mnemonic: 'bound', op: 0x62, form: 'mem', exec: D.bound, size: 'v', test: 'directed' });
const STRING_OPS: [number, number, string, number][] = [
  [0xa4, 0, 'movs', 0], [0xa6, 1, 'cmps', ARITH], [0xaa, 2, 'stos', 0], [0xac, 3, 'lods', 0], [0xae, 4, 'scas', ARITH],
];
for (const [op, sub, n, out] of STRING_OPS) {
  def({ mnemonic: n + 'b', op, sub, exec: D.stringOp, size: 'b', out, in: DF, term: true });
  def({ mnemonic: n, op: op + 1, sub, exec: D.stringOp, size: 'v', out, in: DF, term: true });
}
def({ mnemonic: 'cmc', op: 0xf5, exec: D.flagOp, out: CF, in: CF });
def({ mnemonic: 'clc', op: 0xf8, exec: D.flagOp, out: CF });
def({ mnemonic: 'stc', op: 0xf9, exec: D.flagOp, out: CF });
def({ mnemonic: 'cld', op: 0xfc, exec: D.flagOp, out: DF });
def({ mnemonic: 'std', op: 0xfd, exec: D.flagOp, out: DF });
def({ mnemonic: 'fwait', op: 0x9b, exec: D.nop });
for (let k = 0x0f18; k <= 0x0f1f; k++) def({ mnemonic: k === 0x0f1f ? 'nop' : k === 0x0f18 ? 'prefetch' : 'hint-nop', op: k, exec: D.nop, modrm: true, size: 'v' });

// ------------------------------------------------------------------ system, VMM interface
def({ mnemonic: 'cpuid', op: 0x0fa2, exec: Sys.cpuid, test: 'directed' });
def({ mnemonic: 'rdtsc', op: 0x0f31, exec: Sys.rdtsc, test: 'directed' });
def({ mnemonic: 'hlt', op: 0xf4, exec: Sys.hlt, term: true, test: 'directed' });
def({ mnemonic: 'out', op: 0xe6, exec: Sys.out, imm: 'ib', size: 'b', term: true, test: 'directed' });
def({ mnemonic: 'out', op: 0xe7, exec: Sys.out, imm: 'ib', size: 'v', term: true, test: 'directed' });
def({ mnemonic: 'out', op: 0xee, exec: Sys.out, size: 'b', term: true, test: 'directed' });
def({ mnemonic: 'out', op: 0xef, exec: Sys.out, size: 'v', term: true, test: 'directed' });
def({ mnemonic: 'ud2', op: 0x0f0b, exec: Sys.ud, term: true, test: 'fault' });

/** Deprecated instructions (paper 3.1.2): [opcode, mnemonic, has ModRM, ext, imm]. */
const DEPRECATED: [number, string, boolean, number, ImmKind][] = [
  [0x06, 'push es', false, -1, 'none'], [0x07, 'pop es', false, -1, 'none'], [0x0e, 'push cs', false, -1, 'none'],
  [0x16, 'push ss', false, -1, 'none'], [0x17, 'pop ss', false, -1, 'none'], [0x1e, 'push ds', false, -1, 'none'],
  [0x1f, 'pop ds', false, -1, 'none'], [0x0fa0, 'push fs', false, -1, 'none'], [0x0fa1, 'pop fs', false, -1, 'none'],
  [0x0fa8, 'push gs', false, -1, 'none'], [0x0fa9, 'pop gs', false, -1, 'none'],
  [0x63, 'arpl', true, -1, 'none'], [0x6c, 'insb', false, -1, 'none'], [0x6d, 'ins', false, -1, 'none'],
  [0x6e, 'outsb', false, -1, 'none'], [0x6f, 'outs', false, -1, 'none'],
  [0x8c, 'mov from segment register', true, -1, 'none'], [0x8e, 'mov to segment register', true, -1, 'none'],
  [0x9a, 'far call', false, -1, 'ptr'], [0xca, 'far ret', false, -1, 'iw'], [0xcb, 'far ret', false, -1, 'none'],
  [0xcc, 'int3', false, -1, 'none'], [0xcd, 'int', false, -1, 'ib'], [0xce, 'into', false, -1, 'none'],
  [0xcf, 'iret', false, -1, 'none'], [0xe4, 'in', false, -1, 'ib'], [0xe5, 'in', false, -1, 'ib'],
  [0xec, 'in', false, -1, 'none'], [0xed, 'in', false, -1, 'none'], [0xea, 'far jmp', false, -1, 'ptr'],
  [0xf1, 'int1', false, -1, 'none'], [0xfa, 'cli', false, -1, 'none'], [0xfb, 'sti', false, -1, 'none'],
  [0xc4, 'les', true, -1, 'none'], [0xc5, 'lds', true, -1, 'none'],
  [0xff, 'far call', true, 3, 'none'], [0xff, 'far jmp', true, 5, 'none'],
  [0x0f02, 'lar', true, -1, 'none'], [0x0f03, 'lsl', true, -1, 'none'], [0x0f05, 'syscall', false, -1, 'none'],
  [0x0f06, 'clts', false, -1, 'none'], [0x0f07, 'sysret', false, -1, 'none'], [0x0f08, 'invd', false, -1, 'none'],
  [0x0f09, 'wbinvd', false, -1, 'none'], [0x0f20, 'mov from control register', true, -1, 'none'],
  [0x0f21, 'mov from debug register', true, -1, 'none'], [0x0f22, 'mov to control register', true, -1, 'none'],
  [0x0f23, 'mov to debug register', true, -1, 'none'], [0x0f30, 'wrmsr', false, -1, 'none'],
  [0x0f32, 'rdmsr', false, -1, 'none'], [0x0f33, 'rdpmc', false, -1, 'none'], [0x0f34, 'sysenter', false, -1, 'none'],
  [0x0f35, 'sysexit', false, -1, 'none'], [0x0faa, 'rsm', false, -1, 'none'],
  [0x0fb2, 'lss', true, -1, 'none'], [0x0fb4, 'lfs', true, -1, 'none'], [0x0fb5, 'lgs', true, -1, 'none'],
];
for (const [op, mnemonic, modrm, ext, imm] of DEPRECATED) {
  def({ mnemonic, op, exec: Sys.deprecated, modrm, ext: ext >= 0 ? ext : undefined, imm, term: true, test: 'fault', size: 'v' });
}
const GRP6 = ['sldt', 'str', 'lldt', 'ltr', 'verr', 'verw'];
GRP6.forEach((n, ext) => def({ mnemonic: n, op: 0x0f00, ext, exec: Sys.deprecated, term: true, test: 'fault' }));
const GRP7 = ['sgdt', 'sidt', 'lgdt', 'lidt', 'smsw', '', 'lmsw', 'invlpg'];
GRP7.forEach((n, ext) => n && def({ mnemonic: n, op: 0x0f01, ext, exec: Sys.deprecated, term: true, test: 'fault' }));

// ------------------------------------------------------------------ SSE / SSE2
const NP = 0, P66 = 0x66, PF3 = 0xf3, PF2 = 0xf2;
function sse(mnemonic: string, pfx: number, op: number, exec: Handler, sub: number, extra: Partial<Def> = {}): void {
  def({ mnemonic, pfx, op, exec, sub, modrm: true, size: 'x', test: 'sse', ...extra });
}
sse('movups', NP, 0x0f10, S.sseMov, 0); sse('movupd', P66, 0x0f10, S.sseMov, 0);
sse('movss', PF3, 0x0f10, S.sseMov, 2); sse('movsd', PF2, 0x0f10, S.sseMov, 4);
sse('movups', NP, 0x0f11, S.sseMov, 1); sse('movupd', P66, 0x0f11, S.sseMov, 1);
sse('movss', PF3, 0x0f11, S.sseMov, 3); sse('movsd', PF2, 0x0f11, S.sseMov, 5);
sse('movlps', NP, 0x0f12, S.sseMov, 10, { form: 'mem' }); sse('movhlps', NP, 0x0f12, S.sseMov, 14, { form: 'reg' });
sse('movlpd', P66, 0x0f12, S.sseMov, 10, { form: 'mem' });
sse('movlps', NP, 0x0f13, S.sseMov, 11, { form: 'mem' }); sse('movlpd', P66, 0x0f13, S.sseMov, 11, { form: 'mem' });
sse('unpcklps', NP, 0x0f14, S.sseShuf, 5); sse('unpcklpd', P66, 0x0f14, S.sseShuf, 6);
sse('unpckhps', NP, 0x0f15, S.sseShuf, 7); sse('unpckhpd', P66, 0x0f15, S.sseShuf, 8);
sse('movhps', NP, 0x0f16, S.sseMov, 12, { form: 'mem' }); sse('movlhps', NP, 0x0f16, S.sseMov, 15, { form: 'reg' });
sse('movhpd', P66, 0x0f16, S.sseMov, 12, { form: 'mem' });
sse('movhps', NP, 0x0f17, S.sseMov, 13, { form: 'mem' }); sse('movhpd', P66, 0x0f17, S.sseMov, 13, { form: 'mem' });
sse('movaps', NP, 0x0f28, S.sseMov, 0x100); sse('movapd', P66, 0x0f28, S.sseMov, 0x100);
sse('movaps', NP, 0x0f29, S.sseMov, 0x101); sse('movapd', P66, 0x0f29, S.sseMov, 0x101);
sse('movntps', NP, 0x0f2b, S.sseMov, 0x101, { form: 'mem' }); sse('movntpd', P66, 0x0f2b, S.sseMov, 0x101, { form: 'mem' });
sse('movntdq', P66, 0x0fe7, S.sseMov, 0x101, { form: 'mem' });
sse('movdqa', P66, 0x0f6f, S.sseMov, 0x100); sse('movdqu', PF3, 0x0f6f, S.sseMov, 0);
sse('movdqa', P66, 0x0f7f, S.sseMov, 0x101); sse('movdqu', PF3, 0x0f7f, S.sseMov, 1);
sse('movd', P66, 0x0f6e, S.sseMov, 6, { size: 'd' }); sse('movd', P66, 0x0f7e, S.sseMov, 7, { size: 'd' });
sse('movq', PF3, 0x0f7e, S.sseMov, 8); sse('movq', P66, 0x0fd6, S.sseMov, 9);
def({ mnemonic: 'movnti', op: 0x0fc3, form: 'mem', exec: D.movEG, size: 'd' });
sse('cvtsi2ss', PF3, 0x0f2a, S.sseCvt, 0, { size: 'd' }); sse('cvtsi2sd', PF2, 0x0f2a, S.sseCvt, 1, { size: 'd' });
sse('cvttss2si', PF3, 0x0f2c, S.sseCvt, 2); sse('cvttsd2si', PF2, 0x0f2c, S.sseCvt, 3);
sse('cvtss2si', PF3, 0x0f2d, S.sseCvt, 4); sse('cvtsd2si', PF2, 0x0f2d, S.sseCvt, 5);
sse('cvtps2pd', NP, 0x0f5a, S.sseCvt, 6); sse('cvtpd2ps', P66, 0x0f5a, S.sseCvt, 7);
sse('cvtss2sd', PF3, 0x0f5a, S.sseCvt, 8); sse('cvtsd2ss', PF2, 0x0f5a, S.sseCvt, 9);
sse('cvtdq2ps', NP, 0x0f5b, S.sseCvt, 10); sse('cvtps2dq', P66, 0x0f5b, S.sseCvt, 11); sse('cvttps2dq', PF3, 0x0f5b, S.sseCvt, 12);
sse('cvtdq2pd', PF3, 0x0fe6, S.sseCvt, 13); sse('cvttpd2dq', P66, 0x0fe6, S.sseCvt, 14); sse('cvtpd2dq', PF2, 0x0fe6, S.sseCvt, 15);
const FLAGS_COMI = { out: ZF | PF | CF | OF | SF | AF };
sse('ucomiss', NP, 0x0f2e, S.comis, 0, FLAGS_COMI); sse('ucomisd', P66, 0x0f2e, S.comis, 1, FLAGS_COMI);
sse('comiss', NP, 0x0f2f, S.comis, 0, FLAGS_COMI); sse('comisd', P66, 0x0f2f, S.comis, 1, FLAGS_COMI);
sse('movmskps', NP, 0x0f50, S.sseMovmsk, 0, { form: 'reg' }); sse('movmskpd', P66, 0x0f50, S.sseMovmsk, 1, { form: 'reg' });
sse('pmovmskb', P66, 0x0fd7, S.sseMovmsk, 2, { form: 'reg' });
const ARITH_OPS: [number, number, string][] = [[0x58, 0, 'add'], [0x59, 1, 'mul'], [0x5c, 2, 'sub'], [0x5d, 3, 'min'], [0x5e, 4, 'div'], [0x5f, 5, 'max'], [0x51, 6, 'sqrt']];
const FORMS: [number, string][] = [[NP, 'ps'], [P66, 'pd'], [PF3, 'ss'], [PF2, 'sd']];
for (const [byte, op, n] of ARITH_OPS) FORMS.forEach(([pfx, suffix], form) => sse(n + suffix, pfx, 0x0f00 | byte, S.sseArith, op | (form << 4)));
FORMS.forEach(([pfx, suffix], form) => sse('cmp' + suffix, pfx, 0x0fc2, S.sseCmp, form << 4, { imm: 'ib' }));
for (const [byte, n] of [[0x54, 'and'], [0x55, 'andn'], [0x56, 'or'], [0x57, 'xor']] as const) {
  sse(n + 'ps', NP, 0x0f00 | byte, S.sseInt, byte);
  sse(n + 'pd', P66, 0x0f00 | byte, S.sseInt, byte);
}
const PINT: [number, string][] = [
  [0x60, 'punpcklbw'], [0x61, 'punpcklwd'], [0x62, 'punpckldq'], [0x63, 'packsswb'], [0x64, 'pcmpgtb'], [0x65, 'pcmpgtw'],
  [0x66, 'pcmpgtd'], [0x67, 'packuswb'], [0x68, 'punpckhbw'], [0x69, 'punpckhwd'], [0x6a, 'punpckhdq'], [0x6b, 'packssdw'],
  [0x6c, 'punpcklqdq'], [0x6d, 'punpckhqdq'], [0x74, 'pcmpeqb'], [0x75, 'pcmpeqw'], [0x76, 'pcmpeqd'],
  [0xd1, 'psrlw'], [0xd2, 'psrld'], [0xd3, 'psrlq'], [0xd4, 'paddq'], [0xd5, 'pmullw'], [0xd8, 'psubusb'], [0xd9, 'psubusw'],
  [0xda, 'pminub'], [0xdb, 'pand'], [0xdc, 'paddusb'], [0xdd, 'paddusw'], [0xde, 'pmaxub'], [0xdf, 'pandn'],
  [0xe0, 'pavgb'], [0xe1, 'psraw'], [0xe2, 'psrad'], [0xe3, 'pavgw'], [0xe4, 'pmulhuw'], [0xe5, 'pmulhw'],
  [0xe8, 'psubsb'], [0xe9, 'psubsw'], [0xea, 'pminsw'], [0xeb, 'por'], [0xec, 'paddsb'], [0xed, 'paddsw'], [0xee, 'pmaxsw'], [0xef, 'pxor'],
  [0xf1, 'psllw'], [0xf2, 'pslld'], [0xf3, 'psllq'], [0xf4, 'pmuludq'], [0xf5, 'pmaddwd'], [0xf6, 'psadbw'],
  [0xf8, 'psubb'], [0xf9, 'psubw'], [0xfa, 'psubd'], [0xfb, 'psubq'], [0xfc, 'paddb'], [0xfd, 'paddw'], [0xfe, 'paddd'],
];
for (const [byte, n] of PINT) sse(n, P66, 0x0f00 | byte, S.sseInt, byte);
const PSHIFT: [number, number, string][] = [
  [0x71, 2, 'psrlw'], [0x71, 4, 'psraw'], [0x71, 6, 'psllw'], [0x72, 2, 'psrld'], [0x72, 4, 'psrad'], [0x72, 6, 'pslld'],
  [0x73, 2, 'psrlq'], [0x73, 3, 'psrldq'], [0x73, 6, 'psllq'], [0x73, 7, 'pslldq'],
];
for (const [byte, ext, n] of PSHIFT) sse(n, P66, 0x0f00 | byte, S.sseShiftImm, (byte << 4) | ext, { ext, form: 'reg', imm: 'ib' });
sse('pshufd', P66, 0x0f70, S.sseShuf, 2, { imm: 'ib' }); sse('pshuflw', PF2, 0x0f70, S.sseShuf, 3, { imm: 'ib' });
sse('pshufhw', PF3, 0x0f70, S.sseShuf, 4, { imm: 'ib' });
sse('shufps', NP, 0x0fc6, S.sseShuf, 0, { imm: 'ib' }); sse('shufpd', P66, 0x0fc6, S.sseShuf, 1, { imm: 'ib' });
sse('pinsrw', P66, 0x0fc4, S.ssePw, 1, { imm: 'ib' }); sse('pextrw', P66, 0x0fc5, S.ssePw, 0, { imm: 'ib', form: 'reg' });
def({ mnemonic: 'ldmxcsr', op: 0x0fae, ext: 2, form: 'mem', exec: S.mxcsrOp, sub: 2, test: 'directed' });
def({ mnemonic: 'stmxcsr', op: 0x0fae, ext: 3, form: 'mem', exec: S.mxcsrOp, sub: 3, test: 'directed' });
def({ mnemonic: 'lfence', op: 0x0fae, ext: 5, form: 'reg', exec: D.nop, test: 'directed' });
def({ mnemonic: 'mfence', op: 0x0fae, ext: 6, form: 'reg', exec: D.nop, test: 'directed' });
def({ mnemonic: 'sfence', op: 0x0fae, ext: 7, form: 'reg', exec: D.nop, test: 'directed' });
def({ mnemonic: 'clflush', op: 0x0fae, ext: 7, form: 'mem', exec: D.nop, test: 'directed' });

// ------------------------------------------------------------------ x87
function x87(mnemonic: string, op: number, ext: number, form: 'reg' | 'mem', exec: Handler, sub: number, rmExact = -1): void {
  def({ mnemonic, op, ext, form, exec, sub, rmExact, modrm: true, size: 'f', test: 'x87', out: exec === X.fcom && (sub & 15) === 0 ? ZF | PF | CF | OF | SF | AF : 0 });
}
const FAR = ['fadd', 'fmul', '', '', 'fsub', 'fsubr', 'fdiv', 'fdivr'];
FAR.forEach((n, ext) => {
  if (!n) return;
  x87(n, 0xd8, ext, 'mem', X.farith, ext | (0 << 4));
  x87(n, 0xd8, ext, 'reg', X.farith, ext | (2 << 4));
  x87(n, 0xdc, ext, 'mem', X.farith, ext | (1 << 4));
  x87(n, 0xdc, ext, 'reg', X.farith, ext | (3 << 4));
  x87(n + 'p', 0xde, ext, 'reg', X.farith, ext | (4 << 4));
  x87('fi' + n.slice(1), 0xda, ext, 'mem', X.farith, ext | (5 << 4));
  x87('fi' + n.slice(1), 0xde, ext, 'mem', X.farith, ext | (6 << 4));
});
x87('fcom', 0xd8, 2, 'mem', X.fcom, 2); x87('fcomp', 0xd8, 3, 'mem', X.fcom, 2 | 16);
x87('fcom', 0xd8, 2, 'reg', X.fcom, 1); x87('fcomp', 0xd8, 3, 'reg', X.fcom, 1 | 16);
x87('fcom', 0xdc, 2, 'mem', X.fcom, 3); x87('fcomp', 0xdc, 3, 'mem', X.fcom, 3 | 16);
x87('fucom', 0xdd, 4, 'reg', X.fcom, 1); x87('fucomp', 0xdd, 5, 'reg', X.fcom, 1 | 16);
x87('fucompp', 0xda, 5, 'reg', X.fcom, 4, 1); x87('fcompp', 0xde, 3, 'reg', X.fcom, 4, 1);
x87('fucomi', 0xdb, 5, 'reg', X.fcom, 0); x87('fcomi', 0xdb, 6, 'reg', X.fcom, 0);
x87('fucomip', 0xdf, 5, 'reg', X.fcom, 16); x87('fcomip', 0xdf, 6, 'reg', X.fcom, 16);
x87('fld', 0xd9, 0, 'mem', X.fld, 0); x87('fld', 0xdd, 0, 'mem', X.fld, 1); x87('fld', 0xd9, 0, 'reg', X.fld, 2);
x87('fild', 0xdf, 0, 'mem', X.fld, 3); x87('fild', 0xdb, 0, 'mem', X.fld, 4); x87('fild', 0xdf, 5, 'mem', X.fld, 5);
x87('fld', 0xdb, 5, 'mem', X.fld, 8);
x87('fld1', 0xd9, 5, 'reg', X.fld, 7, 0); x87('fldl2t', 0xd9, 5, 'reg', X.fld, 13, 1); x87('fldl2e', 0xd9, 5, 'reg', X.fld, 10, 2);
x87('fldpi', 0xd9, 5, 'reg', X.fld, 9, 3); x87('fldlg2', 0xd9, 5, 'reg', X.fld, 12, 4); x87('fldln2', 0xd9, 5, 'reg', X.fld, 11, 5);
x87('fldz', 0xd9, 5, 'reg', X.fld, 6, 6);
x87('fst', 0xd9, 2, 'mem', X.fst, 0); x87('fstp', 0xd9, 3, 'mem', X.fst, 16);
x87('fst', 0xdd, 2, 'mem', X.fst, 1); x87('fstp', 0xdd, 3, 'mem', X.fst, 1 | 16);
x87('fst', 0xdd, 2, 'reg', X.fst, 2); x87('fstp', 0xdd, 3, 'reg', X.fst, 2 | 16);
x87('fstp', 0xdb, 7, 'mem', X.fst, 3 | 16);
x87('fist', 0xdf, 2, 'mem', X.fist, 0); x87('fistp', 0xdf, 3, 'mem', X.fist, 16); x87('fisttp', 0xdf, 1, 'mem', X.fist, 16 | 32);
x87('fist', 0xdb, 2, 'mem', X.fist, 1); x87('fistp', 0xdb, 3, 'mem', X.fist, 1 | 16); x87('fisttp', 0xdb, 1, 'mem', X.fist, 1 | 16 | 32);
x87('fistp', 0xdf, 7, 'mem', X.fist, 2 | 16); x87('fisttp', 0xdd, 1, 'mem', X.fist, 2 | 16 | 32);
x87('fxch', 0xd9, 1, 'reg', X.fxch, 0);
x87('fchs', 0xd9, 4, 'reg', X.funary, 0, 0); x87('fabs', 0xd9, 4, 'reg', X.funary, 1, 1);
x87('ftst', 0xd9, 4, 'reg', X.funary, 4, 4); x87('fxam', 0xd9, 4, 'reg', X.funary, 5, 5);
x87('fsqrt', 0xd9, 7, 'reg', X.funary, 2, 2); x87('frndint', 0xd9, 7, 'reg', X.funary, 3, 4);
x87('fldcw', 0xd9, 5, 'mem', X.fctl, 0); x87('fnstcw', 0xd9, 7, 'mem', X.fctl, 1);
x87('fnstsw', 0xdd, 7, 'mem', X.fctl, 2); x87('fnstsw', 0xdf, 4, 'reg', X.fctl, 3, 0);
x87('fninit', 0xdb, 4, 'reg', X.fctl, 4, 3); x87('fnclex', 0xdb, 4, 'reg', X.fctl, 5, 2);
x87('ffree', 0xdd, 0, 'reg', X.fctl, 6); x87('fnop', 0xd9, 2, 'reg', X.fctl, 7, 0);
const FCMOV = [['fcmovb', 2], ['fcmove', 4], ['fcmovbe', 6], ['fcmovu', 10]] as const;
FCMOV.forEach(([n, cc], ext) => {
  x87(n, 0xda, ext, 'reg', fcmov, cc);
  x87(n.replace('fcmov', 'fcmovn'), 0xdb, ext, 'reg', fcmov, cc + 1);
});

/** fcmovcc st(0), st(i) (DA/DB C0-DF): P6 conditional x87 moves. */
function fcmov(c: EmuCpu, i: Instr): void {
  if (!c.cond(i.sub)) return;
  const f = c.fpu;
  const p = (f.top) & 7, q = (f.top + i.rm) & 7;
  f.ru32[p * 2] = f.ru32[q * 2];
  f.ru32[p * 2 + 1] = f.ru32[q * 2 + 1];
  f.ex[p] = f.ex[q];
}

/** Every instruction the emulator implements, in table order. */
export const TABLE: readonly OpSpec[] = entries;
