/**
 * The bounded console on KVM (issue 7): a guest flooding CONSOLE_WRITE with a sink that does
 * not drain waits (its `out` is repeated once there is room) instead of growing host memory —
 * the same scheduler path as the emulator, with the vCPU on a worker thread.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Yakima } from '../../src/control/yakima.js';
import { CONSOLE_OUTPUT_LIMIT } from '../../src/devices/console.js';
import { StreamConsoleSink } from '../../src/devices/console-sink.js';
import { FLOOD_WRITE_LEN, floodImage } from '../images.js';
import { kvmUsable } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!kvmUsable)('console backpressure on KVM', () => {
  it('a flooding guest waits for a full sink and resumes when it drains', async () => {
    const out = new PassThrough({ highWaterMark: 16 * 1024 });
    const y = new Yakima({ backend: 'kvm', kvmThreads: 1, sink: new StreamConsoleSink(out, false) });
    const vm = y.addVm(floodImage('flood', (i) => (i % 64 === 63 ? 10 : 65)));
    const run = y.run();
    try {
      const t0 = performance.now();
      while (vm.stats.consoleWaits === 0 && performance.now() - t0 < 20_000) await sleep(10);
      expect(vm.stats.consoleWaits).toBeGreaterThan(0);
      expect(vm.state).toBe('idle');
      expect(out.writableLength + out.readableLength + vm.console.pendingOutput).toBeLessThanOrEqual(2 * 16 * 1024 + 2 * CONSOLE_OUTPUT_LIMIT);
      let got = 0;
      out.on('data', (d: Buffer) => (got += d.length));
      const t1 = performance.now();
      while (got < FLOOD_WRITE_LEN && performance.now() - t1 < 20_000) await sleep(10);
      expect(got).toBeGreaterThanOrEqual(FLOOD_WRITE_LEN);
      expect(vm.fault).toBeUndefined();
    } finally {
      y.stop();
      await run;
      await y.close();
    }
  }, 60_000);
});
