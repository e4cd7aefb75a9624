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
  [C.jcc, 'jcc'], [C.jmpRel, 'jmpRel'],
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
 */

/** Executions of a block before it is compiled. */
export const COMPILE_AFTER = 16;

/** A compiled block: runs the whole block, returns the number of instructions executed. */
export type CompiledBlock = () => number;

interface Gen {
  /** JS statements. */
  code: string;
  /** Flags written with the full lazy record (so an earlier writer is dead), 0 if none. */
  kills: number;
  /** For fusion: the kind of flag record and the temporaries holding it. */
  rec?: { op: 'sub' | 'logic' | 'add' };
}

const FULL = ARITH;

function ea(i: Instr): string {
  switch (i.eaKind) {
    case 1: return `(R[${i.base}] + ${i.disp}) | 0`;
    case 2: return `(R[${i.base}] + (R[${i.index}] << ${i.scale}) + ${i.disp}) | 0`;
    case 3: return `((R[${i.index}] << ${i.scale}) + ${i.disp}) | 0`;
    default: return `${i.disp}`;
  }
}

function load32(c: EmuCpu, i: Instr, dst: string): string {
  return `a = ${ea(i)}; if ((a - 4096) >>> 0 > ${c.rmax4}) c.memFault(a, 4, 'read'); ${dst} = (a & 3) === 0 ? M[a >> 2] : DV.getInt32(a, true);`;
}

function store32(c: EmuCpu, i: Instr, val: string): string {
  return `a = ${ea(i)}; if ((a - 8192) >>> 0 > ${c.wmax4}) c.memFault(a, 4, 'write'); if (CP[a >>> 12] !== 0) c.codeWrite(a, 4); if ((a & 3) === 0) M[a >> 2] = ${val}; else DV.setInt32(a, ${val}, true);`;
}

function setFlags(op: 'add' | 'sub' | 'logic', live: boolean): string {
  if (!live) return '';
  if (op === 'logic') return 'c.lazy = 2261; c.lop = 2; c.lr = fr; c.lsz = 4;';
  return `c.lazy = 2261; c.lop = ${op === 'add' ? 0 : 1}; c.la = fa; c.lb = fb; c.lr = fr; c.lsz = 4; c.lcin = 0;`;
}

/** Inline code for one instruction, or null to call its handler. `flagsLive`: its flags may be read later. */
function genInstr(c: EmuCpu, i: Instr, flagsLive: boolean): Gen | null {
  const spec = i.spec;
  if (spec === null || i.opsize !== 4 || i.lock) return null;
  const op = i.opcode;
  const f = nameOf(i.exec);
  switch (f) {
    case 'mov32rr': return { code: `R[${i.rm}] = R[${i.reg}];`, kills: 0 };
    case 'mov32rr2': return { code: `R[${i.reg}] = R[${i.rm}];`, kills: 0 };
    case 'mov32ri': return { code: `R[${i.rm}] = ${i.imm | 0};`, kills: 0 };
    case 'mov32load': case 'mov32loadBD': return { code: load32(c, i, `R[${i.reg}]`), kills: 0 };
    case 'mov32store': case 'mov32storeBD': return { code: store32(c, i, `R[${i.reg}]`), kills: 0 };
    case 'mov32mi': return { code: store32(c, i, `${i.imm | 0}`), kills: 0 };
    case 'lea32': return { code: `R[${i.reg}] = ${ea(i)};`, kills: 0 };
    case 'movzx8':
      if (i.mem) return { code: `a = ${ea(i)}; if ((a - 4096) >>> 0 > ${c.rmax1}) c.memFault(a, 1, 'read'); R[${i.reg}] = U8[a];`, kills: 0 };
      return { code: `R[${i.reg}] = R8[${((i.rm & 3) << 2) | (i.rm >> 2)}];`, kills: 0 };
    case 'push32r':
      return { code: `a = (R[4] - 4) | 0; if ((a - 8192) >>> 0 > ${c.wmax4}) c.memFault(a, 4, 'write'); if (CP[a >>> 12] !== 0) c.codeWrite(a, 4); if ((a & 3) === 0) M[a >> 2] = R[${i.reg}]; else DV.setInt32(a, R[${i.reg}], true); R[4] = a;`, kills: 0 };
    case 'pop32r':
      return { code: `a = R[4]; if ((a - 4096) >>> 0 > ${c.rmax4}) c.memFault(a, 4, 'read'); v = (a & 3) === 0 ? M[a >> 2] : DV.getInt32(a, true); R[4] = a + 4; R[${i.reg}] = v;`, kills: 0 };
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
    else if (form === 'rm') { pre = load32(c, i, 'v'); A = `R[${i.reg}]`; B = 'v'; dstReg = i.reg; }
    else if (form === 'mr') { pre = load32(c, i, 'v'); A = 'v'; B = `R[${i.reg}]`; dstReg = -1; }
    else { pre = load32(c, i, 'v'); A = 'v'; B = `${i.imm | 0}`; dstReg = -1; }
    const expr = name === 'add' ? 'fa + fb' : name === 'sub' || name === 'cmp' ? 'fa - fb' : name === 'and' || name === 'test' ? 'fa & fb' : name === 'or' ? 'fa | fb' : 'fa ^ fb';
    const kind: 'add' | 'sub' | 'logic' = name === 'add' ? 'add' : name === 'sub' || name === 'cmp' ? 'sub' : 'logic';
    const writes = name !== 'cmp' && name !== 'test';
    if (writes && dstReg < 0) return null;
    const code = `${pre} fa = ${A}; fb = ${B}; fr = (${expr}) | 0; ${writes ? `R[${dstReg}] = fr;` : ''} ${setFlags(kind, flagsLive)}`;
    return { code, kills: FULL, rec: { op: kind } };
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
  if ((f === 'incdec') && !i.mem && !flagsLive) {
    return { kills: 0, code: `R[${i.rm}] = (R[${i.rm}] ${i.sub === 0 ? '+' : '-'} 1) | 0;` };
  }
  if (f === 'imul32rr') {
    return { kills: 0, code: flagsLive ? `H[${i.idx}](c, I[${i.idx}]);` : `R[${i.reg}] = Math.imul(R[${i.rm}], R[${i.reg}]);` };
  }
  return null;
}

/** Condition test on fused locals, or null when only `c.cond` can answer. */
function fusedCond(op: 'add' | 'sub' | 'logic', cc: number): string | null {
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
 * Compile `b` for `c`. Returns null when nothing in the block benefits (then the interpreter
 * keeps running it).
 */
export function compileBlock(c: EmuCpu, b: Block): CompiledBlock | null {
  const ins = b.instrs;
  const n = ins.length;
  // Backward liveness of the arithmetic flags; everything is live at the block end.
  const live: boolean[] = new Array(n).fill(true);
  const gens: (Gen | null)[] = new Array(n).fill(null);
  let liveAfter = ARITH;
  for (let k = n - 1; k >= 0; k--) {
    const i = ins[k];
    const isLive = (liveAfter & ARITH) !== 0;
    let g = genInstr(c, i, isLive);
    if (g === null && i.term) g = null;
    gens[k] = g;
    live[k] = isLive;
    const kills = g ? g.kills : 0;
    liveAfter = (liveAfter & ~kills) | flagsRead(i, g !== null || isJcc(i));
  }
  // Re-generate with the final liveness (a dead writer needs no lazy record).
  let inlined = 0;
  const body: string[] = [];
  let lastRec: { op: 'add' | 'sub' | 'logic' } | null = null;
  for (let k = 0; k < n; k++) {
    const i = ins[k];
    const g = gens[k];
    if (isJcc(i) && k === n - 1) {
      const cond = lastRec ? fusedCond(lastRec.op, i.sub) : null;
      body.push(`if (${cond ?? `c.cond(${i.sub})`}) c.eip = ${i.imm};`);
      inlined++;
      continue;
    }
    if (i.term && nameOf(i.exec) === 'jmpRel') {
      body.push(`c.eip = ${i.imm};`);
      inlined++;
      continue;
    }
    if (g !== null) {
      body.push(`k = ${k}; ${g.code}`);
      if (g.code.includes('c.codeWrite')) body.push(`if (c.stop !== 0) return ${k + 1};`);
      inlined++;
      if (g.rec) lastRec = g.rec;
      // Any other flag writer ends the fusable record (found by the differential tester: an
      // inlined imul, which calls its handler, left the previous `or` record for jae to fuse on).
      else if (g.kills !== 0 || (i.spec?.flagsOut ?? 0) !== 0) lastRec = null;
    } else {
      body.push(`k = ${k}; H[${k}](c, I[${k}]); if (c.stop !== 0) return ${k + 1};`);
      if ((i.spec?.flagsOut ?? ARITH) !== 0) lastRec = null;
    }
  }
  if (inlined === 0) return null;
  const src = `return function block_${b.addr.toString(16)}() {\n let k = 0, a = 0, v = 0, fa = 0, fb = 0, fr = 0;\n try {\n${body.join('\n')}\n } catch (e) { c.fk = k; throw e; }\n return ${n};\n};`;
  const handlers: Handler[] = ins.map((i) => i.exec);
  const factory = new Function('c', 'R', 'R8', 'M', 'U8', 'DV', 'CP', 'I', 'H', src) as (...args: unknown[]) => CompiledBlock;
  return factory(c, c.regs, c.r8, c.m32, c.u8, c.dv, c.codePages, ins, handlers);
}

function isJcc(i: Instr): boolean {
  return i.exec === C.jcc;
}
