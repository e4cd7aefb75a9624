/**
 * Table coverage: every instruction-table entry must be decoded and executed by at least one
 * test. The coverage is measured, not declared: the test re-runs the oracle batches, the
 * directed sequences and the fault snippets in EmuCpu and collects the table entries of every
 * decoded instruction.
 */
import { describe, expect, it } from 'vitest';
import { TABLE, type EmuCpu } from '../../src/cpu/emu/index.js';
import type { OpSpec } from '../../src/cpu/emu/instr.js';
import { controlCases, miscCases, x87Cases } from './directed-cases.js';
import { DEPRECATED_CASES, EMU_ONLY_SNIPPETS } from './fault-cases.js';
import { Rng, casesFor, oracleTestable } from './gen.js';
import { runCasesInEmu } from './harness.js';
import { assemble, cpuWith, haveToolchain } from './helpers.js';
import { ORACLE_GROUPS, casesPerEntry, groupSeed } from './oracle-groups.js';

function collect(cpu: EmuCpu, into: Set<OpSpec>): void {
  for (const b of cpu.cache.blocks()) for (const i of b.instrs) if (i.spec) into.add(i.spec);
}

describe.skipIf(!haveToolchain())('instruction table coverage', () => {
  it('every table entry is exercised by some test', () => {
    const seen = new Set<OpSpec>();
    for (const [name, specs] of ORACLE_GROUPS) {
      const rng = new Rng(groupSeed(name, specs));
      const per = casesPerEntry(name);
      collect(runCasesInEmu(specs.flatMap((s) => casesFor(s, rng, per))), seen);
    }
    collect(runCasesInEmu(x87Cases()), seen);
    collect(runCasesInEmu(controlCases()), seen);
    collect(runCasesInEmu(miscCases()), seen);
    for (const [, src] of [...DEPRECATED_CASES, ...EMU_ONLY_SNIPPETS]) {
      const { cpu } = cpuWith(assemble(`${src}\nhlt`));
      for (let k = 0; k < 20 && cpu.run(10_000).kind === 'io-out'; k++);
      collect(cpu, seen);
    }
    const missing = TABLE.filter((s) => !seen.has(s)).map((s) => `${s.mnemonic} ${s.pfx ? s.pfx.toString(16) + ' ' : ''}${s.op.toString(16)}${s.ext >= 0 ? '/' + s.ext : ''}${s.form !== 'any' ? ' ' + s.form : ''}${s.rmExact >= 0 ? ' rm=' + s.rmExact : ''}`);
    expect(missing, `${missing.length} of ${TABLE.length} entries have no test`).toEqual([]);
    expect(TABLE.filter(oracleTestable).length).toBeGreaterThan(400);
  });
});
