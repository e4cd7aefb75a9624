import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { C_ABI_FLAGS, LAYOUT } from '@denali/image-format';
import { dispatchHypercall } from '../../src/control/hypercalls.js';
import { Vm } from '../../src/control/vm.js';
import { MemoryConsoleSink } from '../../src/devices/console-sink.js';
import { KvmVcpu } from '../../src/cpu/kvm/kvm-vcpu.js';
import { probeKvm } from '../../src/cpu/kvm/probe.js';
import type { VcpuExit } from '../../src/cpu/vcpu.js';
import { bootOnKvm, kvmUsable, rawImage } from './helpers.js';

/** A freestanding C guest: prints fib(30) with CONSOLE_WRITE; with SSE, also a double computation. */
const SOURCE = `
struct console_args { const char *buf; unsigned len, done, eof; };
static void hypercall(unsigned n, void *args) {
  __asm__ volatile("outl %0, %w1" : : "a"(args), "Nd"((unsigned short)(0x500 + n)) : "memory");
}
static char out[64];
static int put(int j, unsigned v) {
  char tmp[16]; int k = 0;
  do { tmp[k++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (k) out[j++] = tmp[--k];
  out[j++] = '\\n';
  return j;
}
static unsigned fib(unsigned n) { unsigned a = 0, b = 1; while (n--) { unsigned t = a + b; a = b; b = t; } return a; }
#ifdef WITH_SSE
static volatile double seed = 1.25;
#endif
void _start(void) {
  int j = put(0, fib(30));
#ifdef WITH_SSE
  double x = seed;
  for (int i = 0; i < 5; i++) x = x * x / 1.5 + 0.5;
  j = put(j, (unsigned)(x * 1000.0));
#endif
  struct console_args a = { out, (unsigned)j, 0, 0 };
  hypercall(2, &a);
  __asm__ volatile("hlt");
  for (;;) {}
}
`;

function toolchain(): string | undefined {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    execFileSync('ld', ['--version'], { stdio: 'ignore' });
    execFileSync('objcopy', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'gcc, ld or objcopy missing';
  }
}

/** Compile and link SOURCE at 1 MiB; returns the flat binary and the entry point. */
function build(dir: string, sse: boolean): { bin: Uint8Array; entry: number } {
  const c = join(dir, 'g.c');
  writeFileSync(c, SOURCE);
  const o = join(dir, 'g.o');
  const elf = join(dir, 'g.elf');
  execFileSync('gcc', [...C_ABI_FLAGS, '-O2', '-c', ...(sse ? ['-DWITH_SSE'] : []), '-o', o, c]);
  execFileSync('ld', ['-m', 'elf_i386', '-Ttext=0x100000', '-e', '_start', '-o', elf, o]);
  execFileSync('objcopy', ['-O', 'binary', elf, join(dir, 'g.bin')]);
  const nm = execFileSync('nm', [elf], { encoding: 'utf8' });
  const entry = parseInt(/^([0-9a-f]+) T _start$/m.exec(nm)![1]!, 16);
  return { bin: readFileSync(join(dir, 'g.bin')), entry };
}

const missing = toolchain();
if (missing) console.log(`C guest tests skipped: ${missing}`);
const probe = probeKvm();
const pvm = probe.usable && probe.note !== undefined;

describe.skipIf(!kvmUsable || missing !== undefined)('gcc-compiled freestanding C guests on KVM', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kvm-c-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function runGuest(sse: boolean): { text: string; exits: VcpuExit[] } {
    const { bin, entry } = build(dir, sse);
    const image = rawImage('cguest', bin, 4 << 20, entry);
    const boot = bootOnKvm(image);
    const vcpu = new KvmVcpu(boot.memory);
    vcpu.setRegs(boot.regs);
    const sink = new MemoryConsoleSink();
    const vm = new Vm(1, 'cguest', image.manifest, boot, vcpu, sink, () => {});
    const exits: VcpuExit[] = [];
    try {
      for (let i = 0; i < 1000; i++) {
        const e = vcpu.run(500_000);
        if (e.kind === 'quantum') continue;
        exits.push(e);
        if (e.kind !== 'io-out') break;
        dispatchHypercall(vm, e.port, e.value, e.size);
      }
    } finally {
      vcpu.destroy();
    }
    return { text: sink.text('cguest'), exits };
  }

  it('integer C code prints fib(30) through CONSOLE_WRITE and halts', () => {
    const { text, exits } = runGuest(false);
    expect(exits.map((e) => e.kind)).toEqual(['io-out', 'halt']);
    expect(text).toBe('832040\n');
    expect(LAYOUT.IMAGE_BASE).toBe(0x100000);
  });

  if (pvm) console.log('SSE2 C guest test skipped: this host runs 32-bit guests in the kernel emulator (kvm-pvm), which lacks SSE arithmetic');
  it.skipIf(pvm)('SSE2 floating point (-mfpmath=sse) works natively in the guest', () => {
    let x = 1.25;
    for (let i = 0; i < 5; i++) x = (x * x) / 1.5 + 0.5;
    const { text, exits } = runGuest(true);
    expect(exits.map((e) => e.kind)).toEqual(['io-out', 'halt']);
    expect(text).toBe(`832040\n${Math.trunc(x * 1000) >>> 0}\n`);
  });
});
