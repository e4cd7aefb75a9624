/**
 * The tender spins on a hypercall's reply only while Yakima says no other VM wants a CPU
 * (control page REPLY_SPIN, written with every resume). Spinning saves a futex wake-up per
 * exit for a VM alone; with several VMs on 2 cores the spinning tenders took the cores that
 * Yakima and the other VMs needed (`pnpm bench:cpu --only 2`: ~110 µs per VM switch at 4-32
 * VMs, ~45-60 µs when they sleep). Checked by the tender's own count of spins, not by timing.
 */
import { HYPERCALL, HYPERCALL_PORT_BASE, LAYOUT } from '@denali/image-format';
import { describe, expect, it } from 'vitest';
import { allocateSharedGuestMemory, defaultProcessThreads, probeProcessBackend, ProcessVcpu } from '../../src/cpu/process/index.js';

const probe = probeProcessBackend();
if (!probe.usable) console.log(`process backend tests skipped: ${probe.reason}`);

const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

/** A VM looping on `out` to the IDLE port (each one an exit the test answers by resuming). */
function outLoop(contended: boolean): ProcessVcpu {
  const mem = allocateSharedGuestMemory(LAYOUT.MIN_MEMORY);
  // L: mov edx, IDLE port; out dx, eax; jmp L
  mem.u8.set([0xba, ...le32(HYPERCALL_PORT_BASE + HYPERCALL.IDLE), 0xef, 0xeb, 0xf8], LAYOUT.IMAGE_BASE);
  const vcpu = new ProcessVcpu(mem, { quantumMicros: 100_000, contended: () => contended });
  vcpu.setRegs({ gpr: [0, 0, 0, 0, LAYOUT.MIN_MEMORY, 0, 0, 0], eip: LAYOUT.IMAGE_BASE, eflags: 0x202 });
  return vcpu;
}

describe.skipIf(!probe.usable)('the tender on a reply', () => {
  it.each([
    [false, 'spins on every reply while no other VM wants a CPU'],
    [true, 'sleeps at once, never spinning, while other VMs want a CPU'],
  ])('contended %s: %s', (contended) => {
    const vcpu = outLoop(contended);
    try {
      const exits = 20;
      for (let i = 0; i < exits; i++) {
        const e = vcpu.run(0);
        expect(e.kind).toBe('io-out');
        if (e.kind === 'io-out') expect(e.port).toBe(HYPERCALL_PORT_BASE + HYPERCALL.IDLE);
      }
      // Each resume allows or forbids the spin on the exit that follows it (the start-up exit,
      // before any resume, is not counted).
      expect(vcpu.tenderReplySpins).toBe(contended ? 0 : exits);
    } finally {
      vcpu.destroy();
    }
  });
});

describe('process-backend VMs in flight at once', () => {
  it('default to four per host core, at most 16, but at least one per core', () => {
    expect([1, 2, 4, 8, 16, 64].map((cores) => defaultProcessThreads(cores))).toEqual([4, 8, 16, 16, 16, 64]);
  });
});
