/** Directed tests: memory rules, faults, VMM exits, self-modifying code, the budget. */
import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../src/boot/guest-memory.js';
import { EmuCpu, MAX_BLOCK_INSTRS } from '../../src/cpu/emu/index.js';
import { sharedBlockCount } from '../../src/cpu/emu/compiler.js';
import type { VcpuExit } from '../../src/cpu/vcpu.js';
import { DEPRECATED_CASES as deprecated, INVALID_CASES as invalid } from './fault-cases.js';
import { LOAD_ADDR, assemble, cpuWith, haveToolchain } from './helpers.js';

const MEM = 2 * 1024 * 1024;

function fault(exit: VcpuExit): Extract<VcpuExit, { kind: 'fault' }> {
  if (exit.kind !== 'fault') throw new Error(`expected a fault, got ${JSON.stringify(exit)}`);
  return exit;
}

/** Run `src` (after a `nop` at LOAD_ADDR) and return the exit and the faulting offset check data. */
function runAsm(src: string, opts: Parameters<typeof cpuWith>[1] = {}) {
  const code = assemble(src);
  const env = cpuWith(code, opts);
  const exit = env.cpu.run(10_000);
  return { ...env, exit, code };
}

describe('EmuCpu basics without a toolchain', () => {
  it('starts with zero registers and EFLAGS 0x2; setRegs/getRegs round-trip flags', () => {
    const cpu = new EmuCpu(new GuestMemory(MEM));
    expect(cpu.getRegs()).toEqual({ gpr: [0, 0, 0, 0, 0, 0, 0, 0], eip: 0, eflags: 2 });
    cpu.setRegs({ gpr: [1, 2, 3, 4, 5, 6, 7, 0xffffffff], eip: 0x100000, eflags: 0x8d5 | 0x400 });
    expect(cpu.getRegs()).toEqual({ gpr: [1, 2, 3, 4, 5, 6, 7, 0xffffffff], eip: 0x100000, eflags: 0x8d7 | 0x400 });
  });

  it('faults on instruction fetch from page 0 and past the end of memory', () => {
    const cpu = new EmuCpu(new GuestMemory(MEM));
    cpu.setRegs({ gpr: [0, 0, 0, 0, 0, 0, 0, 0], eip: 0x10, eflags: 2 });
    const f = fault(cpu.run(10));
    expect(f).toMatchObject({ cause: 'memory', eip: 0x10, address: 0x10 });
    expect(f.bytes.length).toBe(0);
    cpu.setRegs({ gpr: [0, 0, 0, 0, 0, 0, 0, 0], eip: MEM, eflags: 2 });
    expect(fault(cpu.run(10))).toMatchObject({ cause: 'memory', eip: MEM });
    expect(cpu.instructionsRetired).toBe(0);
  });

  it('runs straight-line code into the end of memory and faults at the first unfetchable instruction', () => {
    const mem = new GuestMemory(MEM);
    mem.u8.fill(0x90, MEM - 8); // 8 nops, then the end of memory
    const cpu = new EmuCpu(mem);
    cpu.setRegs({ gpr: [0, 0, 0, 0, 0, 0, 0, 0], eip: MEM - 8, eflags: 2 });
    const f = fault(cpu.run(100));
    expect(f).toMatchObject({ cause: 'memory', eip: MEM });
    expect(cpu.instructionsRetired).toBe(8);
  });

  it('an instruction straddling the end of memory is a fetch fault at its start, with the bytes that exist', () => {
    const mem = new GuestMemory(MEM);
    mem.u8.set([0xb8, 0x01, 0x02], MEM - 3); // mov eax, imm32 cut short
    const cpu = new EmuCpu(mem);
    cpu.setRegs({ gpr: [0, 0, 0, 0, 0, 0, 0, 0], eip: MEM - 3, eflags: 2 });
    const f = fault(cpu.run(100));
    expect(f).toMatchObject({ cause: 'memory', eip: MEM - 3, address: MEM });
    expect(Array.from(f.bytes)).toEqual([0xb8, 0x01, 0x02]);
  });

  it('executes from the read-only page [0x1000, 0x2000)', () => {
    const mem = new GuestMemory(MEM);
    mem.u8.set([0xb8, 0x2a, 0, 0, 0, 0xf4], 0x1800); // mov eax, 42; hlt
    const cpu = new EmuCpu(mem);
    cpu.setRegs({ gpr: [0, 0, 0, 0, 0, 0, 0, 0], eip: 0x1800, eflags: 2 });
    expect(cpu.run(100)).toEqual({ kind: 'halt' });
    expect(cpu.getRegs().gpr[0]).toBe(42);
    expect(cpu.getRegs().eip).toBe(0x1806);
  });
});

describe.skipIf(!haveToolchain())('faults and exits', () => {
  const memCases: [string, string, number][] = [
    ['read of page 0', 'mov 0x10, %eax', 0x10],
    ['read at address 0', 'mov (%ebx), %al', 0],
    ['write to the read-only page', 'movl $1, 0x1000', 0x1000],
    ['write to the last byte of the read-only page', 'movb $1, 0x1fff', 0x1fff],
    ['word write straddling into the read-only page', 'movw $1, 0x1fff', 0x1fff],
    ['read past the end', `mov ${MEM}, %eax`, MEM],
    ['dword read straddling the end', `mov ${MEM - 2}, %eax`, MEM - 2],
    ['dword write straddling the end', `movl $5, ${MEM - 3}`, MEM - 3],
    ['read at a negative (huge) address', 'mov 0xfffffffc, %eax', 0xfffffffc],
    ['push with ESP in page 1', 'mov $0x1ffe, %esp\n push %eax', 0x1ffa],
    ['SSE store straddling the end', `movups %xmm0, ${MEM - 8}`, MEM - 8],
    ['rep movsb reading page 0', 'mov $0x0ff0, %esi\n mov $0x3000, %edi\n mov $64, %ecx\n rep movsb', 0x0ff0],
  ];
  for (const [name, src, addr] of memCases) {
    it(`memory fault: ${name}`, () => {
      const prelude = assemble('nop');
      const { exit, cpu } = runAsm(`nop\n${src}\nhlt`);
      const f = fault(exit);
      expect(f.cause).toBe('memory');
      expect(f.address).toBe(addr >>> 0);
      // EIP is the faulting instruction (the last one before hlt).
      const lastLen = assemble(src.split('\n').at(-1)!.trim()).length;
      const total = assemble(`nop\n${src}`).length;
      expect(f.eip).toBe(LOAD_ADDR + total - lastLen);
      expect(cpu.getRegs().eip).toBe(f.eip);
      expect(f.bytes[0]).toBe(assemble(src.split('\n').at(-1)!.trim())[0]);
      void prelude;
    });
  }

  it('a faulting push leaves ESP unchanged (precise faults)', () => {
    const { exit, cpu } = runAsm('mov $0x1ffe, %esp\n push %eax');
    expect(fault(exit).cause).toBe('memory');
    expect(cpu.getRegs().gpr[4]).toBe(0x1ffe);
    expect(cpu.instructionsRetired).toBe(1);
  });

  it('rep movsb stopped by a fault has copied the accessible part, registers at the faulting element', () => {
    const { exit, cpu, mem } = runAsm(`mov $${MEM - 4}, %esi\n mov $0x3000, %edi\n mov $16, %ecx\n rep movsb`, {});
    mem.u8.set([1, 2, 3, 4], MEM - 4);
    expect(fault(exit).cause).toBe('memory');
    const r = cpu.getRegs().gpr;
    expect(r[1]).toBe(12); // four bytes copied
    expect(r[6]).toBe(MEM);
  });

  for (const [name, src] of deprecated) {
    it(`deprecated instruction: ${name}`, () => {
      const { exit, cpu } = runAsm(`mov $7, %eax\n${src}\nhlt`);
      const f = fault(exit);
      expect(f.cause).toBe('deprecated-instruction');
      expect(f.eip).toBe(LOAD_ADDR + 5);
      expect(cpu.instructionsRetired).toBe(1);
    });
  }

  for (const [name, bytes] of invalid) {
    it(`invalid opcode: ${name}`, () => {
      const code = new Uint8Array([0x90, ...bytes, 0xf4]);
      const { cpu } = cpuWith(code);
      const f = fault(cpu.run(100));
      expect(f.cause).toBe('invalid-opcode');
      expect(f.eip).toBe(LOAD_ADDR + 1);
      expect(Array.from(f.bytes.slice(0, bytes.length))).toEqual(bytes);
    });
  }

  it('an instruction longer than 15 bytes is a general-protection fault', () => {
    const code = new Uint8Array([...new Array(15).fill(0x66), 0x90, 0xf4]);
    const { cpu } = cpuWith(code);
    expect(fault(cpu.run(10))).toMatchObject({ cause: 'general-protection', eip: LOAD_ADDR });
  });

  it('lock is accepted on read-modify-write memory forms', () => {
    const { exit, mem } = runAsm('movl $5, 0x3000\n lock addl $3, 0x3000\n lock incl 0x3000\n mov $1, %eax\n lock xaddl %eax, 0x3000\n lock btsl $4, 0x3000\n hlt');
    expect(exit).toEqual({ kind: 'halt' });
    expect(mem.readU32(0x3000)).toBe(10 | 16);
  });

  const divs: [string, string][] = [
    ['div r8 by zero', 'mov $0, %bl\n div %bl'],
    ['div r16 by zero', 'xor %bx, %bx\n div %bx'],
    ['div r32 by zero', 'xor %ebx, %ebx\n div %ebx'],
    ['div m32 by zero', 'movl $0, 0x3000\n divl 0x3000'],
    ['div r8 quotient overflow', 'mov $0x1000, %ax\n mov $2, %bl\n div %bl'],
    ['div r16 quotient overflow', 'mov $2, %dx\n mov $2, %bx\n div %bx'],
    ['div r32 quotient overflow', 'mov $1, %edx\n mov $1, %ebx\n div %ebx'],
    ['idiv r8 -128 / -1', 'mov $0xff80, %ax\n mov $-1, %bl\n idiv %bl'],
    ['idiv r16 -32768 / -1', 'mov $0x8000, %ax\n mov $0xffff, %dx\n mov $-1, %bx\n idiv %bx'],
    ['idiv r32 INT_MIN / -1', 'mov $0x80000000, %eax\n mov $-1, %edx\n mov $-1, %ebx\n idiv %ebx'],
    ['idiv r32 by zero', 'mov $5, %eax\n cdq\n xor %ebx, %ebx\n idiv %ebx'],
    ['idiv r32 positive overflow', 'mov $0, %eax\n mov $1, %edx\n mov $2, %ebx\n idiv %ebx'],
    ['aam with base 0', 'mov $25, %al\n aam $0'],
  ];
  for (const [name, src] of divs) {
    it(`#DE: ${name}`, () => {
      const { exit, cpu, code } = runAsm(`${src}\n hlt`);
      const f = fault(exit);
      expect(f.cause).toBe('divide-error');
      const lastLen = assemble(src.split('\n').at(-1)!.trim()).length;
      expect(f.eip).toBe(LOAD_ADDR + code.length - 1 - lastLen);
      expect(cpu.getRegs().eip).toBe(f.eip);
    });
  }

  it('hlt exits with EIP after it; out exits with port, value, size', () => {
    const { cpu } = cpuWith(assemble('mov $0x502, %dx\n mov $0x12345678, %eax\n out %eax, %dx\n out %ax, %dx\n out %al, %dx\n out %al, $0x80\n hlt'));
    expect(cpu.run(100)).toEqual({ kind: 'io-out', port: 0x502, value: 0x12345678, size: 4 });
    expect(cpu.instructionsRetired).toBe(3);
    expect(cpu.run(100)).toEqual({ kind: 'io-out', port: 0x502, value: 0x5678, size: 2 });
    expect(cpu.run(100)).toEqual({ kind: 'io-out', port: 0x502, value: 0x78, size: 1 });
    expect(cpu.run(100)).toEqual({ kind: 'io-out', port: 0x80, value: 0x78, size: 1 });
    expect(cpu.run(100)).toEqual({ kind: 'halt' });
    expect(cpu.getRegs().eip).toBe(LOAD_ADDR + assemble('mov $0x502, %dx\n mov $0x12345678, %eax\n out %eax, %dx\n out %ax, %dx\n out %al, %dx\n out %al, $0x80\n hlt').length);
    expect(cpu.instructionsRetired).toBe(7);
  });

  it('cpuid reports the vendor and i686 + SSE + SSE2; rdtsc returns instructions retired', () => {
    const { cpu } = cpuWith(assemble('xor %eax, %eax\n cpuid\n mov %ebx, 0x3000\n mov %edx, 0x3004\n mov %ecx, 0x3008\n mov $1, %eax\n cpuid\n nop\n nop\n rdtsc\n hlt'));
    expect(cpu.run(1000)).toEqual({ kind: 'halt' });
    const m = (cpu as unknown as { mem: GuestMemory }).mem;
    expect(Buffer.from(m.view(0x3000, 12)).toString('latin1')).toBe('DenaliEmuCPU');
    const r = cpu.getRegs().gpr;
    expect(r[0]).toBe(9); // instructions before rdtsc
    expect(r[2]).toBe(0);
  });

  it('cpuid leaf 1 feature bits', () => {
    const { cpu } = cpuWith(assemble('mov $1, %eax\n cpuid\n hlt'));
    cpu.run(100);
    const r = cpu.getRegs().gpr;
    expect(r[2] & (1 << 26)).not.toBe(0); // SSE2
    expect(r[2] & (1 << 25)).not.toBe(0); // SSE
    expect(r[2] & (1 << 15)).not.toBe(0); // CMOV
    expect(r[2] & (1 << 8)).not.toBe(0); // CX8
    expect(r[1]).toBe(0); // no SSE3 and later
  });

  it('self-modifying code: patching an immediate that was already decoded', () => {
    // Loop 3 times over `add $imm, %eax` while rewriting its imm8 each time.
    const src = `
      xor %eax, %eax
      mov $1, %ecx
    1:
      movb %cl, patch+2
    patch:
      add $0, %eax
      inc %ecx
      cmp $4, %ecx
      jne 1b
      hlt`;
    const { cpu } = cpuWith(assemble(src));
    expect(cpu.run(1000)).toEqual({ kind: 'halt' });
    expect(cpu.getRegs().gpr[0]).toBe(1 + 2 + 3);
    expect(cpu.cache.invalidated).toBeGreaterThan(0);
  });

  it('self-modifying code: a store rewrites the very next instruction of the running block', () => {
    const src = `
      movb $0x40, next    # 0x40 = inc %eax
    next:
      nop
      hlt`;
    const { cpu } = cpuWith(assemble(src));
    expect(cpu.run(1000)).toEqual({ kind: 'halt' });
    expect(cpu.getRegs().gpr[0]).toBe(1);
  });

  it('self-modifying code via rep stosb and an SSE store over a decoded block', () => {
    const src = `
      jmp start
    target:
      mov $1, %eax
      ret
    start:
      call target          # decode and cache target
      mov $target+1, %edi  # overwrite the imm32 with 0x07070707 using rep stosb
      mov $0x07, %al
      mov $4, %ecx
      rep stosb
      call target
      mov %eax, %ebx
      pxor %xmm0, %xmm0    # now zero the immediate with an SSE store
      movss %xmm0, target+1
      call target
      hlt`;
    const { cpu } = cpuWith(assemble(src));
    expect(cpu.run(1000)).toEqual({ kind: 'halt' });
    expect(cpu.getRegs().gpr[3]).toBe(0x07070707);
    expect(cpu.getRegs().gpr[0]).toBe(0);
  });

  it('writes to data next to code do not invalidate the code', () => {
    const src = `
      mov $1000, %ecx
    1:
      incl data
      loop 1b
      hlt
      .balign 64
    data: .long 0`;
    const { cpu, mem } = cpuWith(assemble(src));
    expect(cpu.run(100000)).toEqual({ kind: 'halt' });
    expect(cpu.cache.invalidated).toBe(0);
    const dataAddr = LOAD_ADDR + assemble(src).length - 4;
    expect(mem.readU32(dataAddr)).toBe(1000);
  });

  it('the budget: quantum exits, exact instruction count, overshoot at most one block', () => {
    const src = `
      mov $10000, %ecx
    1:
      add %ecx, %eax
      dec %ecx
      jnz 1b
      hlt`;
    const { cpu } = cpuWith(assemble(src));
    let quanta = 0;
    let last = 0;
    for (;;) {
      const e = cpu.run(100);
      if (e.kind === 'halt') break;
      expect(e.kind).toBe('quantum');
      const step = cpu.instructionsRetired - last;
      expect(step).toBeGreaterThanOrEqual(100);
      expect(step).toBeLessThan(100 + MAX_BLOCK_INSTRS);
      last = cpu.instructionsRetired;
      quanta++;
    }
    expect(cpu.instructionsRetired).toBe(1 + 3 * 10000 + 1);
    expect(quanta).toBeGreaterThan(250);
    expect(cpu.getRegs().gpr[0]).toBe((10000 * 10001) / 2);
    expect(cpu.run(0)).toEqual({ kind: 'quantum' });
  });

  it('a long rep movsd yields to the budget and resumes where it stopped', () => {
    const n = 300000;
    const { cpu, mem } = cpuWith(assemble(`mov $0x100000, %esi\n mov $0x180000, %edi\n mov $${n}, %ecx\n std\n cld\n rep movsb\n hlt`), { memSize: 4 << 20 });
    // Fill with a pattern and mark a code page to force the slow path? Here: the fast path.
    let exits = 0;
    for (;;) {
      const e = cpu.run(1000);
      if (e.kind === 'halt') break;
      exits++;
      if (exits > 1000) throw new Error('no progress');
    }
    expect(mem.u8[0x180000]).toBe(mem.u8[0x100000]);
    expect(cpu.getRegs().gpr[1]).toBe(0);
  });

  it('std; rep movsd/movsb copying an overlapping block upwards (memmove) equals the element loop, fast and slow path', () => {
    for (const [sz, suffix] of [[4, 'l'], [1, 'b']] as const) {
      for (const [shift, count] of [[1, 1000], [3, 77], [4, 5000], [8, 1]]) {
        const src = 0x200000 + 1; // above the code at LOAD_ADDR
        const top = (x: number): number => x + (count - 1) * sz;
        const asm = `mov $${top(src)}, %esi\n mov $${top(src + shift)}, %edi\n mov $${count}, %ecx\n std\n rep movs${suffix}\n cld\n hlt`;
        const results = [0, 1].map((slow) => {
          const { cpu, mem } = cpuWith(assemble(asm), { memSize: 4 << 20 });
          for (let k = 0; k < count * sz + 64; k++) mem.u8[src + k] = (k * 7 + 3) & 0xff;
          if (slow) cpu.invalidateCode(0, 0), (cpu.codePages[(src + shift) >>> 12] = 1); // a "code" page forces the element loop
          const exit = cpu.run(10_000_000);
          expect(exit).toEqual({ kind: 'halt' });
          return { bytes: mem.u8.slice(src - 8, src + count * sz + 64), regs: cpu.getRegs().gpr };
        });
        const expected = new Uint8Array(count * sz + 64);
        for (let k = 0; k < expected.length; k++) expected[k] = (k * 7 + 3) & 0xff;
        expected.copyWithin(shift, 0, count * sz);
        expect(results[0]!.bytes.slice(8)).toEqual(expected);
        expect(results[0]).toEqual(results[1]);
        expect(results[0]!.regs[6]).toBe((src - sz) >>> 0);
        expect(results[0]!.regs[7]).toBe((src + shift - sz) >>> 0);
      }
    }
  });

  it('compiled blocks are shared by CPUs running the same code; memory bounds come from each CPU', () => {
    // A self-loop storing ECX words through EDI (both preset).
    const code = assemble('1: mov %ecx, (%edi)\n add $4, %edi\n dec %ecx\n jnz 1b\n hlt');
    const run = (memSize: number, ecx: number, edi: number) => {
      const env = cpuWith(code, { memSize, gpr: { 1: ecx, 7: edi } });
      env.cpu.compileAfter = 1;
      return { ...env, exit: env.cpu.run(1_000_000) };
    };
    const a = run(2 << 20, 0x100, 0x3000);
    expect(a.exit).toEqual({ kind: 'halt' });
    const held = sharedBlockCount();
    const b = run(4 << 20, 0x100, 0x3000);
    expect(b.exit).toEqual({ kind: 'halt' });
    expect(sharedBlockCount()).toBe(held); // nothing new compiled for the second CPU
    const { gpr, ...rest } = a.cpu.getRegs();
    expect(b.cpu.getRegs()).toMatchObject({ ...rest, gpr: [gpr[0], gpr[1], gpr[2], gpr[3], (4 << 20) - 64, gpr[5], gpr[6], gpr[7]] });
    // The same function, run off the end of a 2 MiB memory: it faults at this CPU's end, exact EIP and count.
    const c = run(2 << 20, 0x1000, (2 << 20) - 8);
    expect(sharedBlockCount()).toBe(held);
    expect(fault(c.exit)).toMatchObject({ cause: 'memory', address: 2 << 20, eip: LOAD_ADDR });
    expect(c.cpu.getRegs().gpr[7]).toBe(2 << 20);
    expect(c.cpu.instructionsRetired).toBe(2 * 4);
  });

  it('decoded blocks are shared by CPUs whose memory holds the same bytes; different bytes are decoded afresh', () => {
    const prog = (k: number) => assemble(`mov $${k}, %eax\n1: add %eax, %ebx\n dec %ecx\n jnz 1b\n hlt`);
    const run = (code: Uint8Array, compileAfter: number) => {
      const env = cpuWith(code, { memSize: 2 << 20, gpr: { 1: 10 } });
      env.cpu.compileAfter = compileAfter;
      return { cpu: env.cpu, exit: env.cpu.run(1_000_000) };
    };
    const a = run(prog(0x1357), 2);
    expect(a.exit).toEqual({ kind: 'halt' });
    expect(a.cpu.getRegs().gpr[3]).toBe(0x1357 * 10);
    expect(a.cpu.cache.decoded).toBeGreaterThan(0);
    // Same bytes at the same address: nothing decoded, every block taken from the first CPU.
    const b = run(prog(0x1357), 2);
    expect(b.exit).toEqual({ kind: 'halt' });
    expect(b.cpu.getRegs()).toEqual(a.cpu.getRegs());
    expect(b.cpu.cache.decoded).toBe(0);
    // (Fewer than the first CPU used: its first block arrives compiled, and its loop runs inside it.)
    expect(b.cpu.cache.reused).toBeGreaterThan(0);
    expect(b.cpu.cache.reused).toBeLessThanOrEqual(a.cpu.cache.decoded + a.cpu.cache.reused);
    // Different immediate (same length, same addresses): the first block differs and is decoded.
    const c = run(prog(0x2468), 2);
    expect(c.cpu.getRegs().gpr[3]).toBe(0x2468 * 10);
    expect(c.cpu.cache.decoded).toBeGreaterThan(0);
    // An interpreter-only CPU given compiled shared blocks still interprets, with the same result.
    const d = run(prog(0x1357), 0);
    expect(d.cpu.getRegs()).toEqual(a.cpu.getRegs());
    expect(d.cpu.cache.decoded).toBe(0);
  });

  it('rep stosb with DF=1 over a code page takes the slow path and yields in chunks', () => {
    const n = 200000;
    const { cpu, mem } = cpuWith(assemble(`mov $${0x100000 + 0x40000}, %edi\n mov $${n}, %ecx\n mov $0x5a, %al\n std\n rep stosb\n cld\n hlt`), { memSize: 4 << 20 });
    let exits = 0;
    for (;;) {
      const e = cpu.run(100);
      if (e.kind === 'halt') break;
      expect(e.kind).toBe('quantum');
      exits++;
    }
    expect(exits).toBeGreaterThanOrEqual(2);
    expect(mem.u8[0x140000]).toBe(0x5a);
    expect(mem.u8[0x140000 - n + 1]).toBe(0x5a);
    expect(mem.u8[0x140000 - n]).not.toBe(0x5a);
    expect(cpu.getRegs().gpr[7]).toBe(0x140000 - n);
  });

  it('ldmxcsr rejects rounding modes other than nearest; stmxcsr reads back 0x1f80', () => {
    const ok = runAsm('stmxcsr 0x3000\n ldmxcsr 0x3000\n hlt');
    expect(ok.exit).toEqual({ kind: 'halt' });
    expect(ok.mem.readU32(0x3000)).toBe(0x1f80);
    const bad = runAsm('movl $0x3f80, 0x3000\n ldmxcsr 0x3000\n hlt');
    expect(fault(bad.exit).cause).toBe('general-protection');
  });

  it('misaligned 16-byte SSE operands raise general-protection; movups does not', () => {
    expect(fault(runAsm('movaps 0x3001, %xmm0\n hlt').exit).cause).toBe('general-protection');
    expect(fault(runAsm('addps 0x3008, %xmm0\n hlt').exit).cause).toBe('general-protection');
    expect(runAsm('movups 0x3001, %xmm0\n addss 0x3001, %xmm0\n hlt').exit).toEqual({ kind: 'halt' });
  });

  it('bound raises general-protection when the index is out of range', () => {
    const ok = runAsm('movl $2, 0x3000\n movl $9, 0x3004\n mov $5, %eax\n bound %eax, 0x3000\n hlt');
    expect(ok.exit).toEqual({ kind: 'halt' });
    const bad = runAsm('movl $2, 0x3000\n movl $9, 0x3004\n mov $10, %eax\n bound %eax, 0x3000\n hlt');
    expect(fault(bad.exit).cause).toBe('general-protection');
  });

  it('segment override prefixes are accepted and flat (all bases 0)', () => {
    const { exit, cpu } = runAsm('movl $0x1234, 0x3000\n mov %es:0x3000, %eax\n mov %fs:0x3000, %ebx\n mov %gs:0x3000, %ecx\n mov %ss:0x3000, %edx\n mov %cs:0x3000, %esi\n mov %ds:0x3000, %edi\n mov %es:0x3000, %ebp\n hlt');
    expect(exit).toEqual({ kind: 'halt' });
    expect(cpu.getRegs().gpr.filter((_, r) => r !== 4)).toEqual([0x1234, 0x1234, 0x1234, 0x1234, 0x1234, 0x1234, 0x1234]);
  });

  it('invalidateCode: the VMM rewriting code behind the CPU takes effect only after invalidation', () => {
    const src = 'mov $1, %eax\n hlt';
    const { cpu, mem } = cpuWith(assemble(src));
    expect(cpu.run(100)).toEqual({ kind: 'halt' });
    expect(cpu.getRegs().gpr[0]).toBe(1);
    mem.u8[LOAD_ADDR + 1] = 2; // the VMM (not the guest) patches the immediate
    cpu.setRegs({ ...cpu.getRegs(), eip: LOAD_ADDR });
    cpu.run(100);
    expect(cpu.getRegs().gpr[0]).toBe(1); // stale decoded block still cached
    cpu.invalidateCode(LOAD_ADDR + 1, 1);
    cpu.setRegs({ ...cpu.getRegs(), eip: LOAD_ADDR });
    cpu.run(100);
    expect(cpu.getRegs().gpr[0]).toBe(2);
    mem.u8[LOAD_ADDR + 1] = 3;
    cpu.flushCodeCache();
    cpu.setRegs({ ...cpu.getRegs(), eip: LOAD_ADDR });
    cpu.run(100);
    expect(cpu.getRegs().gpr[0]).toBe(3);
  });

  it('compiled blocks: faults report the right instruction, SMC inside a compiled loop is seen', () => {
    // A hot loop (compiled after COMPILE_AFTER iterations) that finally loads from page 0.
    const src = `
      mov $100, %ecx
      mov $0x3000, %ebx
    1:
      mov (%ebx), %eax
      add $4, %ebx
      dec %ecx
      jnz 1b
      xor %ebx, %ebx
      mov $50, %ecx
    2:
      add %ecx, %eax
      dec %ecx
      cmp $25, %ecx
      jne 3f
      mov (%ebx), %edx
    3:
      test %ecx, %ecx
      jnz 2b
      hlt`;
    const { cpu } = cpuWith(assemble(src));
    cpu.compileAfter = 2;
    const f = fault(cpu.run(100000));
    expect(f.cause).toBe('memory');
    expect(f.address).toBe(0);
    expect(f.bytes[0]).toBe(0x8b); // mov (%ebx), %edx
    expect(cpu.getRegs().gpr[1]).toBe(25);
    // The jne 3f skips the load inside the compiled loop: skipped instructions are not counted.
    const { cpu: interp } = cpuWith(assemble(src));
    interp.compileAfter = 0;
    expect(fault(interp.run(100000)).eip).toBe(f.eip);
    expect(cpu.instructionsRetired).toBe(interp.instructionsRetired);
    // Registers and EIP are exact at a fault; the flags of a compiled block need not be (README).
    expect(cpu.getRegs().gpr).toEqual(interp.getRegs().gpr);
    expect(cpu.getRegs().eip).toBe(interp.getRegs().eip);
  });

  it('side exits: a forward jcc inside a block leaves it with exact EIP, counts and flags in both engines', () => {
    // Loop body with two forward branches in the middle (one taken every 3rd pass, one never),
    // then a fault after a not-taken side exit.
    const src = `
      mov $30, %ecx
      xor %eax, %eax
      xor %edx, %edx
    1:
      mov %ecx, %ebx
      and $3, %ebx
      cmp $1, %ebx
      je 2f
      add $7, %eax
      cmp $1000, %ecx
      ja 3f
      inc %edx
    2:
      dec %ecx
      jnz 1b
      cmp $5, %eax
      jb 3f
      mov (%ecx), %esi
    3:
      hlt`;
    const results = [0, 1, 2].map((compileAfter) => {
      const { cpu } = cpuWith(assemble(src));
      cpu.compileAfter = compileAfter;
      const f = fault(cpu.run(100000));
      return { f, regs: cpu.getRegs(), retired: cpu.instructionsRetired };
    });
    for (const r of results) {
      expect(r.f.cause).toBe('memory');
      expect(r.f.address).toBe(0);
      expect(r.f.bytes[0]).toBe(0x8b); // mov (%ecx), %esi
      expect(r.regs.gpr[0]).toBe(7 * 22);
      expect(r.regs.gpr[2]).toBe(22);
      expect(r.regs).toEqual(results[0]!.regs);
      expect(r.retired).toBe(results[0]!.retired);
    }
    expect(results[0]!.retired).toBe(3 + 22 * 10 + 8 * 6 + 2);
  });
  it('loop nests: both loops run inside one compiled block with exact counts at any quantum, and a fault in the inner loop has the exact EIP', () => {
    // 6 x 5 inner iterations with a store each; the 28th store's pointer takes the branch to a load from page 0.
    const src = `
      xor %esi, %esi
      mov $6, %ecx
      xor %eax, %eax
      mov $0x3000, %ebx
    1:
      mov $5, %edi
    2:
      add %edi, %eax
      mov %eax, (%ebx)
      add $4, %ebx
      cmp $0x3070, %ebx
      jne 3f
      mov (%esi), %edx
    3:
      dec %edi
      jnz 2b
      xor %ecx, %eax
      dec %ecx
      jnz 1b
      hlt`;
    const results = engineRuns(src, [5, 64, 100000]).map(({ e, cpu, mem }) => ({
      f: fault(e),
      regs: cpu.getRegs(),
      retired: cpu.instructionsRetired,
      stored: Buffer.from(mem.u8.subarray(0x3000, 0x3080)).toString('hex'),
    }));
    for (const r of results) {
      expect(r.f.cause).toBe('memory');
      expect(r.f.address).toBe(0);
      expect(r.f.eip).toBe(results[0]!.f.eip);
      expect(r.regs).toEqual(results[0]!.regs);
      expect(r.retired).toBe(results[0]!.retired);
      expect(r.stored).toBe(results[0]!.stored);
    }
    expect(results[0]!.regs.gpr[3]).toBe(0x3070);
    // 4 set-up instructions; an outer pass is 1 + 5 inner passes of 7 (the taken jne skips the
    // load) + 3; the sixth pass faults on the load of its third inner pass (the 28th).
    expect(results[0]!.retired).toBe(4 + 5 * (1 + 5 * 7 + 3) + 1 + 2 * 7 + 5);
  });
  it('stack window: [ESP + disp] accesses run unchecked only where the whole window is writable and free of code; else every access is checked', () => {
    // The loop block changes no ESP, so its stack accesses are checked once at its entry.
    const src = `
      mov $40, %ecx
      jmp 1f
    1:
      mov %ecx, 8(%esp)
      add 8(%esp), %eax
      mov 4(%esp), %edx
      xor %edx, %eax
      dec %ecx
      jnz 1b
      hlt`;
    const size = 2 << 20;
    // Normal stack; a window past the end of memory (faults on the first store); a stack on the code page.
    for (const esp of [size - 64, size - 10, LOAD_ADDR + 0x40]) {
      const runs = [0, 1].map((compileAfter) => {
        const { cpu } = cpuWith(assemble(src), { memSize: size, gpr: { 4: esp } });
        cpu.compileAfter = compileAfter;
        const exit = cpu.run(100000);
        return { exit, regs: cpu.getRegs(), retired: cpu.instructionsRetired };
      });
      expect(runs[1]!.exit).toEqual(runs[0]!.exit);
      expect(runs[1]!.regs.gpr).toEqual(runs[0]!.regs.gpr);
      expect(runs[1]!.regs.eip).toBe(runs[0]!.regs.eip);
      expect(runs[1]!.retired).toBe(runs[0]!.retired);
      if (esp === size - 10) expect(fault(runs[1]!.exit)).toMatchObject({ cause: 'memory', address: size - 2 });
      else expect(runs[1]!.exit).toEqual({ kind: 'halt' });
    }
  });
  it('loops whose back edges cross (a two-headed CRC loop) run as one switch block: same registers, flags and counts as the interpreter at any quantum', () => {
    const src = `
      mov $0x1d0f, %eax
      mov $200, %ecx
      jmp 2f
    1:
      add %eax, %eax
      dec %ecx
      jz 3f
    2:
      test $0x8000, %eax
      je 1b
      add %eax, %eax
      xor $0x1021, %eax
      movzwl %ax, %eax
      dec %ecx
      jnz 2b
    3:
      hlt`;
    const results = engineRuns(src, [7, 64, 100000]).map(({ e, cpu }) => ({ e, regs: cpu.getRegs(), retired: cpu.instructionsRetired }));
    for (const r of results) {
      expect(r.e).toEqual({ kind: 'halt' });
      expect(r.regs).toEqual(results[0]!.regs);
      expect(r.retired).toBe(results[0]!.retired);
    }
  });
});

/** `src` run to its end on the interpreter and on the block compiler (after 1 and 2 executions), in quanta of each size. */
function engineRuns(src: string, quanta: number[]): { e: VcpuExit; cpu: EmuCpu; mem: GuestMemory }[] {
  return [0, 1, 2].flatMap((compileAfter) =>
    quanta.map((quantum) => {
      const { cpu, mem } = cpuWith(assemble(src));
      cpu.compileAfter = compileAfter;
      let e = cpu.run(quantum);
      while (e.kind === 'quantum') e = cpu.run(quantum);
      return { e, cpu, mem };
    }),
  );
}
