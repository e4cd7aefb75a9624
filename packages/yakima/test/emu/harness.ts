/**
 * Host-CPU oracle harness. A batch of test cases becomes ONE i386 program: for each case it
 * loads GPRs, EFLAGS and XMM0-7 from an input record, runs the snippet, and stores GPRs,
 * EFLAGS and XMM registers into the record (memory operands and the stack also live in the
 * record). The same linked binary runs natively on the host (it ends with a Linux write
 * syscall of the whole data area) and in EmuCpu (it stops at that `int 0x80`, a deprecated
 * instruction, and we read guest memory). Then every record is compared.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GuestMemory } from '../../src/boot/guest-memory.js';
import { EmuCpu } from '../../src/cpu/emu/index.js';
import { flagNames } from '../../src/cpu/emu/flags.js';
import { CACHE, LOAD_ADDR } from './helpers.js';

/** Record layout (bytes). */
export const REC = { IN: 0, OUT: 48, XIN: 96, XOUT: 224, BUF: 352, BUF2: 416, STACK_TOP: 624, SIZE: 640 } as const;

/** A snippet piece: a byte, a 32-bit expression (e.g. an address inside the record), or assembler text. */
export type Piece = number | { long: string } | { asm: string };

export interface OracleCase {
  /** Label for failure messages. */
  name: string;
  /** The instruction(s) under test. Expressions may use `REC` for this case's record address. */
  code: Piece[];
  /** EAX..EDI (index = register number; ESP is ignored): numbers or expressions. */
  regs: (number | string)[];
  eflags: number;
  /** XMM0-7 inputs (128 bytes) or null when the snippet does not use SSE. */
  xmm: Uint8Array | null;
  buf: Uint8Array;
  buf2: Uint8Array;
  /** EFLAGS bits compared (others are undefined for this instruction or not guest state). */
  flagMask: number;
  /** Compare EAX..EDI except these register numbers (undefined results). */
  ignoreRegs?: number[];
}

function esc(e: string, k: number): string {
  return e.replace(/\bREC\b/g, `rec_${k}`);
}

function hex(b: Uint8Array | number[]): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Assembly text of a batch. */
export function batchSource(cases: OracleCase[]): string {
  const t: string[] = ['    .section .note.GNU-stack, "", @progbits', '    .section .text.start, "ax"', '    .globl _start', '_start:'];
  cases.forEach((c, k) => {
    const r = `rec_${k}`;
    t.push(`case_${k}:`);
    if (c.xmm) for (let j = 0; j < 8; j++) t.push(`    movdqu ${r}+${REC.XIN + 16 * j}, %xmm${j}`);
    t.push(`    mov $${r}, %esp`, '    popal', '    popfl', `    mov $${r}+${REC.STACK_TOP}, %esp`);
    for (const p of c.code) {
      if (typeof p === 'number') t.push(`    .byte ${p}`);
      else if ('long' in p) t.push(`    .long ${esc(p.long, k)}`);
      else t.push(`    ${esc(p.asm, k)}`);
    }
    t.push(`    mov %esp, ${r}+${REC.OUT + 36}`, `    mov $${r}+${REC.OUT + 36}, %esp`, '    pushfl', '    pushal');
    if (c.xmm) for (let j = 0; j < 8; j++) t.push(`    movdqu %xmm${j}, ${r}+${REC.XOUT + 16 * j}`);
  });
  t.push('    mov $4, %eax', '    mov $1, %ebx', '    mov $data_start, %ecx', '    mov $(data_end - data_start), %edx');
  t.push('    .globl finish_int', 'finish_int:', '    int $0x80', '    mov $1, %eax', '    xor %ebx, %ebx', '    int $0x80');
  t.push('    .data', '    .balign 64', 'data_start:');
  cases.forEach((c, k) => {
    const regs = c.regs.map((v) => (typeof v === 'number' ? `0x${(v >>> 0).toString(16)}` : esc(v, k)));
    // popal order: EDI ESI EBP (ESP) EBX EDX ECX EAX, then EFLAGS for popfl.
    const order = [7, 6, 5, 4, 3, 2, 1, 0].map((i) => (i === 4 ? '0' : regs[i]));
    t.push(`rec_${k}:`, `    .long ${order.join(', ')}, 0x${c.eflags.toString(16)}`, '    .space 12', '    .space 48');
    t.push(c.xmm ? `    .byte ${Array.from(c.xmm).join(',')}` : '    .space 128', '    .space 128');
    t.push(`    .byte ${Array.from(c.buf).join(',')}`, `    .byte ${Array.from(c.buf2).join(',')}`, `    .space ${REC.SIZE - REC.BUF2 - 64}`);
  });
  t.push('data_end:');
  return t.join('\n') + '\n';
}

const LD = `ENTRY(_start)
SECTIONS {
  . = 0x100000;
  .text : { *(.text.start) *(.text*) }
  . = ALIGN(4096);
  .data : { *(.data*) }
  /DISCARD/ : { *(.note*) *(.comment) *(.eh_frame*) }
}
`;

interface Built {
  bin: Uint8Array;
  elf: string;
  dataStart: number;
  dataEnd: number;
  finish: number;
  caseAddrs: number[];
}

function build(src: string): Built {
  const key = createHash('sha256').update(LD).update(src).digest('hex').slice(0, 24);
  const dir = join(CACHE, `oracle-${key}`);
  if (!existsSync(join(dir, 'h.sym'))) {
    const work = `${dir}.tmp${process.pid}`;
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, 'h.S'), src);
    writeFileSync(join(work, 'h.ld'), LD);
    const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    run('as', ['--32', '-o', 'h.o', 'h.S']);
    run('ld', ['-m', 'elf_i386', '-T', 'h.ld', '-o', 'h.elf', 'h.o']);
    run('objcopy', ['-O', 'binary', 'h.elf', 'h.bin']);
    writeFileSync(join(work, 'h.sym'), run('nm', ['h.elf']));
    try {
      renameSync(work, dir);
    } catch {
      // built concurrently by another worker
    }
  }
  const syms = new Map<string, number>();
  for (const line of readFileSync(join(dir, 'h.sym'), 'utf8').split('\n')) {
    const m = /^([0-9a-f]+) \w (\S+)$/.exec(line);
    if (m) syms.set(m[2], parseInt(m[1], 16));
  }
  const caseAddrs: number[] = [];
  for (let k = 0; syms.has(`case_${k}`); k++) caseAddrs.push(syms.get(`case_${k}`)!);
  return {
    bin: new Uint8Array(readFileSync(join(dir, 'h.bin'))),
    elf: join(dir, 'h.elf'),
    dataStart: syms.get('data_start')!,
    dataEnd: syms.get('data_end')!,
    finish: syms.get('finish_int')!,
    caseAddrs,
  };
}

function runNative(b: Built): Uint8Array {
  const out = join(b.elf + '.out');
  if (existsSync(out)) return new Uint8Array(readFileSync(out));
  const stdout = execFileSync(b.elf, [], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
  writeFileSync(out + `.tmp${process.pid}`, stdout);
  renameSync(out + `.tmp${process.pid}`, out);
  return new Uint8Array(stdout);
}

/** Which execution engine a run uses: the interpreter only, or every block compiled at once. */
export type EngineMode = 'interpreter' | 'compiled';

function runEmu(b: Built, mode: EngineMode = 'interpreter'): { data: Uint8Array; cpu: EmuCpu; detail: string } {
  const size = Math.max(4 << 20, Math.ceil((LOAD_ADDR + b.bin.length + 0x10000) / 0x100000) * 0x100000);
  const mem = new GuestMemory(size);
  mem.u8.set(b.bin, LOAD_ADDR);
  const cpu = new EmuCpu(mem);
  cpu.compileAfter = mode === 'compiled' ? 1 : 0;
  cpu.setRegs({ gpr: [0, 0, 0, 0, size - 16, 0, 0, 0], eip: LOAD_ADDR, eflags: 2 });
  const exit = cpu.run(1e9);
  let detail = '';
  if (exit.kind !== 'fault' || exit.eip !== b.finish) {
    detail = `emulator stopped early: ${JSON.stringify({ ...exit, bytes: exit.kind === 'fault' ? hex(exit.bytes) : undefined })}`;
  }
  return { data: mem.u8.slice(b.dataStart, b.dataEnd), cpu, detail };
}

/** Build a batch and run it in EmuCpu only (for coverage measurements). */
export function runCasesInEmu(cases: OracleCase[]): EmuCpu {
  return runEmu(build(batchSource(cases))).cpu;
}

const REG_NAMES = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
/** pushal stores EDI at the lowest address: memory order index -> register number. */
const PUSHAL_ORDER = [7, 6, 5, 4, 3, 2, 1, 0];

/**
 * Run a batch on the host and in EmuCpu; returns human-readable mismatch descriptions
 * (empty when everything agrees).
 */
export function runOracle(cases: OracleCase[]): string[] {
  const src = batchSource(cases);
  const b = build(src);
  const native = runNative(b);
  const problems: string[] = [];
  for (const mode of ['interpreter', 'compiled'] as const) problems.push(...compare(cases, b, native, runEmu(b, mode), mode));
  return problems;
}

function compare(cases: OracleCase[], b: Built, native: Uint8Array, emu: ReturnType<typeof runEmu>, mode: EngineMode): string[] {
  const problems: string[] = [];
  if (native.length !== b.dataEnd - b.dataStart) problems.push(`native run wrote ${native.length} bytes, expected ${b.dataEnd - b.dataStart}`);
  const dvN = new DataView(native.buffer, native.byteOffset, native.byteLength);
  const dvE = new DataView(emu.data.buffer, emu.data.byteOffset, emu.data.byteLength);
  cases.forEach((c, k) => {
    const base = k * REC.SIZE;
    const diffs: string[] = [];
    for (let m = 0; m < 8; m++) {
      const r = PUSHAL_ORDER[m];
      if (r === 4 || c.ignoreRegs?.includes(r)) continue;
      const n = dvN.getUint32(base + REC.OUT + m * 4, true), e = dvE.getUint32(base + REC.OUT + m * 4, true);
      if (n !== e) diffs.push(`${REG_NAMES[r]}: host ${n.toString(16)} emu ${e.toString(16)}`);
    }
    const nsp = dvN.getUint32(base + REC.OUT + 36, true), esp = dvE.getUint32(base + REC.OUT + 36, true);
    if (nsp !== esp) diffs.push(`esp: host ${nsp.toString(16)} emu ${esp.toString(16)}`);
    const nf = dvN.getUint32(base + REC.OUT + 32, true) & c.flagMask, ef = dvE.getUint32(base + REC.OUT + 32, true) & c.flagMask;
    if (nf !== ef) diffs.push(`eflags: host ${nf.toString(16)} emu ${ef.toString(16)} (differ in ${flagNames(nf ^ ef)})`);
    const cmpBytes = (off: number, len: number, what: string) => {
      for (let x = 0; x < len; x++) {
        if (native[base + off + x] !== emu.data[base + off + x]) {
          diffs.push(`${what}: host ${hex(native.subarray(base + off, base + off + len))}\n      emu  ${hex(emu.data.subarray(base + off, base + off + len))}`);
          return;
        }
      }
    };
    if (c.xmm) for (let j = 0; j < 8; j++) cmpBytes(REC.XOUT + 16 * j, 16, `xmm${j}`);
    cmpBytes(REC.BUF, 64, 'buf');
    cmpBytes(REC.BUF2, 64, 'buf2');
    cmpBytes(REC.BUF2 + 64, REC.SIZE - REC.BUF2 - 64, 'stack');
    if (diffs.length) {
      const codeBytes = c.code.map((p) => (typeof p === 'number' ? p.toString(16).padStart(2, '0') : 'long' in p ? '<addr32>' : p.asm)).join(' ');
      const inRegs = c.regs.map((v, r) => `${REG_NAMES[r]}=${typeof v === 'number' ? (v >>> 0).toString(16) : v}`).join(' ');
      problems.push(`${c.name} [${mode}, case ${k}: ${codeBytes}]\n    in: ${inRegs} eflags=${c.eflags.toString(16)}\n    ${diffs.join('\n    ')}`);
    }
  });
  if (emu.detail) problems.unshift(`${mode}: ${emu.detail}`);
  return problems;
}
