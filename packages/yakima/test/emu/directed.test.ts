/**
 * Directed instruction sequences checked against the host CPU with the same harness as the
 * table-driven tests: the x87 subset gcc emits, control transfers, flag-register access.
 */
import { describe, expect, it } from 'vitest';
import { controlCases, miscCases, x87Cases } from './directed-cases.js';
import { runOracle } from './harness.js';
import { haveToolchain } from './helpers.js';

describe.skipIf(!haveToolchain())('directed sequences vs. the host CPU', () => {
  it('x87 subset', () => {
    const cases = x87Cases();
    const problems = runOracle(cases);
    expect(problems.slice(0, 10).join('\n'), `${problems.length} of ${cases.length}`).toBe('');
  });

  it('x87 housekeeping, hints, nops and rarer moves', () => {
    const cases = miscCases();
    const problems = runOracle(cases);
    expect(problems.slice(0, 10).join('\n'), `${problems.length} of ${cases.length}`).toBe('');
  });

  it('control transfers and flag-register instructions', () => {
    const cases = controlCases();
    const problems = runOracle(cases);
    expect(problems.slice(0, 10).join('\n'), `${problems.length} of ${cases.length}`).toBe('');
  });
});
