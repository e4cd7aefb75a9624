/**
 * The process backend's x87/SSE state across tenders (swap-in hands a saved state to a new
 * tender through the control page): a guest starts from the architectural initial state, a
 * saved state is loaded exactly, and a hostile one (reserved MXCSR bits, garbage everywhere)
 * never kills the restore: it only changes that VM's own registers.
 */
import { LAYOUT } from '@denali/image-format';
import { describe, expect, it } from 'vitest';
import { allocateSharedGuestMemory, probeProcessBackend, ProcessVcpu } from '../../src/cpu/process/index.js';

const probe = probeProcessBackend();
if (!probe.usable) console.log(`process backend tests skipped: ${probe.reason}`);

const BASE = LAYOUT.IMAGE_BASE;
const FX_AT = 0x180000; // 16-byte aligned, inside the 2 MiB of memory
const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
/** fxsave [FX_AT]; hlt */
const FXSAVE_HLT = [0x0f, 0xae, 0x05, ...le32(FX_AT), 0xf4];

/** Run FXSAVE_HLT in a new tender, with `state` restored first (if given); the guest's FXSAVE image. */
function guestFxsave(state?: Uint8Array): { exit: string; fx: DataView } {
  const mem = allocateSharedGuestMemory(LAYOUT.MIN_MEMORY);
  mem.u8.set(FXSAVE_HLT, BASE);
  const vcpu = new ProcessVcpu(mem);
  try {
    vcpu.setRegs({ gpr: [0, 0, 0, 0, LAYOUT.MIN_MEMORY, 0, 0, 0], eip: BASE, eflags: 0x202 });
    if (state) {
      const saved = vcpu.saveState();
      saved.bytes.set(state, 64);
      new DataView(saved.bytes.buffer).setUint32(48, 1, true); // the x87/SSE area is valid
      vcpu.restoreState(saved);
    }
    const exit = vcpu.run(0);
    return { exit: exit.kind === 'fault' ? `${exit.cause}: ${exit.detail}` : exit.kind, fx: new DataView(mem.u8.slice(FX_AT, FX_AT + 512).buffer) };
  } finally {
    vcpu.destroy();
  }
}

describe.skipIf(!probe.usable)('x87/SSE state on the process backend', () => {
  it('a guest starts from FNINIT state and MXCSR 0x1f80, XMM registers zero', () => {
    const { exit, fx } = guestFxsave();
    expect(exit).toBe('halt');
    expect(fx.getUint16(0, true)).toBe(0x037f); // FCW
    expect(fx.getUint16(2, true)).toBe(0); // FSW
    expect(fx.getUint8(4)).toBe(0); // abridged FTW: all empty
    expect(fx.getUint32(24, true)).toBe(0x1f80); // MXCSR
    for (let o = 32; o < 288; o += 4) expect(fx.getUint32(o, true), `byte ${o}`).toBe(0); // ST0-7, XMM0-7
  });

  it('a restored state is what the guest sees', () => {
    const state = new Uint8Array(512);
    const dv = new DataView(state.buffer);
    dv.setUint16(0, 0x027f, true); // FCW: 53-bit precision
    dv.setUint32(24, 0x1fc0, true); // MXCSR: DAZ
    for (let i = 160; i < 288; i++) state[i] = (i * 37) & 0xff; // XMM0-7
    const { exit, fx } = guestFxsave(state);
    expect(exit).toBe('halt');
    expect(fx.getUint16(0, true)).toBe(0x027f);
    expect(fx.getUint32(24, true)).toBe(0x1fc0);
    expect(Array.from(new Uint8Array(fx.buffer, 160, 128))).toEqual(Array.from(state.subarray(160, 288)));
  });

  it('a hostile state (reserved MXCSR bits, garbage) is loaded with those bits cleared and never kills the restore', () => {
    const state = new Uint8Array(512).map((_, i) => (i * 113 + 7) & 0xff);
    new DataView(state.buffer).setUint32(24, 0xffffffff, true);
    const { exit, fx } = guestFxsave(state);
    expect(exit).toBe('halt');
    const mxcsr = fx.getUint32(24, true);
    const mask = fx.getUint32(28, true) || 0xffbf; // MXCSR_MASK as this processor reports it
    expect(mxcsr).toBe(mask >>> 0); // every supported bit as given, every reserved one cleared
    expect(mxcsr >>> 16).toBe(0);
    expect(Array.from(new Uint8Array(fx.buffer, 160, 128))).toEqual(Array.from(state.subarray(160, 288)));
  });
});
