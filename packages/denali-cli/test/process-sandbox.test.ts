/**
 * The process backend's threat model (SPECIFICATION.md, "Process backend"): each escape
 * attempt ends only the attacking VM with a one-line report, or stays confined to that VM's own
 * process; a neighbour VM on the same Yakima keeps running and finishes with its right output.
 * Also: faults report the same causes as the emulator.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readImageFile, type DenaliImage } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import { MemoryConsoleSink, probeProcessBackend, ProcessVcpu, Yakima, type Backend, type Vm } from '@denali/yakima';
import { cService, root } from './helpers.js';

const probe = probeProcessBackend();
if (!probe.usable) console.log(`process backend tests skipped: ${probe.reason}`);

const prog = (body: string): string => `#include <stdio.h>
int main(void) {
  printf("attacker starts\\n");
  ${body}
  printf("ESCAPED\\n");
  return 0;
}`;

/** Escape attempts: name -> C body. */
const ATTACKS: Record<string, string> = {
  'int 0x80 (i386 fork)': `__asm__ volatile("int $0x80" :: "a"(2));`,
  'syscall from compatibility mode': `__asm__ volatile(".byte 0x0f, 0x05" :: "a"(57));`,
  'sysenter': `__asm__ volatile(".byte 0x0f, 0x34" :: "a"(2));`,
  'far jump to 64-bit code + raw write syscall': `__asm__ volatile(
    "ljmp $0x33, $1f\\n"
    "1: .byte 0xb8, 0x01, 0, 0, 0\\n" /* mov eax, 1 (write) */
    ".byte 0xbf, 0x01, 0, 0, 0\\n"    /* mov edi, 1 */
    ".byte 0x0f, 0x05\\n"             /* syscall */
    ".byte 0xeb, 0xfe\\n");`,
  'fork attempt from 64-bit code': `__asm__ volatile(
    "ljmp $0x33, $1f\\n"
    "1: .byte 0xb8, 0x39, 0, 0, 0\\n" /* mov eax, 57 (fork) */
    ".byte 0x0f, 0x05\\n"
    ".byte 0xeb, 0xfe\\n");`,
  'loading the flat data selector and writing through it': `__asm__ volatile("mov %0, %%ds\\n movl $1, 0x100000" :: "r"(0x2b));`,
};

/** Faults whose cause must match the emulator's: name -> C body. */
const FAULTS: Record<string, string> = {
  'read of page 0': `__asm__ volatile("movl 0x10, %%eax" ::: "eax");`,
  'read past the end of memory': `__asm__ volatile("movl 0x7ff00000, %%eax" ::: "eax");`,
  'write to the read-only virtual register page': `__asm__ volatile("movl $1, 0x1000");`,
  'jump to page 0': `__asm__ volatile("call *%0" :: "r"(0x10));`,
  'invalid opcode (ud2)': `__asm__ volatile("ud2");`,
  'divide error': `__asm__ volatile("xor %%ecx, %%ecx\\n div %%ecx" ::: "eax", "ecx", "edx");`,
  'deprecated instruction (cli)': `__asm__ volatile("cli");`,
  'deprecated instruction (in)': `__asm__ volatile("in $0x60, %%al" ::: "eax");`,
  'deprecated instruction (int3)': `__asm__ volatile("int3");`,
};

const images = new Map<string, DenaliImage>();
let sha256: DenaliImage;

async function build(name: string, body: string): Promise<DenaliImage> {
  const dir = await cService('attack', prog(body));
  const r = await buildService(dir, { out: join(dir, 'a.dni'), quiet: true });
  return readImageFile(r.imagePath);
}

beforeAll(async () => {
  if (!probe.usable) return;
  const r = await buildService(join(root, 'examples', 'sha256'), { out: join(await (await import('node:fs/promises')).mkdtemp('/tmp/denali-sb-'), 's.dni'), quiet: true });
  sha256 = await readImageFile(r.imagePath);
  const spin = await cService('spin', `int main(void) { for (;;) __asm__ volatile(""); }`);
  images.set('spin', await readImageFile((await buildService(spin, { out: join(spin, 's.dni'), quiet: true })).imagePath));
  for (const [name, body] of [...Object.entries(ATTACKS), ...Object.entries(FAULTS)]) images.set(name, await build(name, body));
}, 180_000);

async function runBoth(backend: Backend, attacker: DenaliImage): Promise<{ attacker: Vm; neighbour: Vm; log: string[]; sink: MemoryConsoleSink }> {
  const sink = new MemoryConsoleSink();
  const log: string[] = [];
  const y = new Yakima({ backend, sink, log: (l) => log.push(l) });
  try {
    const neighbour = y.addVm(sha256);
    const a = y.addVm(attacker);
    await y.run();
    return { attacker: a, neighbour, log, sink };
  } finally {
    await y.close();
  }
}

describe.skipIf(!probe.usable)('process backend: escape attempts end only the attacking VM', () => {
  it.each(Object.keys(ATTACKS))('%s', async (name) => {
    const expected = await readFile(join(root, 'examples', 'sha256', 'expected-output.txt'), 'utf8');
    const r = await runBoth('process', images.get(name)!);
    expect(r.sink.text(r.neighbour.name)).toBe(expected);
    expect([r.neighbour.state, r.neighbour.exitStatus]).toEqual(['exited', 0]);
    expect(r.sink.text(r.attacker.name)).not.toContain('ESCAPED');
    expect(r.attacker.state).toBe('faulted');
    expect(r.log).toHaveLength(1);
    expect(r.log[0]).toMatch(/^vm attack#2 faulted at eip 0x[0-9a-f]{8}: [a-z-]+ \(.+\) \[[0-9a-f ]*\]$/);
    if (!name.startsWith('loading')) expect(r.attacker.fault!.cause).toBe('deprecated-instruction');
  });

  it('a spinning VM is preempted each quantum, its CPU time is accounted, and its neighbour finishes', async () => {
    const sink = new MemoryConsoleSink();
    const y = new Yakima({ backend: 'process', sink });
    try {
      const spinner = y.addVm(images.get('spin')!);
      const neighbour = y.addVm(sha256);
      const done = y.run();
      const t0 = performance.now();
      while ((!neighbour.finished || spinner.stats.preemptions < 3) && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 10));
      expect([neighbour.state, neighbour.exitStatus]).toEqual(['exited', 0]);
      expect(spinner.stats.preemptions).toBeGreaterThanOrEqual(3);
      expect((spinner.vcpu as ProcessVcpu).cpuTimeMicros()).toBeGreaterThan(1000);
      y.stop();
      await done;
      expect(spinner.state).toBe('stopped');
    } finally {
      await y.close();
    }
  });

  it.each([
    ['an unknown exit kind', { kind: 0xdeadbeef }, 'unknown-exit'],
    ['an out of size 3', { kind: 2, size: 3 }, 'unknown-exit'],
    ['an unknown fault cause', { kind: 5, cause: 999 }, 'unknown-exit'],
    ['an out to an unknown hypercall port', { kind: 2, size: 4, port: 0x500 + 0x3ff }, 'bad-hypercall'],
  ] as const)('garbage in the control page (%s) faults only that VM', async (_what, fields, cause) => {
    const sink = new MemoryConsoleSink();
    const log: string[] = [];
    const y = new Yakima({ backend: 'process', sink, log: (l) => log.push(l) });
    try {
      const victim = y.addVm(images.get('spin')!);
      const neighbour = y.addVm(sha256);
      const done = y.run();
      // Stand in for guest code that found its control page: scribble garbage and post it.
      const ctl = (victim.vcpu as unknown as { ctl: DataView }).ctl;
      let t0 = performance.now();
      // Once it runs guest code (after its first quantum), not while the tender starts up.
      while (victim.stats.preemptions === 0 && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 5));
      t0 = performance.now();
      while (!victim.finished && performance.now() - t0 < 10_000) {
        for (let i = 4; i < 0x100; i += 4) ctl.setUint32(i, (Math.random() * 2 ** 32) >>> 0, true);
        const f = fields as { kind: number; size?: number; cause?: number; port?: number };
        ctl.setUint32(0x04, f.kind, true);
        if (f.size !== undefined) ctl.setUint32(0x10, f.size, true);
        if (f.cause !== undefined) ctl.setUint32(0x14, f.cause, true);
        if (f.port !== undefined) ctl.setUint32(0x08, f.port, true);
        Atomics.store(new Int32Array(ctl.buffer), 0, 1);
        await new Promise((r) => setTimeout(r, 20));
      }
      while (!neighbour.finished && performance.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 10));
      expect(victim.state).toBe('faulted');
      expect(victim.fault!.cause).toBe(cause);
      expect(log.filter((l) => l.startsWith('vm spin#1 faulted'))).toHaveLength(1);
      expect([neighbour.state, neighbour.exitStatus]).toEqual(['exited', 0]);
      await done;
    } finally {
      await y.close();
    }
  });
});

describe.skipIf(!probe.usable)('process backend: faults report the same cause as the emulator', () => {
  it.each(Object.keys(FAULTS))('%s', async (name) => {
    const image = images.get(name)!;
    const [proc, emu] = [await runBoth('process', image), await runBoth('emu', image)];
    expect(proc.attacker.state).toBe('faulted');
    expect(proc.attacker.fault!.cause).toBe(emu.attacker.fault!.cause);
    expect(proc.attacker.fault!.eip).toBe(emu.attacker.fault!.eip);
    expect(proc.sink.text(proc.attacker.name)).toBe(emu.sink.text(emu.attacker.name));
    expect([proc.neighbour.state, proc.neighbour.exitStatus]).toEqual(['exited', 0]);
  });
});
