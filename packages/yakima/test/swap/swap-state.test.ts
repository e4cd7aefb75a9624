/**
 * Swap-out then swap-in keeps a VM exactly as it was (memory, registers, flags, FPU/SSE/x87,
 * devices); shared template pages stay shared until written and a write never leaks into
 * another VM; a failing or full swap area loses nothing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { IRQ, LAYOUT, PAGE_SIZE, VREG_RO } from '@denali/image-format';
import { Yakima } from '../../src/control/yakima.js';
import type { Vm } from '../../src/control/vm.js';
import { probeKvm } from '../../src/cpu/kvm/probe.js';
import { probeProcessBackend } from '../../src/cpu/process/probe.js';
import { EmuCpu } from '../../src/cpu/emu/index.js';
import { MemoryTemplate, privatePages, releaseWarm, templateOf, type WarmSlot } from '../../src/memory/template.js';
import { hostAddressOf } from '../../src/memory/host-memory.js';
import { SwapError } from '../../src/swap/swap-error.js';
import { EMU_VM_BASE_BYTES } from '../../src/memory/accounting.js';
import type { SwapStore } from '../../src/swap/swap-area.js';
import { FPU_BODY, idleThenExitWithVmId, idleThenHalt, INTEGER_BODY, le32, rawImage, store32, until } from './helpers.js';

const dirs: string[] = [];
const scratch = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'denali-swap-test-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `vm` swapped in (it stays idle). */
async function swappedIn(y: Yakima, vm: Vm): Promise<Vm> {
  if (vm.state === 'swapped') await y.swapIn(vm);
  return vm;
}

/** Everything that must survive a swap: memory bytes, vCPU state, device state. */
function capture(vm: Vm) {
  // getRegs first: it materializes the emulator's lazy flags (same architectural state, other bytes).
  const regs = vm.vcpu.getRegs();
  return {
    memory: Buffer.from(vm.memory.u8),
    state: Buffer.from(vm.vcpu.saveState!().bytes),
    regs,
    clock: vm.clock.bootTicks,
    console: vm.console.bytesWritten,
    pendingIrqs: vm.pendingIrqs,
    retired: vm.vcpu.instructionsRetired,
  };
}

/** Field by field (a 4 MiB Buffer in toEqual is slow and its message useless). */
function expectSame(a: ReturnType<typeof capture>, b: ReturnType<typeof capture>): void {
  const firstDiff = (x: Buffer, y: Buffer): number => x.findIndex((v, i) => v !== y[i]);
  expect(firstDiff(a.memory, b.memory), 'first differing guest address').toBe(-1);
  expect(firstDiff(a.state, b.state), 'first differing vCPU state byte').toBe(-1);
  expect({ ...a, memory: 0, state: 0 }).toEqual({ ...b, memory: 0, state: 0 });
}

async function roundTrip(backend: 'emu' | 'kvm' | 'process', body: number[]): Promise<void> {
  const swapDir = scratch();
  const y = new Yakima({ backend, swapDir });
  const vm = y.addVm(rawImage('state', idleThenHalt(body), 4 << 20));
  const done = y.run();
  try {
    await until(() => vm.state === 'idle', 20_000, 'the VM to idle');
    const before = capture(vm);
    expect(before.regs.gpr[3]).toBe(0x9abcdef0);
    await y.swapOut(vm);
    expect(vm.state).toBe('swapped');
    expect(vm.residentBytes()).toBeLessThanOrEqual(4096);
    expect(() => vm.memory.u8).toThrow(SwapError);
    expect(() => vm.vcpu.getRegs()).toThrow(SwapError);
    // One record in the swap file: the RO/RW register pages, the stack page and 0x300000 —
    // not the all-zero page written at 0x280000, nor the untouched code page.
    expect(readdirSync(join(swapDir, readdirSync(swapDir)[0]!))).toEqual(['vms.swap']);
    const s1 = y.swapStats();
    expect(s1.swapOuts).toBe(1);
    expect(s1.bytesWritten).toBeLessThan(5 * PAGE_SIZE);
    expect(s1.swappedVms).toBe(1);
    await y.swapIn(vm);
    expect(vm.state).toBe('idle');
    expectSame(capture(vm), before);
    // Out again; console input (a virtual interrupt) swaps it in and it continues to `hlt`.
    await y.swapOut(vm);
    vm.console.pushInput(Uint8Array.of(0x0a));
    expect(vm.state).toBe('runnable');
    await done;
    expect(vm.state).toBe('exited');
    expect(y.swapStats()).toMatchObject({ swapIns: 2, swapOuts: 2, failures: 0 });
    expect(y.swapStats().swapInLatencyUs.p50).toBeGreaterThan(0);
  } finally {
    y.stop();
    await done;
    await y.close();
  }
  expect(readdirSync(swapDir)).toEqual([]); // the swap area is removed on close
}

describe('swap-out and swap-in', () => {
  it('preserve memory, registers, flags, x87 and SSE state and devices exactly (emulator)', async () => {
    await roundTrip('emu', [...INTEGER_BODY, ...FPU_BODY]);
  });

  const kvm = probeKvm();
  it.skipIf(!kvm.usable)(`preserve memory, registers and flags exactly on KVM${kvm.usable ? '' : ` (skipped: ${kvm.reason})`}`, async () => {
    await roundTrip('kvm', INTEGER_BODY);
  });

  const proc = probeProcessBackend();
  it.skipIf(!proc.usable)(`preserve memory, registers, flags, x87 and SSE state and devices exactly on the process backend${proc.usable ? '' : ` (skipped: ${proc.reason})`}`, async () => {
    await roundTrip('process', [...INTEGER_BODY, ...FPU_BODY]);
  });

  it("give a swapped-in VM another swapped-out VM's emulator vCPU, with its own state exactly", async () => {
    const y = new Yakima({ swapDir: scratch() });
    const a = y.addVm(rawImage('a', idleThenHalt([...INTEGER_BODY, ...FPU_BODY]), 4 << 20));
    const b = y.addVm(rawImage('b', idleThenHalt([0xbb, ...le32(0x0badcafe), ...store32(0x300000, 0x5555aaaa)]), 4 << 20));
    const done = y.run();
    try {
      await until(() => a.state === 'idle' && b.state === 'idle', 20_000, 'both VMs to idle');
      const before = capture(a);
      const bCpu = b.vcpu;
      await y.swapOut(a);
      await y.swapOut(b);
      await y.swapIn(a);
      expect(a.vcpu).toBe(bCpu); // the vCPU kept last is reused
      expectSame(capture(a), before);
      await y.swapIn(b);
      expect(b.vcpu.getRegs().gpr[3]).toBe(0x0badcafe);
      expect(b.memory.readU32(0x300000)).toBe(0x5555aaaa);
      a.console.pushInput(Uint8Array.of(0x0a));
      b.console.pushInput(Uint8Array.of(0x0a));
      await done;
      expect([a.state, b.state]).toEqual(['exited', 'exited']);
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  });

  it('keep frames that arrive while swapped out in the Rx FIFO and swap the VM in', async () => {
    const y = new Yakima({ network: true, swapDir: scratch() });
    const vm = y.addVm(rawImage('nic', idleThenHalt(INTEGER_BODY), 4 << 20));
    const done = y.run();
    await until(() => vm.state === 'idle', 20_000, 'the VM to idle');
    await y.swapOut(vm);
    const frame = new Uint8Array(60);
    frame.set(vm.nic!.mac, 0);
    vm.nic!.deliver(frame);
    expect(vm.nic!.rx.length).toBe(1);
    expect(vm.nic!.stats.rxFrames).toBe(1);
    expect(vm.pendingIrqs & IRQ.NET_RX).toBe(IRQ.NET_RX);
    expect(y.swapStats().swapIns).toBe(1);
    await done;
    expect(vm.state).toBe('exited');
    await y.close();
  });

  it('swap a VM in when its idle timeout passes', async () => {
    const y = new Yakima({ swapDir: scratch() });
    const vm = y.addVm(rawImage('timeout', idleThenHalt(INTEGER_BODY, 300_000), 4 << 20)); // 300 ms
    const done = y.run();
    await until(() => vm.state === 'idle', 20_000, 'the VM to idle');
    await y.swapOut(vm);
    expect(vm.state).toBe('swapped');
    await done; // only the timeout can wake it
    expect(vm.state).toBe('exited');
    expect(y.swapStats()).toMatchObject({ swapIns: 1, swapOuts: 1 });
    await y.close();
  });

  it('refuse to swap out a VM that is not idle, with a SwapError', async () => {
    const y = new Yakima({ swapDir: scratch() });
    const vm = y.addVm(rawImage('new', idleThenHalt([]), 4 << 20));
    await expect(y.swapOut(vm)).rejects.toThrow(/is runnable: only idle/);
    await expect(y.swapIn(vm)).rejects.toThrow(SwapError);
    y.stop();
    await y.run();
    await y.close();
  });
});

describe('clones', () => {
  async function cloneRun(backend: 'emu' | 'kvm' | 'process'): Promise<void> {
    const y = new Yakima({ backend, swapDir: scratch() });
    const vms = y.addVms(rawImage('clone', idleThenExitWithVmId(INTEGER_BODY), 4 << 20), 4);
    const done = y.run();
    try {
      await until(() => vms.every((v) => v.state === 'swapped'), 20_000, 'the clone template');
      expect(vms.map((v) => v.id)).toEqual([1, 2, 3, 4]);
      // Each clone starts from the parent's post-boot state: same registers and memory contents
      // except the read-only register page, which holds its own identity.
      for (const vm of vms) await y.swapIn(vm);
      const ref = vms[0]!.vcpu.getRegs();
      for (const vm of vms) {
        expect(vm.vcpu.getRegs()).toEqual(ref);
        expect(vm.memory.dv.getUint32(0x300000, true)).toBe(0xdeadbeef);
        expect(vm.memory.dv.getUint32(LAYOUT.VREG_RO_BASE + VREG_RO.VM_ID, true)).toBe(vm.id);
      }
      // A write in one clone stays in that clone.
      vms[1]!.memory.dv.setUint32(0x300000, 1, true);
      expect(vms.map((v) => v.memory.dv.getUint32(0x300000, true))).toEqual([0xdeadbeef, 1, 0xdeadbeef, 0xdeadbeef]);
      for (const vm of vms) vm.console.pushInput(Uint8Array.of(1));
      await done;
      expect(vms.map((v) => [v.state, v.exitStatus])).toEqual(vms.map((v) => ['exited', v.id]));
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  }

  it('start from the parent\'s post-boot state with their own VM id (emulator)', async () => {
    await cloneRun('emu');
  });

  it('of a later batch with the same image and arguments clone the first batch\'s post-boot state, booting nothing', async () => {
    const img = rawImage('batches', idleThenExitWithVmId(INTEGER_BODY), 4 << 20);
    const y = new Yakima({ swapDir: scratch() });
    const first = y.addVms(img, 2);
    // Added while the first batch's parent is still booting: they join its batch.
    const joined = y.addVms(img, 2);
    expect(joined.map((v) => v.state)).toEqual(['swapped', 'swapped']);
    const done = y.run();
    try {
      await until(() => [...first, ...joined].every((v) => v.state === 'swapped'), 20_000, 'the clone template');
      const later = y.addVms(img, 3);
      expect(later.map((v) => v.state)).toEqual(['swapped', 'swapped', 'swapped']);
      const template = templateOf((await swappedIn(y, first[1]!)).memory);
      for (const vm of [...joined, ...later]) expect(templateOf((await swappedIn(y, vm)).memory)).toBe(template);
      // Other arguments: a parent of their own boots.
      const other = y.addVms(img, 2, { args: ['other'] });
      expect(other[0]!.state).not.toBe('swapped');
      const all = [...first, ...joined, ...later, ...other];
      await until(() => all.every((v) => v.state === 'idle' || v.state === 'swapped'), 20_000, 'the other batch to idle');
      for (const vm of all) vm.console.pushInput(Uint8Array.of(1));
      await done;
      expect(all.map((v) => [v.state, v.exitStatus])).toEqual(all.map((v) => ['exited', v.id]));
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  });

  const kvmProbe = probeKvm();
  it.skipIf(!kvmProbe.usable)(`start from the parent's post-boot state with their own VM id on KVM${kvmProbe.usable ? '' : ` (skipped: ${kvmProbe.reason})`}`, async () => {
    await cloneRun('kvm');
  });

  const procProbe = probeProcessBackend();
  it.skipIf(!procProbe.usable)(`start from the parent's post-boot state with their own VM id on the process backend${procProbe.usable ? '' : ` (skipped: ${procProbe.reason})`}`, async () => {
    await cloneRun('process');
  });
});

describe('copy-on-write sharing of an image between VMs', () => {
  const DATA = 0x100c00; // inside the image's only (code + data) page

  /** Two VMs of one image, running: only the writer (VM 1) writes 0x41414141 at DATA before its IDLE. */
  function writerAndReader(name: string) {
    // cmp dword [VM_ID register], 1; jne +10; mov dword [DATA], 0x41414141.
    const body = [0x83, 0x3d, ...le32(LAYOUT.VREG_RO_BASE + VREG_RO.VM_ID), 1, 0x75, 10, ...store32(DATA, 0x41414141)];
    const img = rawImage(name, idleThenHalt(body), 4 << 20);
    const y = new Yakima({ swapDir: scratch() });
    const writer = y.addVm(img);
    const reader = y.addVm(img, { args: ['x'] });
    return { y, writer, reader, done: y.run() };
  }

  it('keeps image pages shared until written, and a write never reaches another VM', async () => {
    const { y, writer, reader, done } = writerAndReader('cow');
    try {
      await until(() => writer.state === 'idle' && reader.state === 'idle', 20_000, 'both VMs to idle');
      expect(templateOf(writer.memory)).toBe(templateOf(reader.memory));
      const codePage = 0x100000 / PAGE_SIZE;
      expect(privatePages(writer.memory)).toContain(codePage);
      expect(privatePages(reader.memory)).not.toContain(codePage);
      expect(writer.memory.dv.getUint32(DATA, true)).toBe(0x41414141);
      expect(reader.memory.dv.getUint32(DATA, true)).toBe(0);
      // After a swap round trip of the writer, still private to it.
      await y.swapOut(writer);
      await y.swapIn(writer);
      expect(writer.memory.dv.getUint32(DATA, true)).toBe(0x41414141);
      expect(reader.memory.dv.getUint32(DATA, true)).toBe(0);
      // A host-side write (a device filling a buffer) is private too.
      reader.memory.u8[0x100f00] = 7;
      expect(writer.memory.u8[0x100f00]).toBe(0);
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  });

  it("gives a VM swapped in over another VM's kept mapping none of that VM's pages", async () => {
    const { y, writer, reader, done } = writerAndReader('warm');
    try {
      await until(() => writer.state === 'idle' && reader.state === 'idle', 20_000, 'both VMs to idle');
      const readerBefore = capture(reader);
      const writerBefore = capture(writer);
      const writerAddress = hostAddressOf(writer.memory);
      // The writer goes out last, so its mapping (DATA written) is the newest kept one.
      await y.swapOut(reader);
      await y.swapOut(writer);
      await y.swapIn(reader);
      expect(hostAddressOf(reader.memory)).toBe(writerAddress); // it took the writer's mapping …
      expect(reader.memory.dv.getUint32(DATA, true)).toBe(0); // … and none of its pages
      expectSame(capture(reader), readerBefore);
      expect(privatePages(reader.memory)).not.toContain(0x100000 / PAGE_SIZE);
      await y.swapIn(writer);
      expectSame(capture(writer), writerBefore);
      for (const vm of [writer, reader]) vm.console.pushInput(Uint8Array.of(1));
      await done;
      expect([writer.state, reader.state]).toEqual(['exited', 'exited']);
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  });
});

describe('a failing swap area', () => {
  const failing = (code: string): SwapStore & { attempts: number } => ({
    where: '/simulated',
    attempts: 0,
    write(): number {
      this.attempts++;
      throw Object.assign(new Error(`${code}: simulated`), { code });
    },
    read: () => {
      throw new Error('no records');
    },
    remove: () => undefined,
    close: () => undefined,
  });

  const procUsable = probeProcessBackend().usable;
  it.each<['emu' | 'process', boolean]>([
    ['emu', true],
    ['process', procUsable],
  ])('leaves the VM resident, logs one line per failure, and loses nothing (simulated ENOSPC, %s)', async (backend, usable) => {
    if (!usable) return; // the process backend's probe failed: its reason is printed by the round-trip test
    const lines: string[] = [];
    const store = failing('ENOSPC');
    // A budget below one VM: every idle VM is a swap candidate.
    const y = new Yakima({ backend, memoryBudget: 4096, swapStore: store, log: (l) => lines.push(l) });
    const vm = y.addVm(rawImage('full', idleThenHalt([...INTEGER_BODY, ...FPU_BODY]), 4 << 20));
    const done = y.run();
    await until(() => vm.state === 'idle', 20_000, 'the VM to idle');
    expect(store.attempts).toBe(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/cannot swap out VM 1 .*ENOSPC.*stays resident/);
    const before = capture(vm);
    await expect(y.swapOut(vm)).rejects.toThrow(SwapError);
    expect(lines).toHaveLength(2);
    expect(vm.state).toBe('idle');
    expectSame(capture(vm), before);
    expect(y.swapStats()).toMatchObject({ failures: 2, swapOuts: 0, swappedVms: 0, residentVms: 1 });
    vm.console.pushInput(Uint8Array.of(1));
    await done;
    expect(vm.state).toBe('exited');
    await y.close();
  });

  it('survives an unwritable swap directory', async () => {
    const lines: string[] = [];
    const file = join(scratch(), 'not-a-dir');
    execFileSync('touch', [file]);
    const y = new Yakima({ swapDir: file, log: (l) => lines.push(l) });
    const vm = y.addVm(rawImage('nodir', idleThenHalt(INTEGER_BODY), 4 << 20));
    const done = y.run();
    await until(() => vm.state === 'idle', 20_000, 'the VM to idle');
    await expect(y.swapOut(vm)).rejects.toThrow(/swap-out of VM 1 .* failed: .*(ENOTDIR|EEXIST)/);
    expect(lines).toHaveLength(1);
    expect(vm.state).toBe('idle');
    vm.console.pushInput(Uint8Array.of(1));
    await done;
    expect(vm.state).toBe('exited');
    await y.close();
  });

  const root = process.getuid?.() === 0;
  it.skipIf(!root)(`loses nothing when a real, tiny tmpfs swap area fills up${root ? '' : ' (skipped: mounting tmpfs needs root)'}`, async () => {
    const mnt = scratch();
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12k', 'tmpfs', mnt]);
    } catch (e) {
      console.log(`tmpfs test skipped: mount failed (${(e as Error).message.split('\n')[0]})`);
      return;
    }
    try {
      const lines: string[] = [];
      const y = new Yakima({ swapDir: mnt, log: (l) => lines.push(l) });
      // Each record needs ~5 pages (20 KiB): the first swap-out does not fit in 12 KiB.
      const vms = [0, 1].map(() => y.addVm(rawImage('tiny', idleThenHalt([...INTEGER_BODY, ...FPU_BODY]), 4 << 20)));
      const done = y.run();
      await until(() => vms.every((v) => v.state === 'idle'), 20_000, 'the VMs to idle');
      const before = vms.map(capture);
      for (const vm of vms) await expect(y.swapOut(vm)).rejects.toThrow(/ENOSPC|no space/i);
      expect(lines).toHaveLength(2);
      vms.forEach((vm, i) => expectSame(capture(vm), before[i]!));
      expect(statSync(join(readdirSync(mnt).map((d) => join(mnt, d))[0]!, 'vms.swap')).size).toBe(0); // no partial record left
      for (const vm of vms) vm.console.pushInput(Uint8Array.of(1));
      await done;
      expect(vms.map((v) => v.state)).toEqual(['exited', 'exited']);
      await y.close();
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});

describe('swap-in failures', () => {
  it('retry a swap-in the host cannot take now, and fault a VM whose record is gone', async () => {
    const lines: string[] = [];
    let failNext = false;
    const swapDir = scratch();
    const y = new Yakima({
      swapDir,
      log: (l) => lines.push(l),
      createVcpu: (m) => {
        if (failNext) {
          failNext = false;
          throw new Error('EMFILE: too many open files (simulated)');
        }
        return new EmuCpu(m);
      },
    });
    const img = rawImage('retry', idleThenHalt(INTEGER_BODY), 4 << 20);
    const [a, b] = [y.addVm(img), y.addVm(img)];
    const done = y.run();
    await until(() => a.state === 'idle' && b.state === 'idle', 20_000, 'the VMs to idle');
    await y.swapOut(a);
    await y.swapOut(b);
    failNext = true;
    a.console.pushInput(Uint8Array.of(1));
    expect(a.state).toBe('swapped');
    expect(lines.join('\n')).toMatch(/swap-in of VM 1 .* failed: EMFILE.*; retrying/);
    // Lose B's record: its state is gone, so its next interrupt faults it (with the reason).
    const area = join(swapDir, readdirSync(swapDir)[0]!);
    // B's record is the second slot of the swap file (A's, 64 KiB, comes first): cut it off.
    truncateSync(join(area, 'vms.swap'), 64 * 1024);
    b.console.pushInput(Uint8Array.of(1));
    expect(b.state).toBe('faulted');
    expect(b.fault?.detail).toMatch(/swap-in of VM 2 .* failed: swap record of VM 2 is truncated/);
    await done;
    expect(a.state).toBe('exited');
    await y.close();
  });
});

describe('when the host refuses a mapping', () => {
  it('swaps out the least recently active idle VM to make room, then maps', async () => {
    const y = new Yakima({ swapDir: scratch() });
    const img = rawImage('maps', idleThenHalt(INTEGER_BODY), 4 << 20);
    const [a, b, c] = [y.addVm(img), y.addVm(img), y.addVm(img)];
    const done = y.run();
    const map = MemoryTemplate.prototype.map;
    const mapWarm = MemoryTemplate.prototype.mapWarm;
    try {
      await until(() => [a, b, c].every((v) => v.state === 'idle'), 20_000, 'the VMs to idle');
      await y.swapOut(c);
      // No kept mapping to take (c's own is given up), and the next mmap fails as it would
      // with vm.max_map_count reached.
      MemoryTemplate.prototype.mapWarm = function (this: MemoryTemplate, warm: WarmSlot): never {
        releaseWarm(warm);
        throw new Error('no kept mappings in this test');
      };
      let refusals = 1;
      MemoryTemplate.prototype.map = function (this: MemoryTemplate) {
        if (refusals-- > 0) throw Object.assign(new Error('mmap of guest memory: Cannot allocate memory (errno 12)'), { errno: 12 });
        return map.call(this);
      };
      await y.swapIn(c);
      expect([a.state, b.state, c.state]).toEqual(['swapped', 'idle', 'idle']); // a was idle longest
    } finally {
      MemoryTemplate.prototype.map = map;
      MemoryTemplate.prototype.mapWarm = mapWarm;
      for (const vm of [a, b, c]) vm.console.pushInput(Uint8Array.of(1));
      await done;
      await y.close();
    }
    expect([a, b, c].map((v) => v.state)).toEqual(['exited', 'exited', 'exited']);
  });
});

describe('the memory budget', () => {
  it('swaps out idle VMs, least recently active first, to stay under it', async () => {
    const swapDir = scratch();
    mkdirSync(swapDir, { recursive: true });
    // Room for two resident emulator VMs (a few decoded blocks and pages each), not three:
    // the third idling pushes the least recently active out.
    const y = new Yakima({ memoryBudget: 2 * (EMU_VM_BASE_BYTES + 56 * 1024), swapDir });
    const vms = [0, 1, 2].map(() => y.addVm(rawImage('lru', idleThenHalt(INTEGER_BODY), 4 << 20)));
    const done = y.run();
    await until(() => vms.every((v) => v.state === 'idle' || v.state === 'swapped'), 20_000, 'the VMs to idle');
    expect(vms[0]!.state).toBe('swapped');
    const s = y.swapStats();
    expect(s.residentBytes).toBeLessThanOrEqual(s.memoryBudget);
    expect(s.swappedVms).toBeGreaterThanOrEqual(1);
    for (const vm of vms) vm.console.pushInput(Uint8Array.of(1));
    await done;
    expect(vms.map((v) => v.state)).toEqual(['exited', 'exited', 'exited']);
    await y.close();
  });

  it('keeps at most maxResidentVms resident however much budget is left, least recently active out first', async () => {
    const y = new Yakima({ maxResidentVms: 2, swapDir: scratch() });
    const img = rawImage('capped', idleThenHalt(INTEGER_BODY), 4 << 20);
    const vms = [0, 1, 2, 3].map(() => y.addVm(img));
    const done = y.run();
    try {
      await until(() => vms.every((v) => v.state === 'idle' || v.state === 'swapped'), 20_000, 'the VMs to idle');
      expect(vms.filter((v) => v.state === 'idle')).toHaveLength(2);
      expect(y.swapStats().residentBytes).toBeLessThan(y.swapStats().memoryBudget / 100); // the cap, not the budget, decided
      // A wake-up swaps one in and another (the least recently active) out.
      const out = vms.find((v) => v.state === 'swapped')!;
      await y.swapIn(out);
      expect(out.state).toBe('idle');
      expect(vms.filter((v) => v.state === 'idle')).toHaveLength(2);
      expect(() => new Yakima({ maxResidentVms: 0 })).toThrow(/the most resident VMs must be at least 1, got 0/);
    } finally {
      for (const vm of vms) vm.console.pushInput(Uint8Array.of(1));
      await done;
      await y.close();
    }
    expect(vms.map((v) => v.state)).toEqual(['exited', 'exited', 'exited', 'exited']);
  });

  it('measures on request what each resident VM holds and what their template holds once for all', async () => {
    const y = new Yakima({ swapDir: scratch() });
    const img = rawImage('measured', idleThenHalt(INTEGER_BODY), 4 << 20);
    const vms = [0, 1, 2].map(() => y.addVm(img));
    const done = y.run();
    try {
      await until(() => vms.every((v) => v.state === 'idle'), 20_000, 'the VMs to idle');
      const m = y.measureResident()!;
      expect(m.vmBytes).toHaveLength(3);
      // Each: at least its vCPU and devices, and what it wrote; the same as its own account now.
      for (const b of m.vmBytes) expect(b).toBeGreaterThanOrEqual(EMU_VM_BASE_BYTES);
      expect([...m.vmBytes].sort()).toEqual(vms.map((v) => v.residentBytes()).sort());
      expect(m.templateBytes).toBeGreaterThan(0); // the image's pages, held once
      expect(y.swapStats().residentBytes).toBeGreaterThanOrEqual(m.vmBytes.reduce((a, b) => a + b, 0) + m.templateBytes);
    } finally {
      for (const vm of vms) vm.console.pushInput(Uint8Array.of(1));
      await done;
      await y.close();
    }
  });
});
