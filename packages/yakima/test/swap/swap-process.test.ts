/**
 * Swapping on the process backend: the tender process goes away at swap-out and a new one
 * takes over at swap-in, so the x87/SSE state must travel through the swap record into the
 * new process. Checked inside the guest: two VMs of one image run the same code; one is swapped
 * out and in between two steps, and what each guest sees afterwards (FXSAVE image, EFLAGS,
 * registers, memory) must be identical to its never-swapped twin's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HYPERCALL, HYPERCALL_PORT_BASE, IDLE_FOREVER, LAYOUT, VREG_RW } from '@denali/image-format';
import { Yakima } from '../../src/control/yakima.js';
import { probeProcessBackend } from '../../src/cpu/process/probe.js';
import { ProcessVcpu } from '../../src/cpu/process/process-vcpu.js';
import { FPU_BODY, INTEGER_BODY, le32, rawImage, until } from './helpers.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const IDLE_ARGS_AT = 0x100800;
const FXSAVE_AT = 0x301000;
const FLAGS_AT = 0x302000;
const idle = [0xb8, ...le32(IDLE_ARGS_AT), 0x66, 0xba, ...le32(HYPERCALL_PORT_BASE + HYPERCALL.IDLE).slice(0, 2), 0xef];

/** Integer and x87/SSE state, IDLE; once woken: FXSAVE and PUSHFD to memory, more x87/SSE work, take the interrupt, IDLE again, `hlt`. */
function twinImage() {
  const code = [
    ...INTEGER_BODY,
    ...FPU_BODY,
    ...idle,
    0x0f, 0xae, 0x05, ...le32(FXSAVE_AT), // fxsave [FXSAVE_AT]
    0x9c, // pushfd
    0x8f, 0x05, ...le32(FLAGS_AT), // pop dword [FLAGS_AT]
    0xd9, 0xe8, // fld1: the restored x87 stack must take one more
    0xde, 0xc1, // faddp
    0x66, 0x0f, 0xd4, 0xc3, // paddq xmm0, xmm3: the restored XMM registers must add up
    0xf3, 0x0f, 0x7f, 0x05, ...le32(FXSAVE_AT + 0x200), // movdqu [FXSAVE_AT + 0x200], xmm0
    0xdd, 0x1d, ...le32(FXSAVE_AT + 0x210), // fstp qword [FXSAVE_AT + 0x210]
    0x31, 0xc9, // xor ecx, ecx
    0x87, 0x0d, ...le32(LAYOUT.VREG_RW_BASE + VREG_RW.PENDING), // xchg [PENDING], ecx: take the console interrupt
    ...idle,
    0xf4,
  ];
  const out = new Array<number>(0x1000).fill(0);
  out.splice(0, code.length, ...code);
  out.splice(IDLE_ARGS_AT - 0x100000, 8, ...le32(IDLE_FOREVER), ...le32(IDLE_FOREVER));
  return rawImage('twin', out, 4 << 20);
}

const probe = probeProcessBackend();

describe('swapping on the process backend', () => {
  it.skipIf(!probe.usable)(`carries x87/SSE state, flags, registers and memory into a new tender process${probe.usable ? '' : ` (skipped: ${probe.reason})`}`, async () => {
    const swapDir = mkdtempSync(join(tmpdir(), 'denali-swap-proc-'));
    dirs.push(swapDir);
    const y = new Yakima({ backend: 'process', swapDir });
    const img = twinImage();
    const swapped = y.addVm(img);
    const twin = y.addVm(img);
    const done = y.run();
    try {
      await until(() => swapped.state === 'idle' && twin.state === 'idle', 20_000, 'both VMs to idle');
      const oldPid = (swapped.vcpu as ProcessVcpu).pid;
      await y.swapOut(swapped);
      expect(swapped.state).toBe('swapped');
      expect(swapped.residentBytes()).toBeLessThanOrEqual(4096);
      // The tender is gone: no process holds the VM's memory or state any more.
      await until(() => {
        try {
          process.kill(oldPid, 0);
          return false;
        } catch {
          return true;
        }
      }, 5_000, 'the swapped-out tender to end');
      await y.swapIn(swapped);
      const newPid = (swapped.vcpu as ProcessVcpu).pid;
      expect(newPid).not.toBe(oldPid);
      for (const vm of [swapped, twin]) vm.console.pushInput(Uint8Array.of(0x0a));
      await until(() => (swapped.state === 'idle' && twin.state === 'idle' && swapped.stats.swapIns === 1) || swapped.finished || twin.finished, 20_000, 'both VMs to idle again');
      expect([swapped.state, twin.state, JSON.stringify(swapped.fault ?? ''), JSON.stringify(twin.fault ?? '')]).toEqual(['idle', 'idle', '""', '""']);
      const page = (vm: typeof twin, at: number): Buffer => Buffer.from(vm.memory.u8.subarray(at, at + 0x1000));
      // The guests saw identical state after the resume: FXSAVE image (x87 stack, XMM0-7, MXCSR), EFLAGS, results.
      const diff = (a: Buffer, b: Buffer): string[] => [...a.keys()].filter((i) => a[i] !== b[i]).map((i) => `${i}: ${a[i]} vs ${b[i]}`);
      expect(diff(page(swapped, FXSAVE_AT), page(twin, FXSAVE_AT))).toEqual([]);
      expect(page(swapped, FLAGS_AT).equals(page(twin, FLAGS_AT))).toBe(true);
      expect(swapped.vcpu.getRegs()).toEqual(twin.vcpu.getRegs());
      const fx = swapped.memory.dv;
      expect(fx.getUint32(FXSAVE_AT + 160, true)).toBe(0x12345678); // XMM0 low dword
      expect(fx.getUint32(FXSAVE_AT + 24, true)).toBe(0x1f80); // MXCSR
      expect(fx.getUint8(FXSAVE_AT + 4)).toBe(0x80); // abridged FTW: ST0 (physical register 7) in use
      expect(fx.getFloat64(FXSAVE_AT + 0x210, true)).toBeCloseTo(Math.PI + 2, 12); // pi + 1 survived, + 1
      // xmm0 + xmm3: xmm3 is EBX moved to dword 3 by pshufd 0x1b.
      expect([0, 4, 8, 12].map((o) => fx.getUint32(FXSAVE_AT + 0x200 + o, true))).toEqual([0x12345678, 0, 0, 0x9abcdef0]);
      expect(fx.getUint32(FLAGS_AT, true) & 0x400).toBe(0x400); // DF (std) survived
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  });
});
