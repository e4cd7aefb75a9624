import { describe, expect, it } from 'vitest';
import { HYPERCALL, HYPERCALL_PORT_BASE, IDLE_FOREVER, IRQ, type DenaliImage } from '@denali/image-format';
import { Yakima } from '../src/control/yakima.js';
import { VmStateError } from '../src/control/vm-state-error.js';
import { SwapError } from '../src/swap/swap-error.js';
import type { VcpuExit } from '../src/cpu/vcpu.js';
import { ConsoleTailSink } from '../src/devices/console-tail.js';
import { ScriptedVcpu, tinyImage } from './scripted-vcpu.js';

const ARGS = 0x3000;
const hypercall = (n: number): VcpuExit => ({ kind: 'io-out', port: HYPERCALL_PORT_BASE + n, value: ARGS, size: 4 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** VMs whose vCPU spins (uses whole quanta) or idles forever until an interrupt, then idles again. */
function yakimaWith(kind: (name: string) => 'spin' | 'idle', extra: { keepAlive?: boolean } = {}) {
  const wakeups = new Map<string, number>();
  let naming = '';
  const y = new Yakima({
    quantumInstructions: 10_000,
    ...extra,
    createVcpu: (mem) => {
      const name = naming;
      return new ScriptedVcpu(mem, (cpu, max) => {
        if (kind(name) === 'spin') {
          cpu.instructionsRetired += max;
          return { kind: 'quantum' };
        }
        cpu.instructionsRetired += 1;
        wakeups.set(name, (wakeups.get(name) ?? 0) + 1);
        mem.writeU32(ARGS, IDLE_FOREVER);
        mem.writeU32(ARGS + 4, IDLE_FOREVER);
        return hypercall(HYPERCALL.IDLE);
      });
    },
  });
  const add = (image: DenaliImage, name: string) => {
    naming = name;
    return y.addVm(image, { name });
  };
  return { y, add, wakeups };
}

describe('Yakima: pause, resume and stop one VM', () => {
  it('a paused VM gets no CPU while its neighbour runs; resumed, it runs again; CPU time and exits are counted', async () => {
    const { y, add } = yakimaWith(() => 'spin');
    const a = add(tinyImage('a'), 'a');
    const b = add(tinyImage('b'), 'b');
    const run = y.run();
    await sleep(50);
    y.pauseVm(a);
    expect(a.state).toBe('paused');
    const frozen = a.vcpu.instructionsRetired;
    const bBefore = b.vcpu.instructionsRetired;
    await sleep(80);
    expect(a.vcpu.instructionsRetired).toBe(frozen);
    expect(b.vcpu.instructionsRetired).toBeGreaterThan(bBefore);
    y.pauseVm(a); // idempotent
    y.resumeVm(a);
    expect(a.state).toBe('runnable');
    await sleep(80);
    expect(a.vcpu.instructionsRetired).toBeGreaterThan(frozen);
    expect(a.stats.cpuTimeUs).toBeGreaterThan(0);
    expect(a.stats.exits).toBeGreaterThan(0);
    expect(() => y.resumeVm(a)).toThrow(VmStateError);
    y.stopVm(a);
    expect(a.state).toBe('stopped');
    expect(a.residentBytes()).toBe(0);
    expect(() => y.stopVm(a)).toThrow(/already been stopped/);
    expect(() => y.pauseVm(a)).toThrow(VmStateError);
    const bAfter = b.vcpu.instructionsRetired;
    await sleep(50);
    expect(b.vcpu.instructionsRetired).toBeGreaterThan(bAfter);
    y.stopVm(b);
    await run; // the last VM stopped: run resolves
    expect(y.live).toBe(0);
  });

  it('an idle VM paused keeps its interrupts and wakes with them once resumed', async () => {
    const { y, add, wakeups } = yakimaWith(() => 'idle');
    const vm = add(tinyImage('idler'), 'idler');
    const run = y.run();
    await sleep(30);
    expect(vm.state).toBe('idle');
    y.pauseVm(vm);
    vm.raise(IRQ.CONSOLE);
    await sleep(30);
    expect(wakeups.get('idler')).toBe(1);
    expect(vm.state).toBe('paused');
    y.resumeVm(vm);
    await sleep(30);
    // (The scripted guest never clears PENDING, so from here on its IDLE returns at once.)
    expect(wakeups.get('idler')).toBeGreaterThan(1);
    expect(vm.guestPending & IRQ.CONSOLE).toBe(IRQ.CONSOLE);
    y.stop();
    await run;
  });

  it('keepAlive runs with no VMs until stop, and boots VMs added meanwhile', async () => {
    const { y, add } = yakimaWith(() => 'idle', { keepAlive: true });
    let done = false;
    const run = y.run().then(() => (done = true));
    await sleep(30);
    expect(done).toBe(false);
    const vm = add(tinyImage('late'), 'late');
    await sleep(30);
    expect(vm.stats.entries).toBe(1);
    y.stopVm(vm);
    await sleep(30);
    expect(done).toBe(false);
    y.stop();
    await run;
    expect(done).toBe(true);
  });

  it('swapOut and swapIn refuse a VM in the wrong state with a SwapError that names it', async () => {
    const { y, add } = yakimaWith(() => 'idle');
    const vm = add(tinyImage('s'), 's');
    await expect(y.swapOut(vm)).rejects.toThrow(SwapError);
    await expect(y.swapOut(vm)).rejects.toThrow(/VM 1 \(s\) is runnable/);
    await expect(y.swapIn(vm)).rejects.toThrow(/is runnable, not swapped out/);
    y.stopVm(vm);
  });
});

describe('ConsoleTailSink', () => {
  it('keeps the last bytes of each VM, bounded, passes writes on, and feeds followers until close', () => {
    const inner: string[] = [];
    const sink = new ConsoleTailSink({ write: (n, b) => void inner.push(`${n}:${Buffer.from(b).toString()}`), close: (n) => void inner.push(`${n}:closed`) }, 1000);
    let all = '';
    for (let i = 0; i < 500; i++) {
      const line = `line ${i}\n`;
      all += line;
      sink.write('a', Buffer.from(line));
    }
    sink.write('b', Buffer.from('only b'));
    expect(Buffer.from(sink.tail('a')).toString()).toBe(all.slice(-1000));
    expect(Buffer.from(sink.tail('a', 9)).toString()).toBe('line 499\n');
    expect(sink.totalBytes('a')).toBe(all.length);
    expect(Buffer.from(sink.tail('b')).toString()).toBe('only b');
    expect(sink.tail('nobody')).toHaveLength(0);
    expect(inner).toHaveLength(501);

    const big = Buffer.alloc(5000, 0x41);
    big[4999] = 0x42;
    sink.write('c', big);
    expect(sink.tail('c')).toHaveLength(1000);
    expect(sink.tail('c').at(-1)).toBe(0x42);

    const got: string[] = [];
    let ended = 0;
    const off = sink.follow('b', { data: (x) => got.push(Buffer.from(x).toString()), end: () => ended++ });
    sink.write('b', Buffer.from(' more'));
    sink.write('a', Buffer.from('not b'));
    sink.close('b');
    expect(got).toEqual([' more']);
    expect(ended).toBe(1);
    off();
    // Following a VM that is already gone ends at once.
    sink.follow('b', { data: () => {}, end: () => ended++ });
    expect(ended).toBe(2);
    expect(() => new ConsoleTailSink(undefined, 0)).toThrow(RangeError);
  });

  it('wraps correctly for any write sizes (against a plain string model)', () => {
    const sink = new ConsoleTailSink(undefined, 777);
    let model = '';
    let seed = 1;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n;
    for (let i = 0; i < 2000; i++) {
      const len = rnd(i % 50 === 0 ? 2000 : 40);
      const s = String.fromCharCode(97 + rnd(26)).repeat(len) + String(i);
      model += s;
      sink.write('x', Buffer.from(s));
      if (i % 97 === 0) expect(Buffer.from(sink.tail('x')).toString()).toBe(model.slice(-777));
    }
    expect(Buffer.from(sink.tail('x', 100)).toString()).toBe(model.slice(-100));
  });
});
