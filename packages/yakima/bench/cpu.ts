/**
 * `pnpm bench:cpu`: CPU-backend numbers for the closing note, one table.
 *
 *  1. Null hypercall round trip (a CONSOLE_WRITE of 0 bytes: guest `out` -> Yakima's dispatch ->
 *     guest) on the emulator, on KVM synchronously on the main thread, and on KVM through a
 *     worker (`runAsync`, as Yakima runs KVM VMs); plus raw baselines without Yakima: a loop of
 *     `out` instructions in machine code, counted as exits per second.
 *  2. VM-to-VM context switch time vs. number of VMs (paper Figure 4): N VMs each looping
 *     `idle(0)` (yield) so that Yakima switches between them; best case (no memory touched)
 *     and worst case (each VM first writes one word per 64-byte line of its own 64 KiB buffer;
 *     printed including the walk, and next to it the walk's own cost measured with a single
 *     VM and the difference). Guests
 *     acknowledge the timer interrupt before each idle (idle returns at once while one is pending).
 *  3. Compute speed on examples/sha256 (built with ./bin/denali): the emulator and KVM vs. the
 *     same sha256.c compiled freestanding and run natively as a 32-bit host process.
 *  4. Boot time of examples/hello: image load to first console byte.
 *  5. Idle httpd VMs on the process backend (--idle-vms N, default 1000; the issue's goal is
 *     10,000): boot N examples/httpd VMs on one Yakima with a network, wait until every one
 *     idles, then report boot time, host memory per VM and CPU used while all idle.
 *
 * Options: --quick (fewer iterations), --max-vms N (default 1000), --kvm-max-vms N (default 64),
 *          --only 1..5 (one section), --idle-vms N, --process-threads N (VMs in flight).
 * Every row prints "n/a (reason)" when it cannot run here.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { C_ABI_FLAGS, LAYOUT, readImageFile, type DenaliImage } from '@denali/image-format';
import { createBootImage } from '../src/boot/boot-image.js';
import { GuestMemory } from '../src/boot/guest-memory.js';
import { dispatchHypercall } from '../src/control/hypercalls.js';
import { Vm } from '../src/control/vm.js';
import { Yakima, type Backend } from '../src/control/yakima.js';
import { MemoryConsoleSink } from '../src/devices/console-sink.js';
import { EmuCpu } from '../src/cpu/emu/index.js';
import { probeKvm } from '../src/cpu/kvm/probe.js';
import { probeProcessBackend } from '../src/cpu/process/probe.js';
import { rawImage } from '../test/kvm/helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../../..');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const optNum = (name: string, def: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const MAX_VMS = optNum('--max-vms', 1000);
const KVM_MAX_VMS = optNum('--kvm-max-vms', 64);
const PROCESS_MAX_VMS = optNum('--process-max-vms', 256);

const probe = probeKvm();
const kvmWhy = probe.usable ? null : probe.reason;
const kvmKind = probe.usable ? (probe.native ? 'KVM (hardware virtualization)' : 'KVM on kvm-pvm: 32-bit guest code is emulated by the host kernel') : '';

type Row = [string, string, string];
const rows: Row[] = [];
const row = (section: string, what: string, value: string): void => {
  rows.push([section, what, value]);
  console.log(`  ${what}: ${value}`);
};
async function attempt(section: string, what: string, f: () => Promise<string> | string): Promise<void> {
  try {
    row(section, what, await f());
  } catch (e) {
    row(section, what, `n/a (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})`);
  }
}
const procProbe = probeProcessBackend();
const needProcess = (): void => {
  if (!procProbe.usable) throw new Error(`process backend not usable: ${procProbe.reason}`);
};
const needKvm = (): void => {
  if (kvmWhy) throw new Error(`KVM not usable: ${kvmWhy}`);
};
const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const fmtUs = (us: number): string => (us >= 100 ? us.toFixed(0) : us >= 10 ? us.toFixed(1) : us.toFixed(2));

// ------------------------------------------------------------------ guests in machine code
const BASE = LAYOUT.IMAGE_BASE;
const ARGS = BASE + 0x100; // hypercall argument block (zeros: CONSOLE_WRITE of 0 bytes / idle(0))
const BUF = BASE + 0x10000;

/** mov ecx, n; mov eax, ARGS; mov dx, port; L: out dx, eax; dec ecx; jnz L; hlt */
function hypercallLoop(n: number, port: number): number[] {
  const code = [0xb9, ...le32(n), 0xb8, ...le32(ARGS), 0x66, 0xba, port & 0xff, port >> 8, 0xef, 0x49, 0x75, 0xfc, 0xf4];
  const out = new Array<number>(0x200).fill(0);
  out.splice(0, code.length, ...code);
  out.splice(ARGS - BASE, 4, ...le32(ARGS + 0x80)); // CONSOLE_ARGS.BUF: a valid address; LEN 0
  return out;
}

/**
 * mov ecx, n; L: [walk: mov esi, BUF; W: add [esi], ecx; add esi, 64; cmp esi, BUF+walk; jb W]
 * xor eax, eax; xchg [PENDING], eax; mov eax, ARGS; mov dx, 0x501 (IDLE); out dx, eax; dec ecx; jnz L; hlt
 */
function yieldLoop(n: number, walkBytes: number): number[] {
  const body: number[] = [];
  if (walkBytes) body.push(0xbe, ...le32(BUF), 0x01, 0x0e, 0x83, 0xc6, 0x40, 0x81, 0xfe, ...le32(BUF + walkBytes), 0x72, 0xf3);
  // Acknowledge pending virtual interrupts (xor eax, eax; xchg [PENDING], eax): idle returns at once while any is pending.
  body.push(0x31, 0xc0, 0x87, 0x05, ...le32(LAYOUT.VREG_RW_BASE + 4));
  body.push(0xb8, ...le32(ARGS), 0x66, 0xba, 0x01, 0x05, 0xef, 0x49);
  const code = [0xb9, ...le32(n), ...body, 0x75, (-(body.length + 2)) & 0xff, 0xf4];
  const out = new Array<number>(0x200).fill(0);
  out.splice(0, code.length, ...code);
  return out;
}

/** 2 MiB per VM (the minimum): the code page at 1 MiB, the walk buffer at 1 MiB + 64 KiB, the stack at the top. */
const VM_MEMORY = 2 << 20;
const image = (name: string, code: number[]): DenaliImage => rawImage(name, code, VM_MEMORY);

/** Run all VMs on a fresh Yakima; returns the wall time of `run` in ms. */
async function timeYakima(backend: Backend, images: DenaliImage[], opts: { quantum?: number } = {}): Promise<{ ms: number; vms: Vm[] }> {
  const y = new Yakima({ backend, kvmThreads: 1, sink: new MemoryConsoleSink(), quantumInstructions: opts.quantum });
  const vms = images.map((img) => y.addVm(img));
  const t = performance.now();
  await y.run();
  const ms = performance.now() - t;
  await y.close();
  for (const vm of vms) if (vm.state !== 'exited') throw new Error(`${vm.name} ${vm.state}${vm.fault ? `: ${vm.fault.cause} ${vm.fault.detail}` : ''}`);
  return { ms, vms };
}

// ------------------------------------------------------------------ 1. hypercalls
async function hypercalls(): Promise<void> {
  console.log('1. null hypercall round trip');
  const S = 'null hypercall';
  const N = quick ? 20_000 : 100_000;
  await attempt(S, 'emulator, Yakima (CONSOLE_WRITE of 0 bytes)', async () => {
    await timeYakima('emu', [image('hc', hypercallLoop(1000, 0x502))]);
    const { ms } = await timeYakima('emu', [image('hc', hypercallLoop(N, 0x502))]);
    return `${fmtUs((ms * 1000) / N)} µs`;
  });
  await attempt(S, 'KVM sync on the main thread (KvmVcpu.run + dispatch)', async () => {
    needKvm();
    const { KvmVcpu, allocateGuestMemory } = await import('../src/cpu/kvm/index.js');
    const n = quick ? 5000 : 20_000;
    const img = image('hc', hypercallLoop(n + 1000, 0x502));
    const boot = createBootImage(img, { vmId: 1, allocateMemory: allocateGuestMemory });
    const v = new KvmVcpu(boot.memory);
    v.setRegs(boot.regs);
    const vm = new Vm(1, 'hc', img.manifest, boot, v, new MemoryConsoleSink(), () => {});
    let count = 0, t = 0;
    for (;;) {
      const e = v.run(1e9);
      if (e.kind === 'halt') break;
      if (e.kind !== 'io-out') throw new Error(JSON.stringify(e));
      dispatchHypercall(vm, e.port, e.value, e.size);
      if (++count === 1000) t = performance.now();
    }
    const us = ((performance.now() - t) * 1000) / n;
    v.destroy();
    return `${fmtUs(us)} µs (${kvmKind})`;
  });
  await attempt(S, 'KVM via worker thread (Yakima, runAsync)', async () => {
    needKvm();
    const n = quick ? 5000 : 20_000;
    await timeYakima('kvm', [image('hc', hypercallLoop(500, 0x502))]);
    const { ms } = await timeYakima('kvm', [image('hc', hypercallLoop(n, 0x502))]);
    return `${fmtUs((ms * 1000) / n)} µs`;
  });
  await attempt(S, 'process backend, Yakima (runAsync + dispatch), mean', async () => {
    needProcess();
    const n = quick ? 20_000 : 100_000;
    await timeYakima('process', [image('hc', hypercallLoop(2000, 0x502))]);
    const { ms } = await timeYakima('process', [image('hc', hypercallLoop(n, 0x502))]);
    return `${fmtUs((ms * 1000) / n)} µs`;
  });
  await attempt(S, 'process backend, one round trip (ProcessVcpu.runAsync + dispatch), median / p99', async () => {
    needProcess();
    const { ProcessBackend, allocateSharedGuestMemory } = await import('../src/cpu/process/index.js');
    const n = quick ? 20_000 : 100_000;
    const img = image('hc', hypercallLoop(n + 2000, 0x502));
    const backend = new ProcessBackend({ threads: 1 });
    await backend.start();
    const boot = createBootImage(img, { vmId: 1, allocateMemory: allocateSharedGuestMemory });
    const v = backend.createVcpu(boot.memory);
    v.setRegs(boot.regs);
    const vm = new Vm(1, 'hc', img.manifest, boot, v, new MemoryConsoleSink(), () => {});
    const samples = new Float64Array(n);
    let count = 0;
    for (;;) {
      const t = performance.now();
      const e = await v.runAsync(1e6);
      if (e.kind === 'quantum') continue;
      if (e.kind === 'halt') break;
      if (e.kind !== 'io-out') throw new Error(JSON.stringify(e));
      dispatchHypercall(vm, e.port, e.value, e.size);
      if (count >= 2000 && count - 2000 < n) samples[count - 2000] = (performance.now() - t) * 1000;
      count++;
    }
    v.destroy();
    await backend.close();
    samples.sort();
    return `median ${fmtUs(samples[n >> 1]!)} µs, p99 ${fmtUs(samples[Math.floor(n * 0.99)]!)} µs (guest out -> signal -> control page -> Yakima -> futex -> guest)`;
  });
  // Raw baselines: no Yakima, no dispatch. mov dx, 0x5ff; L: out dx, eax; jmp L
  const LOOP = [0x66, 0xba, 0xff, 0x05, 0xef, 0xeb, 0xfd];
  await attempt(S, 'raw baseline: KVM exits/s of an `out` loop (KvmVcpu.run, no Yakima)', async () => {
    needKvm();
    const { KvmVcpu, allocateGuestMemory } = await import('../src/cpu/kvm/index.js');
    const mem = allocateGuestMemory(4 << 20);
    mem.u8.set(LOOP, BASE);
    const v = new KvmVcpu(mem);
    v.setRegs({ gpr: [0, 0, 0, 0, 4 << 20, 0, 0, 0], eip: BASE, eflags: 2 });
    const n = quick ? 5000 : 20_000;
    for (let i = 0; i < 500; i++) v.run(1e9);
    const t = performance.now();
    for (let i = 0; i < n; i++) v.run(1e9);
    const s = (performance.now() - t) / 1000;
    v.destroy();
    return `${Math.round(n / s).toLocaleString('en-US')} exits/s (${fmtUs((s * 1e6) / n)} µs each)`;
  });
  await attempt(S, 'raw baseline: emulator exits/s of the same loop (EmuCpu.run, no Yakima)', () => {
    const mem = new GuestMemory(4 << 20);
    mem.u8.set(LOOP, BASE);
    const cpu = new EmuCpu(mem);
    cpu.setRegs({ gpr: [0, 0, 0, 0, 4 << 20, 0, 0, 0], eip: BASE, eflags: 2 });
    for (let i = 0; i < 10_000; i++) cpu.run(1e9);
    const n = quick ? 200_000 : 1_000_000;
    const t = performance.now();
    for (let i = 0; i < n; i++) cpu.run(1e9);
    const s = (performance.now() - t) / 1000;
    return `${Math.round(n / s).toLocaleString('en-US')} exits/s (${fmtUs((s * 1e6) / n)} µs each)`;
  });
}

// ------------------------------------------------------------------ 2. context switches
const WALK = 64 * 1024;

/** µs per switch (best of `reps` runs): wall time of Yakima.run over the number of idles. */
async function switchTime(backend: Backend, n: number, walk: number, totalSwitches: number, reps = 2): Promise<number> {
  const iters = Math.max(3, Math.ceil(totalSwitches / n));
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const imgs = Array.from({ length: n }, (_, k) => image(`v${k}`, yieldLoop(iters, walk)));
    const { ms, vms } = await timeYakima(backend, imgs);
    const idles = vms.reduce((a, v) => a + v.stats.idles, 0);
    // A preemption between the acknowledgement and the idle makes that idle return at once (rare).
    if (idles < 0.9 * n * iters) throw new Error(`only ${idles} of ${n * iters} idles switched`);
    best = Math.min(best, (ms * 1000) / idles);
  }
  return best;
}

async function contextSwitches(): Promise<void> {
  console.log('2. VM-to-VM context switch (N VMs looping idle(0); µs per switch)');
  const counts: number[] = [];
  for (let n = 1; n <= MAX_VMS; n *= 2) counts.push(n);
  if (counts[counts.length - 1] !== MAX_VMS) counts.push(MAX_VMS);
  const backends: [Backend, string, number][] = [['emu', 'emulator', MAX_VMS]];
  if (!kvmWhy) backends.push(['kvm', 'KVM (worker)', KVM_MAX_VMS]);
  else row('context switch', 'KVM', `n/a (KVM not usable: ${kvmWhy})`);
  if (procProbe.usable) backends.push(['process', 'process backend', PROCESS_MAX_VMS]);
  else row('context switch', 'process backend', `n/a (${procProbe.reason})`);
  for (const [backend, label, cap] of backends) {
    const total = backend !== 'kvm' ? (quick ? 4000 : 20_000) : quick ? 500 : 2000;
    const totalWorst = backend !== 'kvm' ? (quick ? 1000 : 4000) : quick ? 50 : 150;
    // The walk's own cost: 1 VM that walks minus 1 VM that does not, per iteration (both switch to themselves).
    let walkUs = 0;
    try {
      await switchTime(backend, 1, WALK, 50, 1);
      walkUs = (await switchTime(backend, 1, WALK, totalWorst, 3)) - (await switchTime(backend, 1, 0, total, 3));
    } catch (e) {
      row('context switch', `${label}: walk cost`, `n/a (${(e as Error).message})`);
    }
    await switchTime(backend, 2, 0, 200, 1).catch(() => 0); // warm-up
    for (const n of counts) {
      if (n > cap) {
        const why =
          backend === 'process'
            ? 'each process-backend VM is a host process; raise with --process-max-vms'
            : `each KVM VM holds 2 fds, a worker-visible kvm_run mapping and its guest memory${probe.usable && !probe.native ? '; kvm-pvm emulates every guest instruction' : ''}`;
        row('context switch', `${label}, ${n} VMs`, `n/a (capped at ${cap} VMs: ${why})`);
        break;
      }
      await attempt('context switch', `${label}, ${n} VM${n > 1 ? 's' : ''}`, async () => {
        const best = await switchTime(backend, n, 0, total);
        const worst = await switchTime(backend, n, WALK, totalWorst);
        return `best ${fmtUs(best)} µs; worst ${fmtUs(worst)} µs incl. the walk${walkUs > 0 ? ` (walk alone ${fmtUs(walkUs)} µs: switch ≈ ${fmtUs(Math.max(0, worst - walkUs))} µs)` : ''}`;
      });
    }
  }
}

// ------------------------------------------------------------------ 3. compute
const SHA_KIB = 512;

function denaliBuild(example: string, out: string): string {
  return denaliBuildDir(join(root, 'examples', example), out);
}

function denaliBuildDir(src: string, out: string): string {
  execFileSync(join(root, 'bin/denali'), ['build', src, '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  return out;
}

/** examples/sha256/sha256.c built freestanding for the host (no 32-bit libc needed); prints the digest line like main.c. */
function nativeSha(dir: string): string {
  const exe = join(dir, 'sha-native-t');
  if (existsSync(exe)) return exe;
  mkdirSync(join(dir, 'inc'), { recursive: true });
  writeFileSync(join(dir, 'inc', 'string.h'), '#include <stddef.h>\nvoid *memcpy(void *d, const void *s, size_t n);\n');
  writeFileSync(join(dir, 'driver.c'), `#include "sha256.h"
void *memcpy(void *d, const void *s, size_t n) { unsigned char *a = d; const unsigned char *b = s; while (n--) *a++ = *b++; return d; }
static void sys_write(const char *p, int n) { __asm__ volatile("int $0x80" : : "a"(4), "b"(1), "c"(p), "d"(n) : "memory"); }
struct ts { long s, ns; };
static void now(struct ts *t) { __asm__ volatile("int $0x80" : : "a"(265), "b"(1), "c"(t) : "memory"); } /* clock_gettime(CLOCK_MONOTONIC) */
static unsigned char chunk[1024];
int native_main(void) {
  struct sha256 s; uint8_t d[32]; uint32_t i = 0; static const char hx[] = "0123456789abcdef"; char line[80]; struct ts t0, t1;
  now(&t0);
  sha256_init(&s);
  for (long k = 0; k < ${SHA_KIB}; k++) { for (int j = 0; j < 1024; j++, i++) chunk[j] = (uint8_t)(i * 31 + (i >> 10)); sha256_update(&s, chunk, sizeof chunk); }
  sha256_final(&s, d);
  now(&t1);
  for (int k = 0; k < 32; k++) { line[2 * k] = hx[d[k] >> 4]; line[2 * k + 1] = hx[d[k] & 15]; }
  unsigned long us = (unsigned long)((t1.s - t0.s) * 1000000L + (t1.ns - t0.ns) / 1000);
  int p = 64; line[p++] = ' '; char tmp[12]; int q = 0; do { tmp[q++] = (char)('0' + us % 10); us /= 10; } while (us);
  while (q) line[p++] = tmp[--q];
  line[p++] = '\\n'; sys_write(line, p); return 0;
}
__asm__(".globl _start\\n_start:\\n call native_main\\n mov %eax, %ebx\\n mov $1, %eax\\n int $0x80\\n");
`);
  const sha = join(root, 'examples/sha256');
  execFileSync('gcc', [...C_ABI_FLAGS, '-O2', '-nostdlib', '-static', '-fno-pic', '-I', join(dir, 'inc'), '-I', sha, join(dir, 'driver.c'), join(sha, 'sha256.c'), '-o', exe], { stdio: ['ignore', 'pipe', 'pipe'] });
  chmodSync(exe, 0o755);
  return exe;
}

/** Iterations of the compute mix (bench/compute-mix): about 30 ms natively. */
const MIX_N = 2000;

/**
 * bench/compute-mix/mix.c built freestanding as a native 32-bit host process, timed inside with
 * clock_gettime. `sdkCodegen`: also the code-generation flags the SDK compiles guests with
 * (ilwaco-sdk C_FLAGS: no auto-vectorization, no scalar-to-vector), so both sides run the same
 * machine code; without them gcc vectorizes the matrix loop, which says nothing about the VMM.
 */
function nativeMix(dir: string, sdkCodegen: boolean): string {
  const exe = join(dir, sdkCodegen ? 'mix-native-sdk' : 'mix-native');
  if (existsSync(exe)) return exe;
  writeFileSync(join(dir, 'mix-driver.c'), `#include "mix.h"
static void sys_write(const char *p, int n) { __asm__ volatile("int $0x80" : : "a"(4), "b"(1), "c"(p), "d"(n) : "memory"); }
struct ts { long s, ns; };
static void now(struct ts *t) { __asm__ volatile("int $0x80" : : "a"(265), "b"(1), "c"(t) : "memory"); }
int native_main(void) {
  struct ts t0, t1; char line[40]; static const char hx[] = "0123456789abcdef";
  now(&t0);
  unsigned r = compute_mix(${MIX_N});
  now(&t1);
  unsigned long us = (unsigned long)((t1.s - t0.s) * 1000000L + (t1.ns - t0.ns) / 1000);
  int p = 0; for (int k = 3; k >= 0; k--) line[p++] = hx[(r >> (4 * k)) & 15];
  line[p++] = ' '; char tmp[12]; int q = 0; do { tmp[q++] = (char)('0' + us % 10); us /= 10; } while (us);
  while (q) line[p++] = tmp[--q];
  line[p++] = '\\n'; sys_write(line, p); return 0;
}
__asm__(".globl _start\\n_start:\\n call native_main\\n mov %eax, %ebx\\n mov $1, %eax\\n int $0x80\\n");
`);
  const src = join(here, 'compute-mix');
  const codegen = sdkCodegen ? ['-fno-tree-vectorize', '-mno-stv'] : [];
  execFileSync('gcc', [...C_ABI_FLAGS, '-O2', ...codegen, '-nostdlib', '-static', '-fno-pic', '-I', src, join(dir, 'mix-driver.c'), join(src, 'mix.c'), '-o', exe], { stdio: ['ignore', 'pipe', 'pipe'] });
  chmodSync(exe, 0o755);
  return exe;
}

/** Best of `k` runs of a native driver printing "<result> <µs>": [result, ms]. */
function bestNative(exe: string, k: number): [string, number] {
  let best = Infinity;
  let result = '';
  for (let i = 0; i < k; i++) {
    const [r, us] = execFileSync(exe, [], { encoding: 'utf8' }).trim().split(' ');
    result = r!;
    best = Math.min(best, Number(us) / 1000);
  }
  return [result, best];
}

/**
 * Guest compute time on the process backend: the CPU time (kernel schedstat) of the VM's
 * process for the full input minus that for an empty input (start-up, boot and printing
 * cancel out); best of `k`. Returns [ms, console output of the full run].
 */
async function processComputeMs(img: DenaliImage, full: string, empty: string, k: number): Promise<[number, string]> {
  const cpuOf = async (arg: string): Promise<[number, string]> => {
    const sink = new MemoryConsoleSink();
    const y = new Yakima({ backend: 'process', sink });
    const vm = y.addVm(img, { args: [arg] });
    await y.run();
    const { ProcessVcpu } = await import('../src/cpu/process/index.js');
    const us = (vm.vcpu as InstanceType<typeof ProcessVcpu>).cpuTimeMicros();
    await y.close();
    if (vm.state !== 'exited') throw new Error(`guest ${vm.state}`);
    return [us / 1000, sink.text(vm.name)];
  };
  let best = Infinity;
  let out = '';
  await cpuOf(empty);
  for (let i = 0; i < k; i++) {
    const [e] = await cpuOf(empty);
    const [f, o] = await cpuOf(full);
    out = o;
    best = Math.min(best, f - e);
  }
  return [best, out];
}

async function compute(dir: string): Promise<void> {
  console.log(`3. compute: examples/sha256 over a ${SHA_KIB} KiB pattern`);
  let nativeMs = NaN;
  let digest = '';
  await attempt('compute', 'native 32-bit host process (same sha256.c, gcc -O2, Denali C ABI flags)', () => {
    const exe = nativeSha(dir);
    let best = Infinity;
    for (let k = 0; k < 7; k++) {
      const [d, us] = execFileSync(exe, [], { encoding: 'utf8' }).trim().split(' ');
      digest = d!;
      best = Math.min(best, Number(us) / 1000);
    }
    nativeMs = best;
    return `${best.toFixed(2)} ms (best of 7, timed inside the process with clock_gettime)`;
  });
  const img = await readImageFile(denaliBuild('sha256', join(dir, 'sha.dni')));
  const viaYakima = async (backend: Backend, kib: number): Promise<{ ms: number; instr: number; out: string }> => {
    const sink = new MemoryConsoleSink();
    const y = new Yakima({ backend, kvmThreads: 1, sink });
    const vm = y.addVm(img, { args: [String(kib)] });
    const t = performance.now();
    await y.run();
    const ms = performance.now() - t;
    const instr = vm.vcpu.instructionsRetired;
    await y.close();
    if (vm.state !== 'exited') throw new Error(`guest ${vm.state}`);
    return { ms, instr, out: sink.text(vm.name) };
  };
  await attempt('compute', 'emulator (Yakima, ./bin/denali build)', async () => {
    await viaYakima('emu', 16);
    const r = await viaYakima('emu', SHA_KIB);
    const ok = digest === '' || r.out.includes(digest);
    return `${r.ms.toFixed(0)} ms, ${(r.instr / 1e6).toFixed(1)} M instructions = ${(r.instr / 1e3 / r.ms).toFixed(0)} MIPS; ${Number.isFinite(nativeMs) ? `${((nativeMs / r.ms) * 100).toFixed(2)}% of native speed (${(r.ms / nativeMs).toFixed(0)}x slower)` : ''}${ok ? '' : ' WRONG DIGEST'}`;
  });
  await attempt('compute', `process backend (Yakima; CPU time of the VM's process, ${SHA_KIB} KiB minus 0 KiB)`, async () => {
    needProcess();
    const [ms, out] = await processComputeMs(img, String(SHA_KIB), '0', 7);
    const ok = digest === '' || out.includes(digest);
    return `${ms.toFixed(2)} ms (best of 7); ${Number.isFinite(nativeMs) ? `${(nativeMs / ms).toFixed(2)} of native speed` : ''}${ok ? '' : ' WRONG DIGEST'}`;
  });
  let mixNativeMs = NaN;
  let mixResult = '';
  await attempt('compute', `compute mix x${MIX_N} (bench/compute-mix: lists, matrix, state machine, CRC): native 32-bit host process, SDK code generation`, () => {
    [mixResult, mixNativeMs] = bestNative(nativeMix(dir, true), 7);
    return `${mixNativeMs.toFixed(2)} ms (best of 7, timed inside the process)`;
  });
  await attempt('compute', `compute mix x${MIX_N}: native, plain -O2 (gcc auto-vectorizes; for reference)`, () => {
    const [, ms] = bestNative(nativeMix(dir, false), 7);
    return `${ms.toFixed(2)} ms (best of 7)`;
  });
  await attempt('compute', `compute mix x${MIX_N}: process backend (CPU time, ${MIX_N} minus 0 iterations)`, async () => {
    needProcess();
    const mixImg = await readImageFile(denaliBuildDir(join(here, 'compute-mix'), join(dir, 'mix.dni')));
    const [ms, out] = await processComputeMs(mixImg, String(MIX_N), '0', 7);
    const ok = mixResult === '' || out.includes(`= ${mixResult}`);
    return `${ms.toFixed(2)} ms (best of 7); ${Number.isFinite(mixNativeMs) ? `${(mixNativeMs / ms).toFixed(2)} of native speed` : ''}${ok ? '' : ' WRONG RESULT'}`;
  });
  await attempt('compute', `KVM (Yakima, worker)`, async () => {
    needKvm();
    // kvm-pvm emulates every instruction in the kernel: a smaller input, scaled.
    const kib = probe.usable && !probe.native ? (quick ? 4 : 16) : SHA_KIB;
    const r = await viaYakima('kvm', kib);
    const ms = (r.ms * SHA_KIB) / kib;
    return `${ms.toFixed(0)} ms${kib !== SHA_KIB ? ` (measured on ${kib} KiB, scaled)` : ''}; ${Number.isFinite(nativeMs) ? `${((nativeMs / ms) * 100).toPrecision(2)}% of native speed` : ''} (${kvmKind})`;
  });
}

// ------------------------------------------------------------------ 4. boot
async function boot(dir: string): Promise<void> {
  console.log('4. boot time of examples/hello (image load to first console byte)');
  const file = denaliBuild('hello', join(dir, 'hello.dni'));
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const backend of ['emu', 'kvm', 'process'] as const) {
    await attempt('boot', backend === 'emu' ? 'emulator' : backend === 'kvm' ? 'KVM (worker)' : 'process backend (new Yakima each run; its tender from the pool spawned ahead, tender-pool.ts)', async () => {
      if (backend === 'kvm') needKvm();
      if (backend === 'process') needProcess();
      const samples: number[] = [];
      const runs = quick ? 5 : 20;
      for (let i = 0; i < runs + 2; i++) {
        const start = performance.now();
        const img = await readImageFile(file);
        const y = new Yakima({ backend, kvmThreads: 1, sink: new MemoryConsoleSink() });
        const v = y.addVm(img);
        await y.run();
        await y.close();
        if (v.console.firstByteAt === undefined) throw new Error('hello printed nothing');
        if (i >= 2) samples.push(v.console.firstByteAt - start);
      }
      return `median ${median(samples).toFixed(2)} ms, min ${Math.min(...samples).toFixed(2)} ms (${runs} runs)`;
    });
  }
}

// ------------------------------------------------------------------ 5. idle VMs
const IDLE_VMS = optNum('--idle-vms', 1000);
const PROCESS_THREADS = argv.includes('--process-threads') ? optNum('--process-threads', 0) : undefined;

function memAvailableKiB(): number {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
}

async function idleVms(dir: string): Promise<void> {
  console.log(`5. ${IDLE_VMS} idle httpd VMs on the process backend`);
  await attempt('idle VMs', `process backend: ${IDLE_VMS} examples/httpd VMs booted until idle`, async () => {
    needProcess();
    const img = await readImageFile(denaliBuild('httpd', join(dir, 'httpd.dni')));
    const before = memAvailableKiB();
    // Resident idle VMs are what this measures: a budget no count reaches, so none is swapped out.
    const y = new Yakima({ backend: 'process', network: true, sink: new MemoryConsoleSink(), processThreads: PROCESS_THREADS, memoryBudget: 2 ** 40, maxResidentVms: Infinity });
    const t0 = performance.now();
    const vms: Vm[] = [];
    let reached = 0;
    let why = '';
    const done = y.run();
    try {
      const totalKiB = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]);
      for (let i = 0; i < IDLE_VMS; i++) {
        // The host is shared: stop adding VMs before it runs short of memory.
        if (i % 50 === 0 && memAvailableKiB() < totalKiB / 4) {
          why = `host memory: stopped at ${i} VMs with ${(memAvailableKiB() / 1024).toFixed(0)} MiB available (keeps a quarter of RAM free)`;
          break;
        }
        try {
          vms.push(y.addVm(img, { args: ['80', '2'] }));
        } catch (e) {
          why = `VM ${i + 1} could not start: ${(e as Error).message}`;
          break;
        }
        // Let the scheduler boot VMs while more are added (bounded backlog).
        if (i % 100 === 99) {
          while (vms.filter((v) => v.state === 'runnable').length > 200) await new Promise((r) => setTimeout(r, 20));
        }
      }
      const deadline = performance.now() + 600_000;
      while (performance.now() < deadline) {
        reached = vms.filter((v) => v.state === 'idle').length;
        if (reached + vms.filter((v) => v.finished).length >= vms.length) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const bootMs = performance.now() - t0;
      const faulted = vms.filter((v) => v.finished);
      if (faulted.length && !why) why = `${faulted.length} VMs ended: ${faulted[0]!.fault ? `${faulted[0]!.fault.cause} ${faulted[0]!.fault.detail}` : faulted[0]!.state}`;
      const usedKiB = before - memAvailableKiB();
      // CPU over 5 s while everything idles: Yakima itself and the sum of the VM processes.
      const { ProcessVcpu } = await import('../src/cpu/process/index.js');
      const vmCpu = (): number => vms.reduce((a, v) => a + ((v.vcpu as Partial<InstanceType<typeof ProcessVcpu>>).cpuTimeMicros?.() ?? 0), 0);
      const c0 = process.cpuUsage();
      const v0 = vmCpu();
      await new Promise((r) => setTimeout(r, 5000));
      const c1 = process.cpuUsage(c0);
      const vmUs = vmCpu() - v0;
      const yakimaPct = ((c1.user + c1.system) / 5e6) * 100;
      return (
        `${reached} of ${IDLE_VMS} idle after ${(bootMs / 1000).toFixed(1)} s (${(bootMs / Math.max(1, vms.length)).toFixed(2)} ms per VM); ` +
        `host memory ${(usedKiB / 1024).toFixed(0)} MiB (${(usedKiB / Math.max(1, vms.length)).toFixed(0)} KiB per VM); ` +
        `while idle: Yakima ${yakimaPct.toFixed(1)}% CPU, all VM processes ${((vmUs / 5e6) * 100).toFixed(2)}% CPU` +
        (why ? `; stopped early: ${why}` : '')
      );
    } finally {
      y.stop();
      await done;
      await y.close();
    }
  });
}

const dir = join(tmpdir(), 'denali-bench-cpu');
mkdirSync(dir, { recursive: true });
console.log(`bench:cpu on ${process.platform}/${process.arch}, node ${process.version}; KVM: ${kvmWhy ? `not usable (${kvmWhy})` : kvmKind}; process backend: ${procProbe.usable ? 'usable' : procProbe.reason}`);
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : undefined;
if (!only || only === '1') await hypercalls();
if (!only || only === '2') await contextSwitches();
if (!only || only === '3') await compute(dir);
if (!only || only === '4') await boot(dir);
if (!only || only === '5') await idleVms(dir);

const w0 = Math.max(...rows.map((r) => r[0].length)), w1 = Math.max(...rows.map((r) => r[1].length));
console.log('\n' + ['section'.padEnd(w0), 'measurement'.padEnd(w1), 'result'].join(' | '));
console.log(['-'.repeat(w0), '-'.repeat(w1), '-'.repeat(20)].join('-|-'));
for (const r of rows) console.log([r[0].padEnd(w0), r[1].padEnd(w1), r[2]].join(' | '));
void readFileSync;
void rmSync;
void mkdtempSync;
