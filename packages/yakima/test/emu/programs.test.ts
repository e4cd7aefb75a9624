import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { buildGuest, haveToolchain, runGuest, runNative } from './helpers.js';

const SOURCES = ['crt0.S', 'rt.c', 'sha256.c', 'programs.c'];

describe.skipIf(!haveToolchain())('whole gcc-compiled programs in EmuCpu', () => {
  const engines: [string, number | undefined][] = [['default tiering', undefined], ['interpreter only', 0], ['all blocks compiled', 1]];
  for (const opt of ['-O2', '-O0', '-Os']) for (const [engine, compileAfter] of engines) {
    it(`programs.c at ${opt} (${engine}) matches known answers and the host CPU`, () => {
      const img = buildGuest(SOURCES, [opt]);
      const r = runGuest(img, { compileAfter });
      expect(r.exit).toEqual({ kind: 'halt' });
      expect(r.cpu.getRegs().gpr[3]).toBe(42);
      const lines = r.console.split('\n');
      expect(lines[0]).toBe('sha256(abc)=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
      const big = Buffer.alloc(1000);
      for (let i = 0; i < 1000; i++) big[i] = (i * 7 + 3) & 0xff;
      expect(lines[1]).toBe('sha256(big)=' + createHash('sha256').update(big).digest('hex'));
      expect(lines[3]).toMatch(/^20!=2432902008176640000 20!\/7=347557429739520000 mod=/);
      // The host CPU runs the same program (natively, with a Linux write syscall for output).
      const native = runNative(SOURCES, [opt]);
      expect(native.status).toBe(42);
      expect(r.console).toBe(native.stdout.toString('latin1'));
    });
  }

  for (const opt of ['-O2', '-O3', '-Os']) {
    it(`vector.c (vectorized integer/float loops, conversions) at ${opt} matches the host CPU`, () => {
      const sources = ['crt0.S', 'rt.c', 'vector.c'];
      const r = runGuest(buildGuest(sources, [opt]));
      expect(r.exit).toEqual({ kind: 'halt' });
      const native = runNative(sources, [opt]);
      expect(native.status).toBe(7);
      expect(r.console).toBe(native.stdout.toString('latin1'));
      expect(r.console.split('\n').length).toBeGreaterThan(15);
    });
  }
});
