/**
 * Blocks shared by the VMs of one memory template (`SharedCode`): a VM runs a shared block
 * only from pages whose bytes equal the ones it was decoded from, so a VM with other code, or
 * one that rewrote its own code, never runs another VM's blocks.
 */
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../src/boot/guest-memory.js';
import { EmuCpu, SharedCode } from '../../src/cpu/emu/index.js';
import { assemble, LOAD_ADDR } from './helpers.js';

const MEM = 2 << 20;

/** A CPU over a fresh memory holding `code` at LOAD_ADDR, sharing `shared`, starting at `eip`. */
function cpuOn(code: Uint8Array, shared: SharedCode, eip = LOAD_ADDR): EmuCpu {
  const mem = new GuestMemory(MEM);
  mem.u8.set(code, LOAD_ADDR);
  const cpu = new EmuCpu(mem, shared);
  cpu.compileAfter = 2;
  cpu.setRegs({ gpr: [0, 10, 0, 0, MEM - 64, 0, 0, 0], eip, eflags: 2 });
  return cpu;
}

function runToHalt(cpu: EmuCpu): number[] {
  expect(cpu.run(1_000_000)).toEqual({ kind: 'halt' });
  return cpu.getRegs().gpr;
}

const loop = (k: number): Uint8Array => assemble(`mov $${k}, %eax\n1: add %eax, %ebx\n dec %ecx\n jnz 1b\n hlt`);

describe('blocks shared by the VMs of one template', () => {
  it('a second VM with the same code decodes nothing and computes the same', () => {
    const shared = new SharedCode(MEM);
    const a = cpuOn(loop(0x1357), shared);
    expect(runToHalt(a)[3]).toBe(0x1357 * 10);
    expect(a.cache.decoded).toBeGreaterThan(0);
    const b = cpuOn(loop(0x1357), shared);
    expect(runToHalt(b)[3]).toBe(0x1357 * 10);
    expect(b.cache.decoded).toBe(0);
    expect(b.cache.reused).toBe(0);
  });

  it('a VM whose code page differs runs its own code, whichever VM ran first', () => {
    const shared = new SharedCode(MEM);
    expect(runToHalt(cpuOn(loop(0x1357), shared))[3]).toBe(0x1357 * 10);
    const other = cpuOn(loop(0x2468), shared);
    expect(runToHalt(other)[3]).toBe(0x2468 * 10);
    expect(other.cache.decoded).toBeGreaterThan(0);
    // And the first VM's code is unaffected by the other's blocks.
    expect(runToHalt(cpuOn(loop(0x1357), shared))[3]).toBe(0x1357 * 10);
  });

  it('a VM that rewrites its own code runs the new code; the others keep the template code', () => {
    // At LOAD_ADDR: patch the immediate of `mov $0x1357, %eax` at LOAD_ADDR + 0x40, then jump there.
    const code = assemble(`movl $0x2468, ${LOAD_ADDR + 0x41}\n jmp 2f\n .org 0x40\n2: mov $0x1357, %eax\n hlt`);
    const patch = LOAD_ADDR + 0x40;
    const shared = new SharedCode(MEM);
    // Another VM runs the block first, so it is in the shared table.
    expect(runToHalt(cpuOn(code, shared, patch))[0]).toBe(0x1357);
    const writer = cpuOn(code, shared);
    expect(runToHalt(writer)[0]).toBe(0x2468);
    expect(runToHalt(cpuOn(code, shared, patch))[0]).toBe(0x1357);
    // Running the patched block again in the writer still gives its own code.
    writer.setRegs({ gpr: [0, 0, 0, 0, MEM - 64, 0, 0, 0], eip: patch, eflags: 2 });
    expect(runToHalt(writer)[0]).toBe(0x2468);
  });

  it('a vCPU moved onto another memory (rebind) checks its pages again', () => {
    const shared = new SharedCode(MEM);
    const cpu = cpuOn(loop(0x1357), shared);
    expect(runToHalt(cpu)[3]).toBe(0x1357 * 10);
    const mem = new GuestMemory(MEM);
    mem.u8.set(loop(0x2468), LOAD_ADDR);
    cpu.rebind(mem, shared);
    cpu.setRegs({ gpr: [0, 10, 0, 0, MEM - 64, 0, 0, 0], eip: LOAD_ADDR, eflags: 2 });
    expect(runToHalt(cpu)[3]).toBe(0x2468 * 10);
    expect(() => cpu.rebind(new GuestMemory(MEM * 2), shared)).toThrow(RangeError);
    expect(() => new EmuCpu(new GuestMemory(MEM * 2), shared)).toThrow(RangeError);
  });

  it('a vCPU rebound with pages known to hold the shared bytes uses them without comparing, and still sees its writes', () => {
    const code = assemble(`movl $0x2468, ${LOAD_ADDR + 0x41}\n jmp 2f\n .org 0x40\n2: mov $0x1357, %eax\n hlt`);
    const patch = LOAD_ADDR + 0x40;
    const page = LOAD_ADDR >>> 12;
    const shared = new SharedCode(MEM);
    const cpu = cpuOn(code, shared, patch);
    expect(runToHalt(cpu)[0]).toBe(0x1357);
    // Another memory with the same code, its page vouched for: nothing is compared or decoded.
    const mem = new GuestMemory(MEM);
    mem.u8.set(code, LOAD_ADDR);
    cpu.rebind(mem, shared, [page]);
    const compared = cpu.cache.pagesCompared;
    const decoded = cpu.cache.decoded;
    cpu.setRegs({ gpr: [0, 0, 0, 0, MEM - 64, 0, 0, 0], eip: patch, eflags: 2 });
    expect(runToHalt(cpu)[0]).toBe(0x1357);
    expect(cpu.cache.pagesCompared).toBe(compared);
    expect(cpu.cache.decoded).toBe(decoded);
    // The guest rewrites that page: it runs its new code, not the shared block.
    cpu.setRegs({ gpr: [0, 0, 0, 0, MEM - 64, 0, 0, 0], eip: LOAD_ADDR, eflags: 2 });
    expect(runToHalt(cpu)[0]).toBe(0x2468);
    // Without the voucher the page is compared once, as before.
    const mem2 = new GuestMemory(MEM);
    mem2.u8.set(code, LOAD_ADDR);
    cpu.rebind(mem2, shared);
    const before = cpu.cache.pagesCompared;
    cpu.setRegs({ gpr: [0, 0, 0, 0, MEM - 64, 0, 0, 0], eip: patch, eflags: 2 });
    expect(runToHalt(cpu)[0]).toBe(0x1357);
    expect(cpu.cache.pagesCompared).toBe(before + 1);
  });
});
