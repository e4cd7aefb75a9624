/**
 * Regression tests for "a VM hangs forever on KVM" (httpd on --backend kvm stopped answering
 * after going idle once):
 * - Yakima's worker scheduler lost the wake-up of an idle VM: `waitForWork` cleared
 *   `this.wake` in a `.finally`, i.e. one microtask after `poke()` resolved it — by then
 *   `runOnWorkers` had already started the next wait, whose wake was thrown away. Every
 *   interrupt (and Ctrl-C) then waited for that wait's timer: a minute for an idle-forever VM.
 *   This happens each time a VM comes back from the worker (goes idle) while the scheduler
 *   waits, so the first test below fails at its first round without the fix.
 * - A run the worker never answers must not hang Yakima: it faults the VM ('unknown-exit').
 * - Many short runs with odd quanta, out exits and gaps, two vCPUs on one worker: every
 *   `runAsync` must resolve promptly (the worker/timer/Atomics interplay).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { HYPERCALL, HYPERCALL_PORT_BASE, IDLE_FOREVER, IRQ, LAYOUT, VREG_RW } from '@denali/image-format';
import { Yakima } from '../../src/control/yakima.js';
import { KvmBackend } from '../../src/cpu/kvm/backend.js';
import type { KvmVcpu } from '../../src/cpu/kvm/kvm-vcpu.js';
import type { VcpuExit } from '../../src/cpu/vcpu.js';
import { bootOnKvm, HLT, kvmUsable, le32, movDx, movEax, OUT_DX_EAX, rawImage, SPIN } from './helpers.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve once `cond()` holds; reject with `what` (evaluated then) after `ms`. */
async function until(cond: () => boolean, ms: number, what: string | (() => string)): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(1);
  }
}

/** `p`, or a rejection naming `what` when it takes longer than `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not resolve within ${ms} ms`)), ms))),
  ]);
}

const PENDING = LAYOUT.VREG_RW_BASE + VREG_RW.PENDING;
const IDLE_BLOCK = LAYOUT.IMAGE_BASE + 0x100;
const COUNTER = LAYOUT.IMAGE_BASE + 0x200;

/**
 * A guest that idles forever `rounds` times, counting the wake-ups that deliver IRQ.CONSOLE:
 *   l: mov dword [PENDING], 0; IDLE(forever); test byte [PENDING], CONSOLE; jz l
 *      inc dword [COUNTER]; cmp dword [COUNTER], rounds; jb l
 *      EXIT(status = [COUNTER]); hlt
 */
function idlerCode(rounds: number): number[] {
  const head = [
    0xc7, 0x05, ...le32(PENDING), ...le32(0),
    ...movEax(IDLE_BLOCK), ...movDx(HYPERCALL_PORT_BASE + HYPERCALL.IDLE), OUT_DX_EAX,
    0xf6, 0x05, ...le32(PENDING), IRQ.CONSOLE,
  ];
  const code = [...head, 0x74, (-(head.length + 2)) & 0xff];
  code.push(0xff, 0x05, ...le32(COUNTER), 0x83, 0x3d, ...le32(COUNTER), rounds);
  code.push(0x72, (-(code.length + 2)) & 0xff);
  code.push(...movEax(COUNTER), ...movDx(HYPERCALL_PORT_BASE + HYPERCALL.EXIT), OUT_DX_EAX, HLT);
  const image = new Array<number>(0x300).fill(0);
  image.splice(0, code.length, ...code);
  image.splice(0x100, 8, ...le32(IDLE_FOREVER), ...le32(IDLE_FOREVER));
  return image;
}

describe.skipIf(!kvmUsable)('Yakima on KVM: idle VMs are woken promptly', () => {
  it('an idle-forever VM is re-entered within a second of each interrupt (no lost scheduler wake-up)', async () => {
    const rounds = 12;
    const y = new Yakima({ backend: 'kvm', kvmThreads: 1 });
    const vm = y.addVm(rawImage('idler', idlerCode(rounds)));
    const done = y.run();
    let worst = 0;
    try {
      for (let i = 0; i < rounds; i++) {
        await until(() => vm.state === 'idle' && vm.memory.readU32(COUNTER) === i, 10_000, `the VM to idle (round ${i})`);
        // Vary the gap between going idle and the interrupt (same tick, next tick, later).
        await sleep([0, 1, 15][i % 3]!);
        const t = performance.now();
        vm.raise(IRQ.CONSOLE);
        // The last wake-up ends the VM (its memory then reads as zeros).
        const woken = (): boolean => (i === rounds - 1 ? vm.finished : vm.memory.readU32(COUNTER) === i + 1);
        await until(woken, 3000, () => `the VM to be woken by IRQ.CONSOLE (round ${i}; state ${vm.state}, entries ${vm.stats.entries})`);
        worst = Math.max(worst, performance.now() - t);
      }
      await within(done, 5000, 'Yakima.run after the VM exited');
      console.log(`KVM idle/wake: ${rounds} rounds, slowest wake-up ${worst.toFixed(1)} ms`);
      expect(vm.state).toBe('exited');
      expect(vm.exitStatus).toBe(rounds);
    } finally {
      y.stop();
      await Promise.race([done, sleep(2000)]);
      await y.close();
    }
  }, 60_000);

  it('Ctrl-C (stop) is not lost while the only VM idles', async () => {
    const y = new Yakima({ backend: 'kvm', kvmThreads: 1 });
    const vm = y.addVm(rawImage('idler', idlerCode(1)));
    const done = y.run();
    try {
      await until(() => vm.state === 'idle', 10_000, 'the VM to idle');
      y.stop('test');
      await within(done, 2000, 'Yakima.run after stop()');
      expect(vm.state).toBe('stopped');
    } finally {
      await Promise.race([done, sleep(2000)]);
      await y.close();
    }
  }, 30_000);
});

describe.skipIf(!kvmUsable)('KVM backend: runAsync always resolves', () => {
  const backends: KvmBackend[] = [];
  const vcpus: KvmVcpu[] = [];
  afterAll(async () => {
    vcpus.forEach((v) => v.destroy());
    await Promise.all(backends.map((b) => b.close()));
  });

  function vcpuOn(backend: KvmBackend, code: number[]): KvmVcpu {
    const b = bootOnKvm(rawImage('t', code));
    const v = backend.createVcpu(b.memory);
    v.setRegs(b.regs);
    vcpus.push(v);
    return v;
  }

  it('many short runs with small/odd quanta, out exits and idle gaps, two vCPUs on one worker', async () => {
    const backend = new KvmBackend({ threads: 1 });
    backends.push(backend);
    await backend.start();
    // l: out 0x5ff, eax; mov ecx, 20; d: loop d; jmp l   (hypercalls between short spins)
    const body = [...movDx(0x5ff), OUT_DX_EAX, 0xb9, ...le32(20), 0xe2, 0xfe];
    const chatty = vcpuOn(backend, [...body, 0xeb, (-(body.length + 2)) & 0xff]);
    const spinner = vcpuOn(backend, SPIN);
    const quanta = [1, 2, 3, 7, 13, 29, 50, 97, 211, 333, 1000, 5];
    const counts = { 'io-out': 0, quantum: 0 } as Record<string, number>;
    let slowest = 0;
    const drive = async (v: KvmVcpu, name: string, seed: number): Promise<void> => {
      const t0 = performance.now();
      for (let i = 0; performance.now() - t0 < 1500; i++) {
        const q = quanta[(i * seed) % quanta.length]!;
        const t = performance.now();
        // Generous for a loaded host, far below "forever" (the default answer bound is 1 s + 10 × q).
        const e: VcpuExit = await within(v.runAsync(q), 5000, `${name} runAsync(${q}) #${i}`);
        slowest = Math.max(slowest, performance.now() - t);
        expect(['io-out', 'quantum']).toContain(e.kind);
        counts[e.kind] = (counts[e.kind] ?? 0) + 1;
        if (i % 7 === 3) await sleep(1); // an idle gap: the worker parks
        else if (i % 5 === 0) await new Promise((r) => setImmediate(r));
      }
    };
    await Promise.all([drive(chatty, 'chatty', 5), drive(spinner, 'spinner', 7)]);
    console.log(`KVM short runs: ${JSON.stringify(counts)}, slowest runAsync ${slowest.toFixed(1)} ms`);
    expect(counts['io-out']).toBeGreaterThan(10);
    expect(counts.quantum).toBeGreaterThan(10);
  }, 30_000);

  it('a run the worker does not answer in time faults the vCPU (unknown-exit) instead of hanging', async () => {
    // Stand-in for a worker stuck in KVM_RUN: a 1.5 s quantum of a spinning guest, with the
    // answer bound lowered to 100 ms.
    const backend = new KvmBackend({ threads: 1, answerTimeoutMs: 100 });
    backends.push(backend);
    await backend.start();
    const v = vcpuOn(backend, SPIN);
    const t = performance.now();
    const e = await within(v.runAsync(1_500_000), 1000, 'runAsync on a stuck worker');
    expect(performance.now() - t).toBeLessThan(900);
    expect(e.kind).toBe('fault');
    if (e.kind !== 'fault') return;
    expect(e.cause).toBe('unknown-exit');
    expect(e.detail).toMatch(/did not answer a run request within 100 ms/);
    // The vCPU stays faulted; destroying it must not unmap what the worker still uses.
    expect((await v.runAsync(1000)).kind).toBe('fault');
    v.destroy();
    // The backend replaces the retired worker: a new vCPU runs normally.
    const w = vcpuOn(backend, [...movDx(0x5ff), OUT_DX_EAX, HLT]);
    expect(await within(w.runAsync(1_000_000), 3000, 'runAsync on a fresh worker')).toEqual({ kind: 'io-out', port: 0x5ff, value: expect.any(Number), size: 4 });
    expect(await within(w.runAsync(1_000_000), 3000, 'runAsync on a fresh worker')).toEqual({ kind: 'halt' });
    await sleep(1600); // let the stuck KVM_RUN end while the process is alive (no crash)
  }, 30_000);
});
