/**
 * Test helpers for the emulator: build freestanding i386 guests with the host toolchain
 * (cached under os.tmpdir() by content hash), load them into GuestMemory, and run them.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { C_ABI_FLAGS } from '@denali/image-format';
import { GuestMemory } from '../../src/boot/guest-memory.js';
import type { VcpuExit } from '../../src/cpu/vcpu.js';
import { EmuCpu } from '../../src/cpu/emu/index.js';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
export const CACHE = join(tmpdir(), 'denali-emu-fixtures');
export const LOAD_ADDR = 0x100000;

/** A built guest: flat binary loaded at LOAD_ADDR and its symbol table. */
export interface GuestImage {
  bin: Uint8Array;
  symbols: Map<string, number>;
}

function hashOf(parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 24);
}

/** Run a command, failing with its stderr. */
function sh(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Compile/assemble `sources` (file names in fixtures/ or inline {name, text}) into a flat
 * binary at LOAD_ADDR using fixtures/guest.ld. C is compiled with the Denali C ABI flags plus
 * `cflags`.
 */
export function buildGuest(sources: (string | { name: string; text: string })[], cflags: string[] = ['-O2']): GuestImage {
  const files = sources.map((s) => (typeof s === 'string' ? { name: s, text: readFileSync(join(FIXTURES, s), 'utf8') } : s));
  const ld = readFileSync(join(FIXTURES, 'guest.ld'), 'utf8');
  const rth = readFileSync(join(FIXTURES, 'rt.h'), 'utf8');
  const key = hashOf([ld, rth, cflags.join(' '), ...files.flatMap((f) => [f.name, f.text])]);
  const dir = join(CACHE, key);
  const binPath = join(dir, 'guest.bin');
  const symPath = join(dir, 'guest.sym');
  if (!existsSync(binPath) || !existsSync(symPath)) {
    const work = `${dir}.tmp${process.pid}`;
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, 'rt.h'), rth);
    writeFileSync(join(work, 'guest.ld'), ld);
    const objs: string[] = [];
    for (const f of files) {
      writeFileSync(join(work, f.name), f.text);
      const obj = f.name.replace(/\.[cS]$/, '.o');
      if (f.name.endsWith('.c')) sh('gcc', [...C_ABI_FLAGS, ...cflags, '-c', f.name, '-o', obj], work);
      else sh('gcc', ['-m32', '-c', f.name, '-o', obj], work);
      objs.push(obj);
    }
    sh('ld', ['-m', 'elf_i386', '-T', 'guest.ld', '-o', 'guest.elf', ...objs], work);
    sh('objcopy', ['-O', 'binary', 'guest.elf', 'guest.bin'], work);
    writeFileSync(join(work, 'guest.sym'), sh('nm', ['guest.elf'], work));
    mkdirSync(dirname(dir), { recursive: true });
    try {
      renameSync(work, dir);
    } catch {
      // another worker won the race: use its copy
    }
  }
  const symbols = new Map<string, number>();
  for (const line of readFileSync(symPath, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) \w (\S+)$/.exec(line);
    if (m) symbols.set(m[2], parseInt(m[1], 16));
  }
  return { bin: new Uint8Array(readFileSync(binPath)), symbols };
}

/** Result of running a guest to completion. */
export interface RunResult {
  exit: VcpuExit;
  console: string;
  cpu: EmuCpu;
  mem: GuestMemory;
}

/**
 * Load an image at LOAD_ADDR with ESP at the top of memory and run until hlt or a fault,
 * serving the CONSOLE_WRITE hypercall (port 0x502). Other io-out exits are returned.
 */
export function runGuest(img: GuestImage, opts: { memSize?: number; maxInstructions?: number; quantum?: number; compileAfter?: number } = {}): RunResult {
  const mem = new GuestMemory(opts.memSize ?? 4 * 1024 * 1024);
  mem.u8.set(img.bin, LOAD_ADDR);
  const cpu = new EmuCpu(mem);
  if (opts.compileAfter !== undefined) cpu.compileAfter = opts.compileAfter;
  const gpr = [0, 0, 0, 0, mem.size - 16, 0, 0, 0];
  cpu.setRegs({ gpr, eip: img.symbols.get('_start') ?? LOAD_ADDR, eflags: 0x2 });
  let console = '';
  const limit = opts.maxInstructions ?? 2e9;
  for (;;) {
    const exit = cpu.run(opts.quantum ?? 1_000_000);
    if (exit.kind === 'quantum') {
      if (cpu.instructionsRetired > limit) return { exit, console, cpu, mem };
      continue;
    }
    if (exit.kind === 'io-out' && exit.port === 0x502) {
      const args = exit.value;
      const buf = mem.readU32(args);
      const len = mem.readU32(args + 4);
      console += Buffer.from(mem.view(buf, len)).toString('latin1');
      mem.writeU32(args + 8, len);
      continue;
    }
    return { exit, console, cpu, mem };
  }
}

/** True when the host can build and run 32-bit guests (gcc -m32, ld elf_i386). */
export function haveToolchain(): boolean {
  try {
    sh('gcc', ['--version'], tmpdir());
    sh('ld', ['-V'], tmpdir());
    return true;
  } catch {
    return false;
  }
}

/** Build the host-native twin of a guest (crt0-host.S, -DHOST) and return its stdout and exit status. */
export function runNative(sources: string[], cflags: string[]): { stdout: Buffer; status: number } {
  const srcs = sources.map((s) => (s === 'crt0.S' ? 'crt0-host.S' : s));
  const img = buildGuest(srcs, [...cflags, '-DHOST']);
  const key = hashOf([Buffer.from(img.bin)]);
  const exe = join(CACHE, `native-${key}.elf`);
  if (!existsSync(exe)) {
    // Rebuild as an ELF (buildGuest keeps only the flat binary): link the cached objects again.
    const dir = join(CACHE, `native-${key}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'rt.h'), readFileSync(join(FIXTURES, 'rt.h')));
    writeFileSync(join(dir, 'guest.ld'), readFileSync(join(FIXTURES, 'guest.ld')));
    const objs: string[] = [];
    for (const s of srcs) {
      writeFileSync(join(dir, s), readFileSync(join(FIXTURES, s)));
      const obj = s.replace(/\.[cS]$/, '.o');
      if (s.endsWith('.c')) sh('gcc', [...C_ABI_FLAGS, ...cflags, '-DHOST', '-c', s, '-o', obj], dir);
      else sh('gcc', ['-m32', '-c', s, '-o', obj], dir);
      objs.push(obj);
    }
    sh('ld', ['-m', 'elf_i386', '-T', 'guest.ld', '-o', 'guest.elf', ...objs], dir);
    renameSync(join(dir, 'guest.elf'), exe);
  }
  try {
    const stdout = execFileSync(exe, [], { stdio: ['ignore', 'pipe', 'pipe'] });
    return { stdout, status: 0 };
  } catch (e) {
    const err = e as { status?: number; stdout?: Buffer };
    return { stdout: err.stdout ?? Buffer.alloc(0), status: err.status ?? -1 };
  }
}

/**
 * Assemble AT&T-syntax i386 code placed at `org` (default LOAD_ADDR) into raw bytes
 * (cached by content hash).
 */
export function assemble(src: string, org = LOAD_ADDR): Uint8Array {
  const text = `    .section .note.GNU-stack, "", @progbits\n    .text\n${src}\n`;
  const key = hashOf([text, String(org)]);
  const out = join(CACHE, `asm-${key}.bin`);
  if (!existsSync(out)) {
    const dir = join(CACHE, `asm-${key}.tmp${process.pid}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 's.S'), text);
    sh('as', ['--32', '-o', 's.o', 's.S'], dir);
    sh('ld', ['-m', 'elf_i386', `-Ttext=0x${org.toString(16)}`, '-e', `0x${org.toString(16)}`, '-o', 's.elf', 's.o'], dir);
    sh('objcopy', ['-O', 'binary', '-j', '.text', 's.elf', 's.bin'], dir);
    renameSync(join(dir, 's.bin'), out);
  }
  return new Uint8Array(readFileSync(out));
}

/** A fresh CPU with `code` at LOAD_ADDR, ESP near the top of memory and the given registers. */
export function cpuWith(code: Uint8Array, opts: { memSize?: number; gpr?: Partial<Record<number, number>>; eflags?: number } = {}): { cpu: EmuCpu; mem: GuestMemory } {
  const mem = new GuestMemory(opts.memSize ?? 2 * 1024 * 1024);
  mem.u8.set(code, LOAD_ADDR);
  const cpu = new EmuCpu(mem);
  const gpr = [0, 0, 0, 0, mem.size - 64, 0, 0, 0];
  for (const [k, v] of Object.entries(opts.gpr ?? {})) gpr[Number(k)] = v as number;
  cpu.setRegs({ gpr, eip: LOAD_ADDR, eflags: opts.eflags ?? 2 });
  return { cpu, mem };
}
