import { afterAll, describe, expect, it } from 'vitest';
import { LAYOUT } from '@denali/image-format';
import { dispatchHypercall } from '../../src/control/hypercalls.js';
import { Vm } from '../../src/control/vm.js';
import { MemoryConsoleSink } from '../../src/devices/console-sink.js';
import { KvmVcpu, KVM_INSTRUCTIONS_PER_MICROSECOND } from '../../src/cpu/kvm/kvm-vcpu.js';
import { allocateGuestMemory } from '../../src/cpu/kvm/kvm-memory.js';
import { Reg, type VcpuExit } from '../../src/cpu/vcpu.js';
import { bootOnKvm, helloCode, HLT, kvmUsable, le32, movDx, movEax, OUT_DX_EAX, rawImage, SPIN } from './helpers.js';

const vcpus: KvmVcpu[] = [];
afterAll(() => vcpus.forEach((v) => v.destroy()));

/** A KVM vCPU booted from raw machine code at 1 MiB (ESP = top of memory, EIP = 1 MiB). */
function vcpuFor(code: number[], memorySize = 2 << 20): KvmVcpu {
  const boot = bootOnKvm(rawImage('t', code, memorySize));
  const v = new KvmVcpu(boot.memory);
  v.setRegs(boot.regs);
  vcpus.push(v);
  return v;
}

/** Instructions for a quantum of `ms` milliseconds. */
const ms = (n: number): number => n * 1000 * KVM_INSTRUCTIONS_PER_MICROSECOND;

function expectFault(e: VcpuExit, cause: string): Extract<VcpuExit, { kind: 'fault' }> {
  expect(e.kind).toBe('fault');
  if (e.kind !== 'fault') throw new Error('not a fault');
  expect({ cause: e.cause, detail: e.detail }).toMatchObject({ cause });
  return e;
}

describe.skipIf(!kvmUsable)('KVM vCPU, synchronous run', () => {
  it('boots a raw image: a CONSOLE_WRITE hypercall exits as io-out and is dispatched by the shared code, then hlt halts', () => {
    const boot = bootOnKvm(rawImage('hello', helloCode('hello from kvm\n')));
    const vcpu = new KvmVcpu(boot.memory);
    vcpus.push(vcpu);
    vcpu.setRegs(boot.regs);
    expect(vcpu.getRegs()).toEqual(boot.regs);
    const exit = vcpu.run(ms(100));
    expect(exit).toEqual({ kind: 'io-out', port: 0x502, value: 0x100100, size: 4 });
    expect(vcpu.getRegs().eip).toBe(LAYOUT.IMAGE_BASE + 10); // past `out dx, eax`
    const sink = new MemoryConsoleSink();
    const vm = new Vm(1, 'hello', rawImage('hello', []).manifest, boot, vcpu, sink, () => {});
    expect(dispatchHypercall(vm, exit.kind === 'io-out' ? exit.port : 0, 0x100100, 4)).toEqual({ action: 'continue' });
    expect(sink.text('hello')).toBe('hello from kvm\n');
    expect(boot.memory.readU32(0x100108)).toBe(15); // DONE written by Yakima, seen by the guest
    expect(vcpu.run(ms(100))).toEqual({ kind: 'halt' });
    expect(vcpu.getRegs().eip).toBe(LAYOUT.IMAGE_BASE + 11);
  });

  it('the guest sees the read-only virtual registers written at boot', () => {
    // mov eax, [0x1000]; mov ebx, [0x1008]; hlt
    const v = vcpuFor([0xa1, ...le32(0x1000), 0x8b, 0x1d, ...le32(0x1008), HLT]);
    expect(v.run(ms(100))).toEqual({ kind: 'halt' });
    expect(v.getRegs().gpr[Reg.EAX]).toBe(0x494c4e44); // "DNLI"
    expect(v.getRegs().gpr[Reg.EBX]).toBe(2 << 20);
  });

  it('a null-pointer read faults with cause memory at address 0 (eip = the instruction)', () => {
    const v = vcpuFor([0xa1, 0, 0, 0, 0, HLT]); // mov eax, [0]
    const f = expectFault(v.run(ms(100)), 'memory');
    expect(f.address).toBe(0);
    expect(f.detail).toBe('read of 4 bytes at 0x0');
    expect(f.eip).toBe(LAYOUT.IMAGE_BASE);
    expect(Array.from(f.bytes.slice(0, 5))).toEqual([0xa1, 0, 0, 0, 0]);
  });

  it('a write to the read-only page 0x1000 faults with cause memory', () => {
    const v = vcpuFor([0xc7, 0x05, ...le32(0x1000), ...le32(42), HLT]); // mov dword [0x1000], 42
    const f = expectFault(v.run(ms(100)), 'memory');
    expect(f.address).toBe(0x1000);
    expect(f.detail).toBe('write of 4 bytes at 0x1000');
    // KVM completes an MMIO write before exiting; the backend finds the instruction again.
    expect(f.eip).toBe(LAYOUT.IMAGE_BASE);
    expect(Array.from(f.bytes.slice(0, 2))).toEqual([0xc7, 0x05]);
    expect(v.memory.readU32(0x1000)).toBe(0x494c4e44); // unchanged
  });

  it('null-pointer writes through a register, a push with a bad stack and a rep stos are located exactly', () => {
    // 0: nop; 1: xor ebx, ebx; 3: mov [ebx+8], eax; 6: hlt
    const st = expectFault(vcpuFor([0x90, 0x31, 0xdb, 0x89, 0x43, 0x08, HLT]).run(ms(100)), 'memory');
    expect({ eip: st.eip, address: st.address, detail: st.detail }).toEqual({ eip: LAYOUT.IMAGE_BASE + 3, address: 8, detail: 'write of 4 bytes at 0x8' });
    // mov esp, 0x1004; push eax
    const push = expectFault(vcpuFor([0xbc, ...le32(0x1004), 0x50, HLT]).run(ms(100)), 'memory');
    expect({ eip: push.eip, address: push.address }).toEqual({ eip: LAYOUT.IMAGE_BASE + 5, address: 0x1000 });
    // mov edi, 0x1ff0; mov ecx, 4; rep stosd — into the read-only page
    const stos = expectFault(vcpuFor([0xbf, ...le32(0x1ff0), 0xb9, ...le32(4), 0xf3, 0xab, HLT]).run(ms(100)), 'memory');
    expect(stos.address).toBe(0x1ff0);
    expect([LAYOUT.IMAGE_BASE + 10, LAYOUT.IMAGE_BASE + 12]).toContain(stos.eip);
  });

  it('an access above the top of memory and a jump to page 0 fault with cause memory', () => {
    const read = vcpuFor([0xa1, ...le32(2 << 20), HLT]);
    expect(expectFault(read.run(ms(100)), 'memory').address).toBe(2 << 20);
    const jump = vcpuFor([...movEax(0), 0xff, 0xe0]); // jmp eax
    const f = expectFault(jump.run(ms(100)), 'memory');
    expect(f.eip).toBe(0);
    expect(f.bytes.length).toBe(0);
  });

  it('`jmp $` is preempted at the end of its quantum', () => {
    const v = vcpuFor(SPIN);
    const overshoots: number[] = [];
    for (const quantumMs of [2, 5, 10]) {
      // Best of three: a loaded host can deschedule the whole process for a while.
      let best = Infinity;
      for (let attempt = 0; attempt < 3; attempt++) {
        const t = performance.now();
        expect(v.run(ms(quantumMs))).toEqual({ kind: 'quantum' });
        const took = performance.now() - t;
        expect(took).toBeGreaterThanOrEqual(quantumMs * 0.9);
        best = Math.min(best, took);
      }
      overshoots.push(best - quantumMs);
      expect(best).toBeLessThan(quantumMs + 20);
    }
    console.log(`KVM preemption: quantum overshoot ${overshoots.map((o) => o.toFixed(2)).join(' / ')} ms for 2 / 5 / 10 ms quanta (best of 3)`);
    expect(v.getRegs().eip).toBe(LAYOUT.IMAGE_BASE);
    expect(v.instructionsRetired).toBeGreaterThan(ms(45));
  });

  it('cli/sti execute natively in the guest (ring 0); in faults as a deprecated instruction', () => {
    const cli = vcpuFor([0xfb, 0xfa, 0xfb, HLT]); // sti; cli; sti; hlt
    expect(cli.run(ms(100))).toEqual({ kind: 'halt' });
    expect((cli.getRegs().eflags >> 9) & 1).toBe(1);
    console.log('KVM: sti/cli in the guest execute (EFLAGS.IF changed to 1); they only affect the VM\'s own virtual CPU, which gets no interrupts');
    const inn = vcpuFor([...movDx(0x502), 0xed, HLT]); // in eax, dx
    const f = expectFault(inn.run(ms(100)), 'deprecated-instruction');
    expect(f.eip).toBe(LAYOUT.IMAGE_BASE + 4);
    expect(f.bytes[0]).toBe(0xed);
  });

  it('CPU exceptions are reported with their cause through Yakima\'s diagnostic IDT', () => {
    const ud = expectFault(vcpuFor([0x90, 0x0f, 0x0b]).run(ms(100)), 'invalid-opcode'); // nop; ud2
    expect(ud.eip).toBe(LAYOUT.IMAGE_BASE + 1);
    expect(Array.from(ud.bytes.slice(0, 2))).toEqual([0x0f, 0x0b]);
    const de = vcpuFor([0x31, 0xc9, 0xf7, 0xf1]); // xor ecx, ecx; div ecx
    const f = expectFault(de.run(ms(100)), 'divide-error');
    expect(f.eip).toBe(LAYOUT.IMAGE_BASE + 2);
    expect(de.getRegs().eip).toBe(LAYOUT.IMAGE_BASE + 2);
    expect(de.getRegs().gpr[Reg.ESP]).toBe(2 << 20); // the exception frame is popped again
    for (const [name, code] of [
      ['int 0x80', [0xcd, 0x80]],
      ['int3', [0xcc]],
    ] as const) {
      const e = vcpuFor([...code]).run(ms(100));
      console.log(`KVM: ${name} ->`, e.kind === 'fault' ? `${e.cause} (${e.detail}) at 0x${e.eip.toString(16)}` : e.kind);
      expect(e.kind).toBe('fault');
    }
  });

  it('an exception with a bad stack pointer is a triple fault', () => {
    const v = vcpuFor([0x31, 0xe4, 0x0f, 0x0b]); // xor esp, esp; ud2
    const e = v.run(ms(100));
    expect(e.kind).toBe('fault');
    if (e.kind === 'fault') expect(['triple-fault', 'memory']).toContain(e.cause);
  });

  it('registers round-trip through setRegs/getRegs and the guest computes with them', () => {
    const v = vcpuFor([0x01, 0xd8, HLT]); // add eax, ebx
    const gpr = [40, 0, 0, 2, 2 << 20, 0x55, 0x66, 0x77];
    v.setRegs({ gpr, eip: LAYOUT.IMAGE_BASE, eflags: 0x2 });
    expect(v.getRegs()).toEqual({ gpr, eip: LAYOUT.IMAGE_BASE, eflags: 0x2 });
    expect(v.run(ms(100))).toEqual({ kind: 'halt' });
    const r = v.getRegs();
    expect(r.gpr).toEqual([42, 0, 0, 2, 2 << 20, 0x55, 0x66, 0x77]);
    expect(r.eip).toBe(LAYOUT.IMAGE_BASE + 3);
  });

  it('after an out exit, moving EIP (as an upcall does) is honoured and the out is not repeated', () => {
    // 0: mov dx, 0x5ff; 4: out dx, eax; 5: hlt; 6: mov eax, 7; 11: out dx, eax; 12: hlt
    const v = vcpuFor([...movDx(0x5ff), OUT_DX_EAX, HLT, ...movEax(7), OUT_DX_EAX, HLT]);
    expect(v.run(ms(100))).toMatchObject({ kind: 'io-out', port: 0x5ff });
    const r = v.getRegs();
    expect(r.eip).toBe(LAYOUT.IMAGE_BASE + 5);
    v.setRegs({ ...r, eip: LAYOUT.IMAGE_BASE + 6 });
    expect(v.run(ms(100))).toEqual({ kind: 'io-out', port: 0x5ff, value: 7, size: 4 });
    expect(v.run(ms(100))).toEqual({ kind: 'halt' });
  });

  it('destroy gives the guest memory back; the GuestMemory then reads as zeros', () => {
    const mem = allocateGuestMemory(2 << 20);
    mem.u8[0x5000] = 9;
    const v = new KvmVcpu(mem);
    v.destroy();
    expect(mem.u8[0x5000]).toBe(0);
    expect(() => v.run(1)).toThrow(/destroy/);
  });
});
