import * as A from './alu.js';
import type { Block } from './block-cache.js';
import * as C from './control.js';
import type { EmuCpu } from './cpu.js';
import * as D from './data.js';
import { ARITH, CF, OF, PF, SF, ZF } from './flags.js';
import type { Handler, Instr } from './instr.js';

/** Handlers the compiler knows how to inline, by identity. */
const KNOWN = new Map<Handler, string>([
  [D.mov32rr, 'mov32rr'], [D.mov32rr2, 'mov32rr2'], [D.mov32ri, 'mov32ri'], [D.mov32load, 'mov32load'],
  [D.mov32loadBD, 'mov32loadBD'], [D.mov32store, 'mov32store'], [D.mov32storeBD, 'mov32storeBD'], [D.mov32mi, 'mov32mi'],
  [D.lea32, 'lea32'], [D.movzx8, 'movzx8'], [D.push32r, 'push32r'], [D.pop32r, 'pop32r'], [A.notE, 'notE'],
  [A.add32rr, 'add32rr'], [A.sub32rr, 'sub32rr'], [A.cmp32rr, 'cmp32rr'], [A.and32rr, 'and32rr'], [A.or32rr, 'or32rr'],
  [A.xor32rr, 'xor32rr'], [A.add32ri, 'add32ri'], [A.sub32ri, 'sub32ri'], [A.cmp32ri, 'cmp32ri'], [A.and32ri, 'and32ri'],
  [A.add32rm, 'add32rm'], [A.cmp32rm, 'cmp32rm'], [A.cmp32mr, 'cmp32mr'], [A.cmp32mi, 'cmp32mi'], [A.test32rr, 'test32rr'],
  [A.aluEI, 'aluEI'], [A.aluGE, 'aluGE'], [A.aluEG, 'aluEG'], [A.incdec, 'incdec'], [A.imul32rr, 'imul32rr'],
  [A.imulGE, 'imulGE'], [D.setcc, 'setcc'], [D.cmovcc, 'cmovcc'], [A.testEI, 'testEI'], [A.testEG, 'testEG'], [D.movEG, 'movEG'], [D.movGE, 'movGE'], [D.movx, 'movx'], [D.movEI, 'movEI'],
  [C.jcc, 'jcc'], [C.jccSide, 'jccSide'], [C.jmpRel, 'jmpRel'], [C.call32, 'call32'], [C.ret32, 'ret32'],
]);

function nameOf(h: Handler): string {
  return KNOWN.get(h) ?? '';
}

/**
 * Block compiler: turns a hot decoded block into one JavaScript function (`new Function`),
 * inlining the common 32-bit integer instructions and calling each remaining instruction's
 * table handler through its own call site (monomorphic, so V8 can inline it too).
 *
 * Two optimizations the interpreter cannot do: lazy-flag records that a later instruction
 * of the same block overwrites before anything reads them are not stored (dead-flag
 * elimination), and a jcc right after its cmp/sub/test/and compares the operands directly.
 * Flags are therefore exact at block boundaries and exits, but not inside a block that
 * faults (the VM stops on a fault anyway).
 *
 * Blocks go on past conditional branches (side exits: a taken one returns from the function
 * with EIP at its target), so a loop whose exit test is in the middle is one block too.
 *
 * Loops: branches back into the block (the inner loop of memcpy, strlen, a matrix row, and the
 * loops around it) become JavaScript loops, nested as the guest's loops are (`regions`), that
 * run until a branch goes elsewhere or the quantum's budget is spent, without returning to the
 * dispatcher (coremix: 2.6 -> 1.2 million dispatches per 600 iterations, 0.85x the CPU time);
 * call rel32 and ret are inlined as the block's last instruction. The guest registers a block uses live in
 * JavaScript locals while it runs (sha256: 0.91x the whole-process CPU time of `R[n]` accesses).
 *
 * (Tried and dropped: multi-block regions dispatched by a `switch` on EIP inside one function,
 * registers in locals across blocks. On coremix they took 1.7-1.9x the CPU time of these
 * per-block functions: V8 compiles the large loop-and-switch functions slowly and runs them
 * unoptimized meanwhile. Chaining, a finished block calling its successor's compiled function
 * found through the CPU's block array, took 1.05-1.07x the CPU time on coremix: a call into
 * the next block costs about what a dispatcher round trip does; side exits and in-block jumps,
 * which make the loops longer instead, cut the dispatches 12x on strmem. Blocks of 128
 * instructions instead of 64, and blocks that go on past a short forward jmp to its target,
 * made no measurable difference on the three bench:emu workloads: the first cut coremix's
 * dispatches by a third, but the longer functions cost their time back in compilation.)
 *
 * Sharing: a compiled block takes the CPU as its argument and reads the memory arrays and
 * bounds from it, so one function serves every CPU whose memory holds the same code bytes at
 * the same address (`SHARED`, keyed by address and bytes): 10,000 VMs of one image hold one
 * copy of the compiled code.
 */

/** Executions of a block before it is compiled. */
export const COMPILE_AFTER = 16;

/**
 * A compiled block: runs the block (its loops go round while fewer than `budget` instructions
 * have run) and returns the number of instructions executed. When an instruction sets
 * `c.stop`, it returns early with `c.fk` = that instruction's index in the block (the count
 * includes it); when one faults, it adds the instructions before it, less its index, to
 * `c.retired`, sets `c.fk` and rethrows (the run loop adds the index).
 */
export type CompiledBlock = (c: EmuCpu, budget: number) => number;

/** Compiled blocks shared by all CPUs, keyed by address and code bytes. */
const SHARED = new Map<string, CompiledBlock>();
/** Compiled blocks kept for sharing before the table is reset (bounds host memory). */
const SHARED_MAX = 50_000;

/** Number of distinct compiled blocks held for all CPUs (tests, statistics). */
export function sharedBlockCount(): number {
  return SHARED.size;
}

interface Gen {
  /** JS statements. */
  code: string;
  /** Flags written with the full lazy record (so an earlier writer is dead), 0 if none. */
  kills: number;
  /** For fusion: the kind of flag record and the temporaries holding it. */
  rec?: { op: Rec };
  /**
   * With `rec`: the code storing the lazy-flag record from the temporaries. An instruction whose
   * flags only a fused condition reads leaves them out, and the exits after that condition
   * store them instead (see `generate`).
   */
  flagRec?: string;
  /** The code tests condition `cc` where it says `@COND@` (filled in fused or through c.cond). */
  cc?: number;
}

/** Flag records a jcc can test on the generator's locals: 32-bit sub/logic/add, byte sub/logic. */
type Rec = 'sub' | 'logic' | 'add' | 'sub8' | 'logic8';

const FULL = ARITH;

function ea(i: Instr): string {
  switch (i.eaKind) {
    case 1: return `(R[${i.base}] + ${i.disp}) | 0`;
    case 2: return `(R[${i.base}] + (R[${i.index}] << ${i.scale}) + ${i.disp}) | 0`;
    case 3: return `((R[${i.index}] << ${i.scale}) + ${i.disp}) | 0`;
    default: return `${i.disp}`;
  }
}

/**
 * ESP-relative accesses of the block being generated that its entry check covers (see
 * `stackWindow`): they need neither a bounds check nor a code-page check.
 */
let unchecked: ReadonlySet<Instr> = new Set();

function load32(i: Instr, dst: string): string {
  if (unchecked.has(i)) return `a = ${ea(i)}; ${dst} = DV.getInt32(a, true);`;
  return `a = ${ea(i)}; if ((a - 4096) >>> 0 > RM4) c.memFault(a, 4, 'read'); ${dst} = DV.getInt32(a, true);`;
}

function store32(i: Instr, val: string): string {
  if (unchecked.has(i)) return `a = ${ea(i)}; DV.setInt32(a, ${val}, true);`;
  return `a = ${ea(i)}; if ((a - 8192) >>> 0 > WM4) c.memFault(a, 4, 'write'); DV.setInt32(a, ${val}, true); ${CODE_WRITE}4);`;
}

/**
 * Stores end with this marker plus the access size and `);`; `generate` turns it into the
 * self-modifying-code check (after the store: the address is still in `a`, and only a store
 * into a page holding code pays for reading `c.stop`).
 */
const CODE_WRITE = '@CW@';

function codeWrite(size: number, stop: string): string {
  return `if (CP[a >>> 12] !== 0) { c.codeWrite(a, ${size}); ${stop} }`;
}

function setFlags(op: 'add' | 'sub' | 'logic', live: boolean): string {
  if (!live) return '';
  if (op === 'logic') return 'c.lazy = 2261; c.lop = 2; c.lr = fr; c.lsz = 4;';
  return `c.lazy = 2261; c.lop = ${op === 'add' ? 0 : 1}; c.la = fa; c.lb = fb; c.lr = fr; c.lsz = 4; c.lcin = 0;`;
}

/** Inline code for one instruction, or null to call its handler. `flagsLive`: its flags may be read later. */
function genInstr(i: Instr, flagsLive: boolean): Gen | null {
  const spec = i.spec;
  if (spec === null || i.lock) return null;
  // 90 (and 66 90, F3 90): xchg eax, eax is a nop; gcc pads loop heads with it.
  if (i.opcode === 0x90 && i.reg === 0 && !i.mem) return { code: '', kills: 0 };
  if (i.opsize === 1) return genByte(i, flagsLive);
  if (i.opsize !== 4) return null;
  const op = i.opcode;
  const f = nameOf(i.exec);
  switch (f) {
    case 'mov32rr': return { code: `R[${i.rm}] = R[${i.reg}];`, kills: 0 };
    case 'mov32rr2': return { code: `R[${i.reg}] = R[${i.rm}];`, kills: 0 };
    case 'mov32ri': return { code: `R[${i.rm}] = ${i.imm | 0};`, kills: 0 };
    case 'mov32load': case 'mov32loadBD': return { code: load32(i, `R[${i.reg}]`), kills: 0 };
    case 'mov32store': case 'mov32storeBD': return { code: store32(i, `R[${i.reg}]`), kills: 0 };
    case 'mov32mi': return { code: store32(i, `${i.imm | 0}`), kills: 0 };
    case 'lea32': return { code: `R[${i.reg}] = ${ea(i)};`, kills: 0 };
    case 'movzx8':
      if (i.mem) return { code: `a = ${ea(i)}; if ((a - 4096) >>> 0 > RM1) c.memFault(a, 1, 'read'); R[${i.reg}] = U8[a];`, kills: 0 };
      return { code: `R[${i.reg}] = (R[${i.rm & 3}] >>> ${(i.rm >> 2) * 8}) & 255;`, kills: 0 };
    case 'push32r':
      return { code: `a = (R[4] - 4) | 0; if ((a - 8192) >>> 0 > WM4) c.memFault(a, 4, 'write'); DV.setInt32(a, R[${i.reg}], true); R[4] = a; ${CODE_WRITE}4);`, kills: 0 };
    case 'pop32r':
      return { code: `a = R[4]; if ((a - 4096) >>> 0 > RM4) c.memFault(a, 4, 'read'); v = DV.getInt32(a, true); R[4] = a + 4; R[${i.reg}] = v;`, kills: 0 };
    case 'notE':
      if (i.mem) return null;
      return { code: `R[${i.rm}] = ~R[${i.rm}];`, kills: 0 };
  }
  // ALU family (decoded through aluFast or the generic handlers).
  const aluNames: Record<string, [string, 'rr' | 'ri' | 'rm' | 'mr' | 'mi']> = {
    add32rr: ['add', 'rr'], sub32rr: ['sub', 'rr'], cmp32rr: ['cmp', 'rr'], and32rr: ['and', 'rr'], or32rr: ['or', 'rr'], xor32rr: ['xor', 'rr'],
    add32ri: ['add', 'ri'], sub32ri: ['sub', 'ri'], cmp32ri: ['cmp', 'ri'], and32ri: ['and', 'ri'],
    add32rm: ['add', 'rm'], cmp32rm: ['cmp', 'rm'], cmp32mr: ['cmp', 'mr'], cmp32mi: ['cmp', 'mi'], test32rr: ['test', 'rr'],
  };
  let alu = aluNames[f];
  if (alu === undefined && (f === 'aluEI' || f === 'aluGE' || f === 'aluEG') && i.sub !== 2 && i.sub !== 3) {
    const names = ['add', 'or', '', '', 'and', 'sub', 'xor', 'cmp'];
    if (f === 'aluEI' && !i.mem) alu = [names[i.sub], 'ri'];
    else if (f === 'aluGE' && !i.mem) alu = [names[i.sub], 'rr'];
  }
  if (alu !== undefined) {
    const [name, form] = alu;
    let dstReg = i.rm;
    let A: string, B: string;
    let pre = '';
    if (form === 'rr') {
      if (f === 'aluGE') { A = `R[${i.reg}]`; B = `R[${i.rm}]`; dstReg = i.reg; } else { A = `R[${i.rm}]`; B = `R[${i.reg}]`; }
    } else if (form === 'ri') { A = `R[${i.rm}]`; B = `${i.imm | 0}`; }
    else if (form === 'rm') { pre = load32(i, 'v'); A = `R[${i.reg}]`; B = 'v'; dstReg = i.reg; }
    else if (form === 'mr') { pre = load32(i, 'v'); A = 'v'; B = `R[${i.reg}]`; dstReg = -1; }
    else { pre = load32(i, 'v'); A = 'v'; B = `${i.imm | 0}`; dstReg = -1; }
    const expr = name === 'add' ? 'fa + fb' : name === 'sub' || name === 'cmp' ? 'fa - fb' : name === 'and' || name === 'test' ? 'fa & fb' : name === 'or' ? 'fa | fb' : 'fa ^ fb';
    const kind: 'add' | 'sub' | 'logic' = name === 'add' ? 'add' : name === 'sub' || name === 'cmp' ? 'sub' : 'logic';
    const writes = name !== 'cmp' && name !== 'test';
    if (writes && dstReg < 0) return null;
    const code = `${pre} fa = ${A}; fb = ${B}; fr = (${expr}) | 0; ${writes ? `R[${dstReg}] = fr;` : ''} ${setFlags(kind, flagsLive)}`;
    return { code, kills: FULL, rec: { op: kind }, flagRec: setFlags(kind, true) };
  }
  if (f === 'movx') {
    const wide = i.opcode === 0x1b7 || i.opcode === 0x1bf;
    const signed = i.opcode === 0x1be || i.opcode === 0x1bf;
    let src: string;
    if (i.mem) src = wide ? `a = ${ea(i)}; if ((a - 4096) >>> 0 > RM2) c.memFault(a, 2, 'read'); v = DV.getUint16(a, true);` : `a = ${ea(i)}; if ((a - 4096) >>> 0 > RM1) c.memFault(a, 1, 'read'); v = U8[a];`;
    else src = `v = ${wide ? `R[${i.rm}] & 65535` : byteReg(i.rm)};`;
    const sh = wide ? 16 : 24;
    return { kills: 0, code: `${src} R[${i.reg}] = ${signed ? `(v << ${sh}) >> ${sh}` : 'v'};` };
  }
  // Shifts by CL whose flags nobody reads (a count of 0 would keep them: no difference then).
  if (op === 0xd3 && !i.mem && !flagsLive && (i.sub === 4 || i.sub === 5 || i.sub === 6 || i.sub === 7)) {
    const js = i.sub === 5 ? '>>>' : i.sub === 7 ? '>>' : '<<';
    return { kills: 0, code: `v = R[1] & 31; R[${i.rm}] = R[${i.rm}] ${js} v;` };
  }
  if (f === 'testEI' || f === 'testEG') {
    const pre = i.mem ? load32(i, 'fa') : `fa = R[${i.rm}];`;
    const other = f === 'testEI' ? `${i.imm | 0}` : `R[${i.reg}]`;
    return { kills: FULL, rec: { op: 'logic' }, flagRec: setFlags('logic', true), code: `${pre} fr = fa & ${other}; ${setFlags('logic', flagsLive)}` };
  }
  // Shifts/rotates by a non-zero immediate on a register.
  if (op === 0xc1 && !i.mem && (i.imm & 31) !== 0) {
    const n = i.imm & 31;
    const r = i.rm;
    switch (i.sub) {
      case 4: case 6: return { kills: FULL, code: `v = R[${r}]; fr = v << ${n}; R[${r}] = fr;` + (flagsLive ? ` a = (v >>> ${32 - n}) & 1; c.flags = (c.flags & ~${CF | OF | 0x10}) | a | ((((fr ^ v) >>> 31) & 1) << 11); c.lazy = ${ZF | SF | PF}; c.lop = 2; c.lr = fr; c.lsz = 4;` : '') };
      case 5: return { kills: FULL, code: `v = R[${r}]; fr = v >>> ${n}; R[${r}] = fr;` + (flagsLive ? ` c.flags = (c.flags & ~${CF | OF | 0x10}) | ((v >>> ${n - 1}) & 1) | (((v >>> 31) & 1) << 11); c.lazy = ${ZF | SF | PF}; c.lop = 2; c.lr = fr; c.lsz = 4;` : '') };
      case 7: return { kills: FULL, code: `v = R[${r}]; fr = v >> ${n}; R[${r}] = fr;` + (flagsLive ? ` c.flags = (c.flags & ~${CF | OF | 0x10}) | ((v >> ${n - 1}) & 1); c.lazy = ${ZF | SF | PF}; c.lop = 2; c.lr = fr; c.lsz = 4;` : '') };
      case 0: if (!flagsLive) return { kills: 0, code: `v = R[${r}]; R[${r}] = (v << ${n}) | (v >>> ${32 - n});` }; return null;
      case 1: if (!flagsLive) return { kills: 0, code: `v = R[${r}]; R[${r}] = (v >>> ${n}) | (v << ${32 - n});` }; return null;
    }
    return null;
  }
  if (f === 'incdec' && !i.mem) {
    const op = i.sub === 0 ? '+' : '-';
    if (!flagsLive) return { kills: 0, code: `R[${i.rm}] = (R[${i.rm}] ${op} 1) | 0;` };
    // CF is kept: take it from the previous record first (so its writer stays live).
    return {
      kills: ARITH & ~CF,
      rec: { op: 'add' }, // ZF/SF tests on fr
      code: `if ((c.lazy & ${CF}) !== 0) c.flags = (c.flags & ~${CF}) | c.getCF(); fa = R[${i.rm}]; fb = 1; fr = (fa ${op} 1) | 0; R[${i.rm}] = fr; c.lazy = ${ARITH & ~CF}; c.lop = ${i.sub}; c.la = fa; c.lb = 1; c.lr = fr; c.lsz = 4; c.lcin = 0;`,
    };
  }
  if (f === 'cmovcc') {
    if (i.mem) return { kills: 0, cc: i.sub, code: `${load32(i, 'v')} if (@COND@) R[${i.reg}] = v;` };
    return { kills: 0, cc: i.sub, code: `if (@COND@) R[${i.reg}] = R[${i.rm}];` };
  }
  if (f === 'imulGE' && !flagsLive) {
    const src = i.mem ? 'v' : `R[${i.rm}]`;
    const other = i.opcode === 0x1af ? `R[${i.reg}]` : `${i.imm | 0}`;
    return { kills: 0, code: `${i.mem ? load32(i, 'v') : ''} R[${i.reg}] = Math.imul(${src}, ${other});` };
  }
  if (f === 'imul32rr') {
    if (flagsLive) return null;
    return { kills: 0, code: `R[${i.reg}] = Math.imul(R[${i.rm}], R[${i.reg}]);` };
  }
  return null;
}

/** The byte register `r` (AL CL DL BL AH CH DH BH) as an expression. */
function byteReg(r: number): string {
  return r < 4 ? `(R[${r}] & 255)` : `((R[${r & 3}] >>> 8) & 255)`;
}

/** Byte loads, stores, cmp and test: string and parser code (strmem, httpd). */
function genByte(i: Instr, flagsLive: boolean): Gen | null {
  const f = nameOf(i.exec);
  if (f === 'setcc' && !i.mem) {
    const sh = i.rm < 4 ? 0 : 8;
    return { kills: 0, cc: i.sub, code: `R[${i.rm & 3}] = (R[${i.rm & 3}] & ${~(255 << sh)}) | ((@COND@) ? ${1 << sh} : 0);` };
  }
  const load = (dst: string): string => `a = ${ea(i)}; if ((a - 4096) >>> 0 > RM1) c.memFault(a, 1, 'read'); ${dst} = U8[a];`;
  if (f === 'movEI' && i.mem) {
    // mov byte [mem], imm8: string code's terminators and fills (strmem's loops).
    return { kills: 0, code: `a = ${ea(i)}; if ((a - 8192) >>> 0 > WM1) c.memFault(a, 1, 'write'); U8[a] = ${i.imm & 255}; ${CODE_WRITE}1);` };
  }
  if (f === 'movEG' && i.mem) {
    return { kills: 0, code: `a = ${ea(i)}; if ((a - 8192) >>> 0 > WM1) c.memFault(a, 1, 'write'); U8[a] = ${byteReg(i.reg)}; ${CODE_WRITE}1);` };
  }
  if ((f === 'movEG' || f === 'movGE') && !i.mem) {
    const dst = f === 'movEG' ? i.rm : i.reg;
    const sh = dst < 4 ? 0 : 8;
    return { kills: 0, code: `v = ${byteReg(f === 'movEG' ? i.reg : i.rm)}; R[${dst & 3}] = (R[${dst & 3}] & ${~(255 << sh)}) | (v << ${sh});` };
  }
  if (f === 'movGE' && i.mem) {
    const r = i.reg;
    const sh = r < 4 ? 0 : 8;
    return { kills: 0, code: `${load('v')} R[${r & 3}] = (R[${r & 3}] & ${~(255 << sh)}) | (v << ${sh});` };
  }
  const cmp = f === 'aluEI' && i.sub === 7;
  const test = f === 'testEI' || f === 'testEG';
  if (cmp || test) {
    const pre = i.mem ? load('fa') : `fa = ${byteReg(i.rm)};`;
    const imm = f === 'testEG' ? byteReg(i.reg) : `${i.imm & 255}`;
    if (cmp) {
      const flagRec = ` c.lazy = ${ARITH}; c.lop = 1; c.la = fa; c.lb = fb; c.lr = fr; c.lsz = 1; c.lcin = 0;`;
      return { kills: ARITH, rec: { op: 'sub8' }, flagRec, code: `${pre} fb = ${imm}; fr = (fa - fb) | 0;` + (flagsLive ? flagRec : '') };
    }
    // A byte AND is never negative as an int32: conditions read SF from bit 7 ('logic8').
    const flagRec = ` c.lazy = ${ARITH}; c.lop = 2; c.lr = fr; c.lsz = 1;`;
    return { kills: ARITH, rec: { op: 'logic8' }, flagRec, code: `${pre} fr = fa & ${imm};` + (flagsLive ? flagRec : '') };
  }
  // Byte add/or/and/sub/xor/cmp into a register (sha256's and the CRC loop's byte counters).
  if ((f === 'aluEI' || f === 'aluEG' || f === 'aluGE') && i.sub !== 2 && i.sub !== 3) {
    const dst = f === 'aluGE' ? i.reg : i.rm;
    if (f !== 'aluGE' && i.mem) return null; // memory destinations go through the handler
    const src = f === 'aluEI' ? `${i.imm & 255}` : f === 'aluEG' ? byteReg(i.reg) : i.mem ? 'v' : byteReg(i.rm);
    const pre = f === 'aluGE' && i.mem ? load('v') : '';
    const ops = ['+', '|', '', '', '&', '-', '^', '-'];
    const kind = i.sub === 0 ? 0 : i.sub === 5 || i.sub === 7 ? 1 : 2;
    const sh = dst < 4 ? 0 : 8;
    const write = i.sub === 7 ? '' : `R[${dst & 3}] = (R[${dst & 3}] & ${~(255 << sh)}) | ((fr & 255) << ${sh});`;
    const rec = kind === 2 ? ` c.lazy = ${ARITH}; c.lop = 2; c.lr = fr; c.lsz = 1;` : ` c.lazy = ${ARITH}; c.lop = ${kind}; c.la = fa; c.lb = fb; c.lr = fr; c.lsz = 1; c.lcin = 0;`;
    const g: Gen = { kills: ARITH, code: `${pre} fa = ${byteReg(dst)}; fb = ${src}; fr = (fa ${ops[i.sub]} fb) | 0; ${write}${flagsLive ? rec : ''}` };
    if (kind === 1) g.rec = { op: 'sub8' };
    else if (kind === 2) g.rec = { op: 'logic8' };
    if (g.rec) g.flagRec = rec;
    return g;
  }
  return null;
}

/** Condition test on fused locals, or null when only `c.cond` can answer. */
function fusedCond(op: Rec, cc: number): string | null {
  if (op === 'sub8') {
    // Both operands are zero-extended bytes: unsigned tests and equality read them directly.
    switch (cc) {
      case 2: return 'fa < fb';
      case 3: return 'fa >= fb';
      case 4: return 'fa === fb';
      case 5: return 'fa !== fb';
      case 6: return 'fa <= fb';
      case 7: return 'fa > fb';
    }
    return null;
  }
  if (op === 'sub') {
    switch (cc) {
      case 2: return '(fa >>> 0) < (fb >>> 0)';
      case 3: return '(fa >>> 0) >= (fb >>> 0)';
      case 4: return 'fa === fb';
      case 5: return 'fa !== fb';
      case 6: return '(fa >>> 0) <= (fb >>> 0)';
      case 7: return '(fa >>> 0) > (fb >>> 0)';
      case 8: return 'fr < 0';
      case 9: return 'fr >= 0';
      case 12: return 'fa < fb';
      case 13: return 'fa >= fb';
      case 14: return 'fa <= fb';
      case 15: return 'fa > fb';
    }
    return null;
  }
  if (op === 'logic8') {
    // CF = OF = 0; fr is the zero-extended byte result.
    switch (cc) {
      case 0: case 2: return 'false';
      case 1: case 3: return 'true';
      case 4: case 6: return 'fr === 0';
      case 5: case 7: return 'fr !== 0';
      case 8: case 12: return '(fr & 128) !== 0';
      case 9: case 13: return '(fr & 128) === 0';
      case 14: return '(fr === 0 || (fr & 128) !== 0)';
      case 15: return '(fr !== 0 && (fr & 128) === 0)';
    }
    return null;
  }
  if (op === 'logic') {
    switch (cc) {
      case 2: case 6: return cc === 2 ? 'false' : 'fr === 0';
      case 3: case 7: return cc === 3 ? 'true' : 'fr !== 0';
      case 4: return 'fr === 0';
      case 5: return 'fr !== 0';
      case 8: case 12: return 'fr < 0';
      case 9: case 13: return 'fr >= 0';
      case 14: return 'fr <= 0';
      case 15: return 'fr > 0';
      case 0: return 'false';
      case 1: return 'true';
    }
    return null;
  }
  switch (cc) {
    case 4: return 'fr === 0';
    case 5: return 'fr !== 0';
    case 8: return 'fr < 0';
    case 9: return 'fr >= 0';
  }
  return null;
}

/** Flags an instruction reads (conservative for handlers the compiler does not model). */
function flagsRead(i: Instr, inlined: boolean): number {
  const s = i.spec;
  if (s === null) return ARITH;
  if (!inlined) return ARITH; // handler calls may read (or partially keep) any flag
  return s.flagsIn & ARITH;
}

/**
 * Compile `b` (decoded from `c`'s memory), or take the function another CPU compiled from the
 * same bytes at the same address. A block with nothing to inline is compiled too: its handler
 * calls become monomorphic call sites, and it needs no interpreter loop.
 */
export function compileBlock(c: EmuCpu, b: Block): CompiledBlock {
  const key = blockKey(c, b);
  const shared = SHARED.get(key);
  if (shared !== undefined) return shared;
  const fn = generateChecked(b);
  if (SHARED.size >= SHARED_MAX) SHARED.clear();
  SHARED.set(key, fn);
  return fn;
}

/** A block's identity: address, length and code bytes. */
function blockKey(c: EmuCpu, b: Block): string {
  const lo = Math.max(0, Math.min(b.addr, c.size));
  const hi = Math.max(lo, Math.min(b.end, c.size));
  return `${b.addr}:${b.end}:${String.fromCharCode(...c.u8.subarray(lo, hi))}`;
}

/**
 * Compile `b`; where it reads or writes the stack through [ESP + disp] before anything changes
 * ESP (gcc's spills and locals: sha256's rounds), two functions: one whose entry checks once
 * that the whole window of those accesses is writable guest memory on pages without code, and
 * then runs them unchecked (0.7x the CPU time of sha256), falling back to the other, every
 * access checked, when it is not.
 */
function generateChecked(b: Block): CompiledBlock {
  const checked = generate(b, null);
  const w = stackWindow(b.instrs, lastGens);
  if (w === null) return checked;
  unchecked = w.covered;
  try {
    return generate(b, { lo: w.lo, span: w.span, slow: checked });
  } finally {
    unchecked = new Set();
  }
}

/**
 * The [ESP + disp] dword accesses at a constant ESP: before the first instruction that may
 * change ESP (a push, pop, call, ret, a write to ESP or any handler call), and not in a loop
 * that reaches it. `lo` = their lowest displacement, `span` = bytes from there to the end of
 * the highest one (at most 4 KiB, so the window touches two pages at most); null if none.
 */
function stackWindow(ins: Instr[], gens: readonly (Gen | null)[]): { covered: Set<Instr>; lo: number; span: number } | null {
  const n = ins.length;
  let first = n;
  for (let k = 0; k < n && first === n; k++) {
    const i = ins[k];
    if (i.exec === C.jcc || i.exec === C.jccSide || i.exec === C.jmpRel) continue;
    const g = gens[k];
    if (g === null || i.exec === C.call32 || i.exec === C.ret32 || /\bR\[4\] =(?!=)/.test(g.code)) first = k;
  }
  const { backEdges } = regions(ins);
  const covered = new Set<Instr>();
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = 0; k < first; k++) {
    const i = ins[k];
    if (!i.mem || i.eaKind !== 1 || i.base !== 4 || i.opsize !== 4) continue;
    if (backEdges.some((r) => r.s <= k && k <= r.e && r.e >= first)) continue;
    covered.add(i);
    lo = Math.min(lo, i.disp);
    hi = Math.max(hi, i.disp + 4);
  }
  if (covered.size === 0 || hi - lo > 4096) return null;
  return { covered, lo, span: hi - lo };
}

/** The per-instruction code of the last `generate` (`stackWindow` reads which instructions call handlers). */
let lastGens: (Gen | null)[] = [];

function generate(b: Block, fast: { lo: number; span: number; slow: CompiledBlock } | null): CompiledBlock {
  const ins = b.instrs;
  const n = ins.length;
  const { loops, skips, crossing } = regions(ins);
  const flow = controlFlow(ins, loops, skips, crossing);
  // Loops whose back edges cross (gcc's rotated loops with two heads, a merge loop entered in
  // the middle): the whole block is one `switch` in a loop, every branch inside it a jump to a
  // case (`goto`), instead of side exits back to the dispatcher.
  const labels = new Set<number>();
  for (let k = 0; k < n; k++) if (flow.kind[k] === 'goto') labels.add(flow.target[k]);
  // Which flag record each inlined condition can read from the temporaries (mirrors the
  // emission below: joins and every other flag writer end a record).
  // genInstr depends only on the instruction and whether its flags are live (and on `unchecked`,
  // fixed for the whole call): the liveness passes below ask again and again.
  const memo: (Gen | null | undefined)[] = new Array(2 * n);
  const gen = (k: number, live: boolean): Gen | null => {
    const slot = 2 * k + (live ? 1 : 0);
    let g = memo[slot];
    if (g === undefined) g = memo[slot] = genInstr(ins[k], live);
    return g;
  };
  const live1 = ins.map((_, k) => gen(k, true));
  const fuseOn: number[] = new Array(n).fill(-1);
  {
    let w = -1;
    for (let k = 0; k < n; k++) {
      if (loops.has(k) || labels.has(k)) w = -1;
      const i = ins[k];
      const g = live1[k];
      const f = flow.kind[k];
      const cc = f === undefined ? g?.cc : f === 'skip' || f === 'side' || f === 'jcc' || (f === 'back' && i.exec !== C.jmpRel) ? i.sub : undefined;
      if (cc !== undefined && w >= 0 && fusedCond(live1[w]!.rec!.op, cc) !== null) fuseOn[k] = w;
      if (flow.kind[k] === undefined) {
        if (g !== null) {
          if (g.rec) w = k;
          else if (g.kills !== 0 || (i.spec?.flagsOut ?? 0) !== 0) w = -1;
        } else if ((i.spec?.flagsOut ?? ARITH) !== 0) w = -1;
      }
      for (const r of skips.values()) if (r.e === k) w = -1;
    }
  }
  // A condition fused on a record that can be left out of memory reads nothing from the CPU.
  const deferrable = ins.map((_, k) => {
    const g = gen(k, false);
    return g !== null && g.rec !== undefined && g.flagRec !== undefined;
  });
  const readsNone = (k: number): boolean => fuseOn[k] >= 0 && deferrable[fuseOn[k]];
  // Liveness of the arithmetic flags over the block's own branches (loops make it a fixpoint).
  // Exits need every flag, except the exits taken by a fused condition and a loop's budget
  // exit: they store the record of the pending writer themselves.
  const gens: (Gen | null)[] = new Array(n).fill(null);
  const liveAfter: number[] = new Array(n).fill(ARITH);
  let liveIn: number[] = new Array(n + 1).fill(0);
  const pass = (conservative: boolean): boolean => {
    let changed = false;
    for (let k = n - 1; k >= 0; k--) {
      const i = ins[k];
      const kind = flow.kind[k];
      const t = flow.target[k];
      let after: number;
      if (conservative) after = kind === 'skip' || kind === 'back' || kind === 'goto' || kind === 'side' || k === n - 1 ? ARITH : liveIn[k + 1];
      else if (k === n - 1) after = (kind === 'back' || kind === 'goto') && i.exec === C.jmpRel ? liveIn[t] : ARITH;
      // A fused branch on a record kept in locals stores it on each of its edges that needs it
      // (see `edgeRec`), so the record's writer sees its flags dead.
      else if ((kind === 'skip' || kind === 'back' || kind === 'goto' || kind === 'side') && readsNone(k)) after = 0;
      else if (kind === 'skip' || kind === 'back' || kind === 'goto') after = liveIn[k + 1] | liveIn[t];
      else if (kind === 'side') after = ARITH;
      else after = liveIn[k + 1];
      const g = gen(k, (after & ARITH) !== 0);
      gens[k] = g;
      liveAfter[k] = after;
      const name = nameOf(i.exec);
      const inlinedTerm = i.term && (name === 'jcc' || name === 'jccSide' || name === 'jmpRel' || name === 'call32' || name === 'ret32');
      const reads = !conservative && readsNone(k) ? 0 : flagsRead(i, g !== null || inlinedTerm);
      const li = (after & ~(g ? g.kills : 0)) | reads;
      if (li !== liveIn[k]) {
        liveIn[k] = li;
        changed = true;
      }
    }
    return changed;
  };
  let settled = false;
  for (let round = 0; round < 8 && !settled; round++) settled = !pass(false);
  if (!settled) {
    liveIn = new Array(n + 1).fill(0);
    pass(true);
  }
  lastGens = gens;
  const opens = new Map<number, Region[]>();
  const closes = new Map<number, Region[]>();
  for (const r of [...loops.values(), ...skips.values()]) {
    if (!opens.has(r.s)) opens.set(r.s, []);
    opens.get(r.s)!.push(r);
    if (!closes.has(r.e)) closes.set(r.e, []);
    closes.get(r.e)!.push(r);
  }
  for (const l of opens.values()) l.sort((x, y) => y.e - x.e); // outer first
  for (const l of closes.values()) l.sort((x, y) => y.s - x.s); // inner first
  const body: string[] = [];
  // Instructions are counted per straight-line segment: `ic` holds the count up to `seg`,
  // flushed where paths join or leave (loop heads, skip targets, branches).
  let seg = 0;
  const segOf: number[] = new Array(n).fill(0);
  const flush = (x: number): void => {
    if (x > seg) body.push(`ic += ${x - seg};`);
    seg = x;
  };
  // The record of the last flag writer when it was left out of memory (its temporaries hold it):
  // stored on the way out of the function, so flags are exact at every exit but a fault.
  let pend = '';
  const done = (k: number): string => `ic + ${k + 1 - seg}`;
  const stopAt = (k: number): string => `if (c.stop !== 0) { ${pend} c.fk = ${k}; return ${done(k)}; }`;
  const condOf = (rec: { op: Rec } | null, cc: number): string => (rec ? fusedCond(rec.op, cc) : null) ?? `c.cond(${cc})`;
  let lastRec: { op: Rec } | null = null;
  if (crossing) body.push('S: for (;;) { switch (at) { case 0:');
  for (let k = 0; k < n; k++) {
    const i = ins[k];
    const g = gens[k];
    if (k > 0 && labels.has(k)) {
      flush(k);
      body.push(`case ${k}:`);
      lastRec = null;
      pend = '';
    }
    for (const r of opens.get(k) ?? []) {
      if (r.kind === 'loop') {
        flush(k);
        body.push(`L${k}: for (;;) {`);
        lastRec = null; // reached from two paths: the flag temporaries are not known here
        pend = '';
      } else body.push(`j${k}: {`);
    }
    segOf[k] = seg;
    const kind = flow.kind[k];
    const target = i.imm;
    // The pending record where a branch's edge leads to code that reads it (or leaves).
    const edgeRec = (to: number): string => (to < n && (liveIn[to] & ARITH) === 0 ? '' : pend);
    const fallRec = kind === 'skip' || kind === 'back' || kind === 'goto' || kind === 'side' ? edgeRec(k + 1) : '';
    if (kind === 'skip') {
      const cond = condOf(lastRec, i.sub);
      body.push(`k = ${k};`);
      flush(k + 1);
      body.push(`if (${cond}) { ${edgeRec(flow.target[k])} break j${k}; } ${fallRec}`);
    } else if (kind === 'goto') {
      const t = flow.target[k];
      const cond = i.exec === C.jmpRel ? 'true' : condOf(lastRec, i.sub);
      body.push(`k = ${k};`);
      flush(k + 1);
      // Backward jumps may loop: they check the budget.
      const taken = edgeRec(t);
      const leave = t <= k ? `if (ic >= budget) { ${taken ? '' : pend} c.eip = ${target}; return ic; } ` : '';
      body.push(`if (${cond}) { at = ${t}; ${taken} ${leave}continue S; } ${fallRec}`);
    } else if (kind === 'back') {
      // A loop back edge: the loop goes on in JavaScript until the budget is spent.
      const cond = i.exec === C.jmpRel ? 'true' : condOf(lastRec, i.sub);
      body.push(`k = ${k};`);
      flush(k + 1);
      const taken = edgeRec(flow.target[k]);
      body.push(`if (${cond}) { ${taken} if (ic < budget) continue L${flow.target[k]}; ${taken ? '' : pend} c.eip = ${target}; return ic; } ${fallRec}`);
    } else if (kind === 'jcc') {
      body.push(`if (${condOf(lastRec, i.sub)}) c.eip = ${target};`);
    } else if (kind === 'jmp') {
      body.push(`c.eip = ${target};`);
    } else if (kind === 'call') {
      body.push(`k = ${k}; a = (R[4] - 4) | 0; if ((a - 8192) >>> 0 > WM4) c.memFault(a, 4, 'write'); DV.setInt32(a, ${i.next}, true); R[4] = a; c.eip = ${target}; ${codeWrite(4, stopAt(k))}`);
    } else if (kind === 'ret') {
      body.push(`k = ${k}; a = R[4]; if ((a - 4096) >>> 0 > RM4) c.memFault(a, 4, 'read'); c.eip = DV.getInt32(a, true); R[4] = a + 4;`);
    } else if (kind === 'side') {
      body.push(`k = ${k}; if (${condOf(lastRec, i.sub)}) { ${pend} c.eip = ${target}; return ${done(k)}; } ${fallRec}`);
    } else if (g !== null) {
      const code = g.cc === undefined ? g.code : g.code.replace('@COND@', condOf(lastRec, g.cc));
      // A store into a code page may have dropped this very block: leave after it.
      body.push(`k = ${k}; ${code.replace(/@CW@(\d)\);/g, (_m, w: string) => codeWrite(Number(w), stopAt(k)))}`);
      if (g.rec) {
        lastRec = g.rec;
        pend = (liveAfter[k] & ARITH) === 0 ? (g.flagRec ?? '') : '';
      } else if (g.kills !== 0 || (i.spec?.flagsOut ?? 0) !== 0) {
        // Any other flag writer ends the fusable record (found by the differential tester: an
        // inlined imul, which calls its handler, left the previous `or` record for jae to fuse on).
        lastRec = null;
        pend = '';
      }
    } else {
      body.push(`k = ${k}; ${pend} @SPILL@ h = 1; H[${k}](c, I[${k}]); h = 0; @RELOAD@ ${stopAt(k)}`);
      if ((i.spec?.flagsOut ?? ARITH) !== 0) lastRec = null;
      pend = '';
    }
    for (const r of closes.get(k) ?? []) {
      flush(k + 1);
      if (r.kind === 'loop') body.push(`break L${r.s}; }`);
      else {
        body.push('}');
        lastRec = null; // a skip target: reached from two paths
        pend = '';
      }
    }
  }
  flush(n);
  if (crossing) body.push('} break S; }');
  // Registers in JavaScript locals for the whole block (and all iterations of its loops):
  // written back around handler calls and when the function returns or throws (unless a
  // handler threw: then the handler's register state is the architectural one).
  const inline = body.join('\n');
  const used = [...new Set([...inline.matchAll(/\bR\[(\d)\]/g)].map((m) => Number(m[1])))].sort();
  const spill = used.map((r) => `R[${r}] = r${r};`).join(' ');
  const reload = used.map((r) => `r${r} = R[${r}];`).join(' ');
  const text = inline.replace(/\bR\[(\d)\]/g, 'r$1').replaceAll('@SPILL@', spill).replaceAll('@RELOAD@', reload);
  const regLocals = used.length ? `let ${used.map((r) => `r${r} = R[${r}]`).join(', ')};` : '';
  const use = (name: string, init: string): string => (new RegExp(`\\b${name}\\b`).test(text) ? `, ${name} = ${init}` : '');
  const prologue = `const R = c.regs${use('M', 'c.m32')}${use('U8', 'c.u8')}${use('DV', 'c.dv')}${use('CP', 'c.codePages')}${use('RM1', 'c.rmax1')}${use('RM2', 'c.rmax2')}${use('RM4', 'c.rmax4')}${use('WM4', 'c.wmax4')}${use('WM1', 'c.wmax1')};`;
  // On a fault, `retired` gets the instructions before the faulting one (the run loop adds its index).
  // The window check comes before the registers are copied to locals (the fallback runs on the CPU's own).
  const guard = fast
    ? `{ const lo = (c.regs[4] + ${fast.lo}) | 0; if ((lo - 8192) >>> 0 > c.wmax1 + 1 - ${fast.span} || c.codePages[lo >>> 12] !== 0 || c.codePages[(lo + ${fast.span - 1}) >>> 12] !== 0) return SLOW(c, budget); }`
    : '';
  const src = `return function block_${b.addr.toString(16)}(c, budget) {\n ${guard}\n ${prologue}\n ${regLocals}\n let k = 0, h = 0, a = 0, v = 0, fa = 0, fb = 0, fr = 0, ic = 0, at = 0;\n try {\n${text}\n return ic;\n } catch (e) { c.fk = k; c.retired += ic - SG[k]; throw e; } finally { if (h === 0) { ${spill} } }\n};`;
  const handlers: Handler[] = ins.map((i) => i.exec);
  type Make = (I: Instr[], H: Handler[], SG: Int32Array, SLOW: CompiledBlock | null) => CompiledBlock;
  return (new Function('I', 'H', 'SG', 'SLOW', src) as Make)(ins, handlers, Int32Array.from(segOf), fast?.slow ?? null);
}

/** How an instruction leaves straight-line code, where the compiler inlines it. */
type Flow = 'skip' | 'back' | 'goto' | 'side' | 'jcc' | 'jmp' | 'call' | 'ret';

/**
 * Per instruction: `kind` (undefined for straight-line code and handler calls) and, for a skip
 * or a back edge, `target` = the index it jumps to.
 */
function controlFlow(ins: Instr[], loops: Map<number, Region>, skips: Map<number, Region>, switched: boolean): { kind: (Flow | undefined)[]; target: number[] } {
  const n = ins.length;
  const kind: (Flow | undefined)[] = new Array(n).fill(undefined);
  const target: number[] = new Array(n).fill(-1);
  for (let k = 0; k < n; k++) {
    const i = ins[k];
    const inline = i.spec !== null && i.opsize === 4 && !i.lock;
    const name = nameOf(i.exec);
    const lastJump = k === n - 1 && i.term && inline && (name === 'jcc' || name === 'jmpRel');
    const sk = skips.get(k);
    if (sk !== undefined) {
      kind[k] = 'skip';
      target[k] = sk.e + 1;
    } else if (inline && (i.exec === C.jccSide || lastJump)) {
      const t = indexOf(ins, i.imm);
      const r = t !== undefined ? loops.get(t) : undefined;
      if (switched && t !== undefined) {
        kind[k] = 'goto';
        target[k] = t;
      } else if (r !== undefined && r.s <= k && k <= r.e) {
        kind[k] = 'back';
        target[k] = t!;
      } else kind[k] = i.exec === C.jccSide ? 'side' : name === 'jcc' ? 'jcc' : 'jmp';
    } else if (k === n - 1 && i.term && inline && name === 'call32') kind[k] = 'call';
    else if (k === n - 1 && i.term && inline && name === 'ret32') kind[k] = 'ret';
  }
  return { kind, target };
}

/** Index of the instruction at guest address `addr` in `ins`, or undefined. */
function indexOf(ins: Instr[], addr: number): number | undefined {
  for (let k = 0; k < ins.length; k++) if (ins[k].addr === addr) return k;
  return undefined;
}

/**
 * A structured piece of a block: a loop over instructions `s..e` (`e` is its last back edge to
 * `s`), or a skip (the conditional branch at `s` jumps forward to `e + 1`).
 */
interface Region {
  kind: 'loop' | 'skip';
  s: number;
  e: number;
}

/** Disjoint, or one strictly inside the other: JavaScript's labelled blocks and loops must nest. */
function nests(a: Region, b: Region): boolean {
  if (a.e < b.s || b.e < a.s) return true;
  if (a.s === b.s && a.e === b.e) return false;
  return (a.s <= b.s && b.e <= a.e) || (b.s <= a.s && a.e <= b.e);
}

/**
 * Branches whose target is an instruction of the same block: back edges become JavaScript loops
 * (largest first: an outer loop of a nest, then the loops inside it), forward branches labelled
 * blocks left with `break` (an if without else). Whatever would not nest with the regions taken
 * stays a side exit that leaves the function (gcc's rotated loops with two heads, for one).
 */
function regions(ins: Instr[]): { loops: Map<number, Region>; skips: Map<number, Region>; crossing: boolean; backEdges: Region[] } {
  const n = ins.length;
  const inlineJump = (i: Instr): boolean => i.spec !== null && i.opsize === 4 && !i.lock;
  const lastBack = new Map<number, number>();
  for (let k = 0; k < n; k++) {
    const i = ins[k];
    const back = (i.exec === C.jccSide && inlineJump(i)) || (k === n - 1 && i.term && inlineJump(i) && (i.exec === C.jcc || i.exec === C.jmpRel));
    if (!back) continue;
    const t = indexOf(ins, i.imm);
    if (t !== undefined && t <= k) lastBack.set(t, Math.max(lastBack.get(t) ?? k, k));
  }
  const taken: Region[] = [];
  const loops = new Map<number, Region>();
  const cands: Region[] = [...lastBack].map(([s, e]) => ({ kind: 'loop', s, e }));
  cands.sort((x, y) => y.e - y.s - (x.e - x.s));
  let crossing = false;
  for (const r of cands) {
    if (!taken.every((x) => nests(x, r))) {
      crossing = true;
      continue;
    }
    taken.push(r);
    loops.set(r.s, r);
  }
  if (crossing) return { loops: new Map(), skips: new Map(), crossing, backEdges: cands };
  const skips = new Map<number, Region>();
  for (let k = 0; k < n; k++) {
    const i = ins[k];
    if (i.exec !== C.jccSide || !inlineJump(i)) continue;
    const t = indexOf(ins, i.imm);
    if (t === undefined || t <= k) continue;
    const r: Region = { kind: 'skip', s: k, e: t - 1 };
    if (!taken.every((x) => nests(x, r))) continue;
    taken.push(r);
    skips.set(k, r);
  }
  return { loops, skips, crossing, backEdges: cands };
}
