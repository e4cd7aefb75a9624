import { describe, expect, it } from 'vitest';
import { HYPERCALL, HYPERCALL_PORT_BASE, IDLE_FOREVER, IRQ, LAYOUT, UPCALL_FRAME, VREG_RW } from '@denali/image-format';
import { Yakima } from '../src/control/yakima.js';
import { Reg, type VcpuExit } from '../src/cpu/vcpu.js';
import { IdleTable } from '../src/sched/idle-table.js';
import { RunQueue } from '../src/sched/run-queue.js';
import { ScriptedVcpu, tinyImage } from './scripted-vcpu.js';

const ARGS = 0x3000;
const hypercall = (n: number): VcpuExit => ({ kind: 'io-out', port: HYPERCALL_PORT_BASE + n, value: ARGS, size: 4 });

describe('IdleTable', () => {
  it('keeps positions in the items when given a position store, with the same results as the default Map', () => {
    type Item = { id: number; pos: number };
    const items: Item[] = Array.from({ length: 300 }, (_, id) => ({ id, pos: -1 }));
    const intrusive = new IdleTable<Item>({
      get: (x) => (x.pos === -1 ? undefined : x.pos),
      set: (x, i) => {
        x.pos = i;
      },
      delete: (x) => {
        x.pos = -1;
      },
    });
    const plain = new IdleTable<Item>();
    let seed = 23;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 5000; i++) {
      const x = items[Math.floor(rnd() * items.length)]!;
      const r = rnd();
      if (r < 0.25) expect(intrusive.remove(x)).toBe(plain.remove(x));
      else {
        const d = r < 0.4 ? Infinity : Math.floor(rnd() * 1000);
        intrusive.add(x, d);
        plain.add(x, d);
      }
      if (i % 499 === 0) {
        const now = Math.floor(rnd() * 300);
        expect(intrusive.expire(now).map((y) => y.id)).toEqual(plain.expire(now).map((y) => y.id));
      }
    }
    for (const x of items) {
      expect(intrusive.has(x)).toBe(plain.has(x));
      expect(intrusive.deadlineOf(x)).toBe(plain.deadlineOf(x));
      // Out of the table -1, waiting with no timeout -2, else its heap position.
      const d = intrusive.deadlineOf(x);
      if (d === undefined) expect(x.pos).toBe(-1);
      else if (d === Infinity) expect(x.pos).toBe(-2);
      else expect(x.pos).toBeGreaterThanOrEqual(0);
    }
    expect(intrusive.expire(1e12).map((y) => y.id)).toEqual(plain.expire(1e12).map((y) => y.id));
  });

  it('expires items in deadline order and supports removal', () => {
    const t = new IdleTable<string>();
    const deadlines = [50, 10, 40, 30, Infinity, 20];
    deadlines.forEach((d, i) => t.add(`vm${i}`, d));
    t.remove('vm3');
    expect(t.nextDeadline()).toBe(10);
    expect(t.expire(45)).toEqual(['vm1', 'vm5', 'vm2']);
    expect(t.size).toBe(2);
    expect(t.expire(1e12)).toEqual(['vm0']);
    expect(t.nextDeadline()).toBe(Infinity);
  });

  it('keeps heap order under random operations', () => {
    const t = new IdleTable<number>();
    const ref = new Map<number, number>();
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 2000; i++) {
      const k = Math.floor(rnd() * 200);
      if (rnd() < 0.3) {
        t.remove(k);
        ref.delete(k);
      } else {
        const d = Math.floor(rnd() * 1000);
        t.add(k, d);
        ref.set(k, d);
      }
    }
    const expected = [...ref.entries()].filter(([, d]) => d <= 500).sort((a, b) => a[1] - b[1]).map(([, d]) => d);
    const got = t.expire(500).map((k) => ref.get(k));
    expect(got).toEqual(expected);
  });

  it('re-keys items between no timeout and a deadline, and reports each deadline', () => {
    const t = new IdleTable<number>();
    const ref = new Map<number, number>();
    let seed = 11;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let i = 0; i < 5000; i++) {
      const k = Math.floor(rnd() * 300);
      const r = rnd();
      if (r < 0.25) {
        expect(t.remove(k)).toBe(ref.delete(k));
      } else {
        const d = r < 0.5 ? Infinity : Math.floor(rnd() * 1000);
        t.add(k, d);
        ref.set(k, d);
      }
      if (i % 97 === 0) {
        expect(t.size).toBe(ref.size);
        const finite = [...ref.values()].filter((d) => d !== Infinity);
        expect(t.nextDeadline()).toBe(finite.length ? Math.min(...finite) : Infinity);
      }
    }
    for (let k = 0; k < 300; k++) {
      expect(t.has(k)).toBe(ref.has(k));
      expect(t.deadlineOf(k)).toBe(ref.get(k));
    }
    const expected = [...ref.values()].filter((d) => d !== Infinity).sort((a, b) => a - b);
    expect(t.expire(Number.MAX_SAFE_INTEGER).map((k) => ref.get(k))).toEqual(expected);
    expect(t.size).toBe([...ref.values()].filter((d) => d === Infinity).length);
    expect(t.nextDeadline()).toBe(Infinity);
  });
});

describe('RunQueue', () => {
  it('is FIFO, holds an item once, and removes', () => {
    const q = new RunQueue<string>();
    q.push('a');
    q.push('b');
    q.push('a');
    q.push('c');
    q.remove('b');
    expect([q.shift(), q.shift(), q.shift()]).toEqual(['a', 'c', undefined]);
  });
});

describe('Yakima scheduler', () => {
  it('lets two spinning VMs both make progress and stops on request', async () => {
    const y = new Yakima({
      quantumInstructions: 1000,
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, (cpu, max) => {
          cpu.instructionsRetired += max;
          return { kind: 'quantum' };
        }),
    });
    const a = y.addVm(tinyImage('spin'));
    const b = y.addVm(tinyImage('spin'));
    expect(b.name).toBe('spin-2');
    setTimeout(() => y.stop(), 60);
    await y.run();
    expect(a.state).toBe('stopped');
    expect(a.stats.preemptions).toBeGreaterThan(10);
    expect(b.stats.preemptions).toBeGreaterThan(10);
    expect(Math.abs(a.stats.preemptions - b.stats.preemptions)).toBeLessThanOrEqual(1);
    // Preempted VMs learn that time has passed.
    expect(a.guestPending & IRQ.TIMER).toBe(IRQ.TIMER);
  });

  it('idles a VM until its timeout without running it, then exits with its status', async () => {
    let step = 0;
    const y = new Yakima({
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, (cpu) => {
          cpu.instructionsRetired += 1;
          if (step++ === 0) {
            mem.writeU32(ARGS, 30_000); // 30 ms in ticks (µs)
            mem.writeU32(ARGS + 4, 0);
            return hypercall(HYPERCALL.IDLE);
          }
          mem.writeU32(ARGS, 7);
          return hypercall(HYPERCALL.EXIT);
        }),
    });
    const vm = y.addVm(tinyImage());
    const t0 = performance.now();
    await y.run();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(vm.state).toBe('exited');
    expect(vm.exitStatus).toBe(7);
    expect(vm.stats.entries).toBe(2);
    expect(vm.guestPending & IRQ.TIMER).toBe(IRQ.TIMER);
  });

  it('wakes an idle-forever VM on console input and delivers IRQ.CONSOLE in the pending register', async () => {
    let step = 0;
    let pendingSeen = -1;
    const y = new Yakima({
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, () => {
          if (step++ === 0) {
            mem.writeU32(ARGS, IDLE_FOREVER);
            mem.writeU32(ARGS + 4, IDLE_FOREVER);
            return hypercall(HYPERCALL.IDLE);
          }
          pendingSeen = mem.readU32(LAYOUT.VREG_RW_BASE + VREG_RW.PENDING);
          mem.writeU32(ARGS, 0);
          return hypercall(HYPERCALL.EXIT);
        }),
    });
    const vm = y.addVm(tinyImage());
    setTimeout(() => vm.console.pushInput(Buffer.from('x')), 20);
    await y.run();
    expect(pendingSeen & IRQ.CONSOLE).toBe(IRQ.CONSOLE);
  });

  it('faults a VM that passes a bad pointer, and its neighbour still finishes', async () => {
    const lines: string[] = [];
    const y = new Yakima({
      log: (l) => lines.push(l),
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, (cpu) => {
          const bad = mem.readU32(0x1000 + 0x10) === 1; // VM id 1 misbehaves
          mem.writeU32(ARGS, bad ? 0xfff0_0000 : 0x3100);
          mem.writeU32(ARGS + 4, 5);
          cpu.regs.eip = 0x100001;
          if (cpu.instructionsRetired++ === 0) return hypercall(HYPERCALL.CONSOLE_WRITE);
          mem.writeU32(ARGS, 0);
          return hypercall(HYPERCALL.EXIT);
        }),
    });
    const bad = y.addVm(tinyImage('bad'));
    const good = y.addVm(tinyImage('good'));
    await y.run();
    expect(bad.state).toBe('faulted');
    expect(bad.fault?.cause).toBe('bad-hypercall');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^vm bad#1 faulted at eip 0x00100000: bad-hypercall \(hypercall 2: guest read of 5 bytes at 0xfff00000/);
    expect(good.state).toBe('exited');
    expect(good.console.bytesWritten).toBe(5);
  });

  it('faults on out to a non-Denali port and on an unknown hypercall', async () => {
    const y = new Yakima({
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, () =>
          mem.readU32(0x1010) === 1 ? { kind: 'io-out', port: 0x3f8, value: 0, size: 1 } : { kind: 'io-out', port: HYPERCALL_PORT_BASE + 99, value: ARGS, size: 4 },
        ),
    });
    const a = y.addVm(tinyImage());
    const b = y.addVm(tinyImage());
    await y.run();
    expect(a.fault?.detail).toMatch(/port 0x3f8 is not a Denali device/);
    expect(b.fault?.detail).toMatch(/unknown hypercall 99/);
  });

  it('delivers an upcall on entry when interrupts are enabled', async () => {
    let step = 0;
    let entryState: { eip: number; esp: number; frameEip: number; frameFlags: number; ie: number } | undefined;
    const y = new Yakima({
      quantumInstructions: 10,
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, (cpu) => {
          const rw = LAYOUT.VREG_RW_BASE;
          if (step++ === 0) {
            mem.writeU32(rw + VREG_RW.UPCALL_ENTRY, 0x100008);
            mem.writeU32(rw + VREG_RW.INTERRUPT_ENABLE, 1);
            cpu.regs.eip = 0x100004;
            cpu.regs.eflags = 0x246;
            cpu.instructionsRetired += 10;
            return { kind: 'quantum' }; // preempted: TIMER becomes pending
          }
          const esp = cpu.regs.gpr[Reg.ESP]!;
          entryState = {
            eip: cpu.regs.eip,
            esp,
            frameEip: mem.readU32(esp + UPCALL_FRAME.EIP),
            frameFlags: mem.readU32(esp + UPCALL_FRAME.EFLAGS),
            ie: mem.readU32(rw + VREG_RW.INTERRUPT_ENABLE),
          };
          return { kind: 'halt' };
        }),
    });
    const vm = y.addVm(tinyImage());
    const top = vm.boot.regs.gpr[Reg.ESP]!;
    await y.run();
    expect(entryState).toEqual({ eip: 0x100008, esp: top - 8, frameEip: 0x100004, frameFlags: 0x246, ie: 0 });
    expect(vm.stats.upcalls).toBe(1);
    expect(vm.exitStatus).toBe(0);
  });
});
