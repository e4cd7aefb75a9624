/**
 * Per-instruction tests against the host CPU: every 'oracle'/'sse' entry of the instruction
 * table is encoded from its table fields with seeded random edge-case operands, run natively
 * and in EmuCpu, and the results compared (flags the SDM leaves undefined are masked).
 */
import { describe, expect, it } from 'vitest';
import { Rng, casesFor } from './gen.js';
import { runOracle, type OracleCase } from './harness.js';
import { haveToolchain } from './helpers.js';
import { ORACLE_GROUPS, casesPerEntry, groupSeed } from './oracle-groups.js';

describe.skipIf(!haveToolchain())('instruction table vs. the host CPU', () => {
  for (const [name, specs] of ORACLE_GROUPS) {
    it(`${name}: ${specs.length} entries with random edge-case operands`, () => {
      const rng = new Rng(groupSeed(name, specs));
      const cases: OracleCase[] = [];
      const per = casesPerEntry(name);
      for (const s of specs) cases.push(...casesFor(s, rng, per));
      const problems = runOracle(cases);
      expect(problems.slice(0, 12).join('\n'), `${problems.length} mismatching cases of ${cases.length}`).toBe('');
    });
  }
});
