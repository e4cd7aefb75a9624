/**
 * Every divergence the differential fuzzer (`pnpm fuzz:cpu`) found is kept as a JSON record in
 * regressions/ (case, compared-flag mask, the reference's final state); each is replayed on
 * the emulator (interpreter and block compiler) and must now match.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadRegressions, replayRegression } from '../../src/cpu/difftest/index.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'regressions');
const regs = loadRegressions(dir);

describe('difftest regressions', () => {
  it(`regressions/ holds ${regs.length} recorded divergence(s)`, () => {
    if (!regs.length) console.log('difftest: no recorded divergences in regressions/ (the CS-override one is a directed test in difftest.test.ts)');
    expect(regs.every((r) => r.reg.case && r.reg.expected)).toBe(true);
  });
  for (const { file, reg } of regs) {
    it(`${file}: ${reg.steps.join('; ')}`, () => {
      for (const r of replayRegression(reg)) expect(r.diffs, r.mode).toEqual([]);
    });
  }
});
