/** How the table-driven oracle tests split the instruction table into batches. */
import { TABLE } from '../../src/cpu/emu/index.js';
import type { OpSpec } from '../../src/cpu/emu/instr.js';
import { oracleTestable } from './gen.js';

function group(s: OpSpec): string {
  if (s.test === 'sse') return 'sse';
  const op = s.op;
  if (op === 0x27 || op === 0x2f || op === 0x37 || op === 0x3f || op === 0xd4 || op === 0xd5) return 'bcd';
  if (op < 0x40 || (op >= 0x80 && op <= 0x83) || op === 0x84 || op === 0x85 || op === 0xa8 || op === 0xa9) return 'alu';
  if ((op >= 0xc0 && op <= 0xc1) || (op >= 0xd0 && op <= 0xd3) || (op >= 0x0fa4 && op <= 0x0fad)) return 'shift';
  if (op === 0xf6 || op === 0xf7 || op === 0x0faf || op === 0x69 || op === 0x6b || op === 0xfe || op === 0xff || (op >= 0x40 && op < 0x50)) return 'muldiv-incdec';
  if ((op >= 0x0f40 && op < 0x0f50) || (op >= 0x0f90 && op < 0x0fa0) || (op >= 0x70 && op < 0x80) || (op >= 0x0f80 && op < 0x0f90) || (op >= 0xe0 && op <= 0xe3)) return 'conditions';
  if (op >= 0xa4 && op <= 0xaf && op !== 0xa8 && op !== 0xa9) return 'strings';
  if ((op >= 0x0fa3 && op <= 0x0fbd) || op === 0x0fc8 || (op >= 0x0fb0 && op <= 0x0fc7)) return 'bits-atomics';
  return 'data';
}

/** Oracle-testable entries by batch name. */
export const ORACLE_GROUPS = new Map<string, OpSpec[]>();
for (const s of TABLE.filter(oracleTestable)) {
  const g = group(s);
  if (!ORACLE_GROUPS.has(g)) ORACLE_GROUPS.set(g, []);
  ORACLE_GROUPS.get(g)!.push(s);
}

/** The PRNG seed of a batch. */
export function groupSeed(name: string, specs: OpSpec[]): number {
  return 0x5eed0000 + name.length * 7919 + specs.length;
}

/** Random cases per table entry in a batch (more where few inputs decide many outcomes). */
export function casesPerEntry(name: string): number {
  return name === 'sse' ? 24 : name === 'bcd' ? 96 : 16;
}
