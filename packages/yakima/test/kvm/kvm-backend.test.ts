import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LAYOUT } from '@denali/image-format';
import { dispatchHypercall } from '../../src/control/hypercalls.js';
import { Vm } from '../../src/control/vm.js';
import { MemoryConsoleSink } from '../../src/devices/console-sink.js';
import { KvmBackend } from '../../src/cpu/kvm/backend.js';
import type { KvmVcpu } from '../../src/cpu/kvm/kvm-vcpu.js';
import { Reg } from '../../src/cpu/vcpu.js';
import { bootOnKvm, helloCode, kvmUsable, movDx, OUT_DX_EAX, rawImage } from './helpers.js';

describe.skipIf(!kvmUsable)('KVM backend: vCPUs on worker threads', () => {
  const backend = kvmUsable ? new KvmBackend({ threads: 2 }) : undefined;
  const vcpus: KvmVcpu[] = [];
  beforeAll(async () => {
    await backend?.start();
  });
  afterAll(async () => {
    vcpus.forEach((v) => v.destroy());
    await backend?.close();
  });

  function boot(name: string, code: number[]): { vcpu: KvmVcpu; vm: Vm; sink: MemoryConsoleSink } {
    const image = rawImage(name, code);
    const b = bootOnKvm(image);
    const vcpu = backend!.createVcpu(b.memory);
    vcpu.setRegs(b.regs);
    vcpus.push(vcpu);
    const sink = new MemoryConsoleSink();
    return { vcpu, vm: new Vm(vcpus.length, name, image.manifest, b, vcpu, sink, () => {}), sink };
  }

  it('runs a VM to completion with the shared hypercall dispatch, off the main thread', async () => {
    const { vcpu, vm, sink } = boot('hello', helloCode('hi from a worker\n'));
    const exits: string[] = [];
    for (;;) {
      const e = await vcpu.runAsync(50_000);
      exits.push(e.kind);
      if (e.kind === 'io-out') {
        expect(dispatchHypercall(vm, e.port, e.value, e.size)).toEqual({ action: 'continue' });
        continue;
      }
      if (e.kind !== 'quantum') break;
    }
    expect(exits).toEqual(['io-out', 'halt']);
    expect(sink.text('hello')).toBe('hi from a worker\n');
    expect(vcpu.getRegs().eip).toBe(LAYOUT.IMAGE_BASE + 11);
  });

  it('prints the null-hypercall round trip through a worker', async () => {
    // mov dx, 0x5ff; l: out dx, eax; jmp l
    const { vcpu } = boot('null', [...movDx(0x5ff), OUT_DX_EAX, 0xeb, 0xfd]);
    const hypercalls = async (n: number): Promise<void> => {
      // A loaded host may preempt the guest now and then: count io-out exits only.
      for (let done = 0; done < n; ) {
        const e = await vcpu.runAsync(50_000);
        expect(['io-out', 'quantum']).toContain(e.kind);
        if (e.kind === 'io-out') done++;
      }
    };
    await hypercalls(50);
    const n = 1000;
    const t = performance.now();
    await hypercalls(n);
    const us = ((performance.now() - t) * 1000) / n;
    console.log(`KVM null hypercall round trip via worker: ${us.toFixed(1)} µs (${Math.round(1e6 / us)} exits/s)`);
  });

  it('two spinning VMs make progress concurrently and are preempted at their quanta', async () => {
    // l: inc eax; jmp l
    const a = boot('spin-a', [0x40, 0xeb, 0xfd]).vcpu;
    const b = boot('spin-b', [0x40, 0xeb, 0xfd]).vcpu;
    const t0 = performance.now();
    const spin = async (v: KvmVcpu): Promise<number[]> => {
      const took: number[] = [];
      // At least 400 ms and 5 quanta each (a loaded host may stall a worker for a while).
      while ((performance.now() - t0 < 400 || took.length < 5) && performance.now() - t0 < 20_000) {
        const t = performance.now();
        expect(await v.runAsync(5_000)).toEqual({ kind: 'quantum' });
        took.push(performance.now() - t);
      }
      return took;
    };
    const [ta, tb] = await Promise.all([spin(a), spin(b)]);
    const wall = performance.now() - t0;
    const guest = (a.guestMicros + b.guestMicros) / 1000;
    console.log(
      `KVM two spinners: ${ta.length} + ${tb.length} quanta of 5 ms in ${wall.toFixed(0)} ms wall, ${guest.toFixed(0)} ms of guest time; ` +
        `eax ${a.getRegs().gpr[Reg.EAX]} / ${b.getRegs().gpr[Reg.EAX]}; slowest quantum ${Math.max(...ta, ...tb).toFixed(1)} ms`,
    );
    expect(ta.length).toBeGreaterThanOrEqual(5);
    expect(tb.length).toBeGreaterThanOrEqual(5);
    expect(a.getRegs().gpr[Reg.EAX]).toBeGreaterThan(0);
    expect(b.getRegs().gpr[Reg.EAX]).toBeGreaterThan(0);
    // Concurrency: more guest time than wall time means both ran at once.
    console.log(`KVM two spinners: guest time / wall time = ${(guest / wall).toFixed(2)}`);
  });

  it('idle workers cost no CPU', async () => {
    const before = process.cpuUsage();
    const t = performance.now();
    await new Promise((r) => setTimeout(r, 300));
    const used = process.cpuUsage(before);
    const cpuMs = (used.user + used.system) / 1000;
    console.log(`KVM idle backend: ${cpuMs.toFixed(1)} ms CPU in ${(performance.now() - t).toFixed(0)} ms`);
    expect(cpuMs).toBeLessThan(60);
  });
});
