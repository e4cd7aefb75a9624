import { describe, expect, it } from 'vitest';
import { MemoryConsoleSink } from '../src/devices/console-sink.js';
import { Yakima } from '../src/control/yakima.js';
import { rawImage } from './images.js';

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const SPIN = [0xeb, 0xfe]; // jmp $

/** mov eax, 0x100100; mov dx, 0x502; out dx, eax; hlt — with a CONSOLE_WRITE block at 0x100100. */
function helloCode(text: string): number[] {
  const code = [0xb8, ...le32(0x100100), 0x66, 0xba, 0x02, 0x05, 0xef, 0xf4];
  const out = new Array<number>(0x300).fill(0);
  out.splice(0, code.length, ...code);
  out.splice(0x100, 16, ...le32(0x100200), ...le32(text.length), ...le32(0), ...le32(0));
  out.splice(0x200, text.length, ...Buffer.from(text));
  return out;
}

describe('VMs on the emulator', () => {
  it('two spinning VMs both make progress', async () => {
    const y = new Yakima({ quantumInstructions: 20_000 });
    const a = y.addVm(rawImage('spin', SPIN));
    const b = y.addVm(rawImage('spin', SPIN));
    setTimeout(() => y.stop(), 150);
    await y.run();
    const ia = a.vcpu.instructionsRetired;
    const ib = b.vcpu.instructionsRetired;
    expect(ia).toBeGreaterThan(100_000);
    expect(ib).toBeGreaterThan(100_000);
    // At most one quantum apart, plus the emulator's per-run overshoot (up to one block, 64 instructions) on each side.
    expect(Math.abs(ia - ib)).toBeLessThanOrEqual(20_000 + 2 * 64);
  });

  it('console output via hypercall, then hlt exits 0', async () => {
    const sink = new MemoryConsoleSink();
    const y = new Yakima({ sink });
    const vm = y.addVm(rawImage('hi', helloCode('hello, world\n')));
    await y.run();
    expect(sink.text('hi')).toBe('hello, world\n');
    expect(vm.state).toBe('exited');
    expect(vm.exitStatus).toBe(0);
  });

  it('a VM writing the read-only virtual registers dies; a spinning neighbour keeps running', async () => {
    const lines: string[] = [];
    const y = new Yakima({ quantumInstructions: 10_000, log: (l) => lines.push(l) });
    // mov dword [0x1008], 1
    const bad = y.addVm(rawImage('bad', [0xc7, 0x05, ...le32(0x1008), ...le32(1), 0xf4]));
    const spin = y.addVm(rawImage('spin', SPIN));
    setTimeout(() => y.stop(), 80);
    await y.run();
    expect(bad.state).toBe('faulted');
    expect(bad.fault?.cause).toBe('memory');
    expect(lines[0]).toMatch(/^vm bad#1 faulted at eip 0x00100000: memory .*\[c7 05 08 10 00 00 01 00 00 00 f4/);
    expect(spin.vcpu.instructionsRetired).toBeGreaterThan(50_000);
    expect(spin.state).toBe('stopped');
  });
});
