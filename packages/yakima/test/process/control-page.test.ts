import { describe, expect, it } from 'vitest';
import { CTL, readPostedExit } from '../../src/cpu/process/control-page.js';
import { Rng } from '../../src/cpu/difftest/rng.js';

const CAUSES = ['divide-error', 'invalid-opcode', 'deprecated-instruction', 'memory', 'general-protection', 'triple-fault', 'bad-hypercall', 'unknown-exit'];

describe('control page parsing treats the page as hostile input', () => {
  it('turns 5,000 random pages into valid exits (bounded fields, known causes) and never throws', () => {
    const rng = new Rng(0xc0ffee);
    const next = (): number => rng.u32();
    const page = new DataView(new ArrayBuffer(CTL.BYTES));
    for (let n = 0; n < 5_000; n++) {
      for (let i = 0; i < 0x100; i += 4) page.setUint32(i, next() >>> 0, true);
      // Half the time a plausible kind, so every branch is exercised with garbage fields.
      if (n % 2 === 0) page.setUint32(CTL.KIND, 1 + (n % 5), true);
      const p = readPostedExit(page, () => new Uint8Array(0));
      expect(p.regs.gpr.every((r) => Number.isInteger(r) && r >= 0 && r <= 0xffffffff)).toBe(true);
      const e = p.exit;
      if (!e) continue;
      if (e.kind === 'io-out') {
        expect([1, 2, 4]).toContain(e.size);
        expect(e.port).toBeLessThanOrEqual(0xffff);
        expect(e.value).toBeLessThan(2 ** (8 * e.size));
      } else if (e.kind === 'fault') {
        expect(CAUSES).toContain(e.cause);
        expect(e.detail.length).toBeLessThan(200);
      }
    }
  });
});
