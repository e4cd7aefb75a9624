/**
 * Oracles of the differential tester: something that runs a batch of cases and returns each
 * case's final state. `EmuEngine` runs the emulator under test; the reference oracles are
 * `NativeOracle` (the host CPU running the batch as a 32-bit Linux process: real hardware),
 * `KvmOracle` (the batch in a KVM guest: the processor under hardware virtualization, or
 * the kernel's instruction emulator on kvm-pvm hosts) and `ProcessOracle` (the batch on
 * Yakima's process backend: the processor itself, entered and left through the tender).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory } from '../../boot/guest-memory.js';
import { EmuCpu } from '../emu/index.js';
import type { Vcpu } from '../vcpu.js';
import { buildImage, CODE_BASE, DATA_BASE, elfExecutable, MEM_SIZE, readOutput, type BuiltImage, type CaseInput, type CaseOutput } from './image.js';

/** One case's result: its final state, or why it did not complete. */
export type CaseResult =
  | { ok: true; out: CaseOutput }
  /** `unsupported`: the oracle cannot run this case (not evidence of an emulator bug). */
  | { ok: false; error: string; unsupported: boolean };

export interface Oracle {
  readonly name: 'native' | 'kvm' | 'process';
  /** One line: what actually executes the reference runs. */
  readonly description: string;
  run(cases: CaseInput[]): CaseResult[];
  close(): void;
}

/** A case `runOnVcpu` did not run (an earlier case's fault ended the vCPU). */
export const NOT_RUN: CaseResult = Object.freeze({ ok: false, error: 'not run: an earlier case ended the vCPU', unsupported: true });

const hex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');

/**
 * Run a batch image on a VM-style vCPU (image loaded at CODE_BASE/DATA_BASE, ends in hlt).
 * A case that stops the vCPU is recorded as failed and the batch continues with the next case;
 * with `stopAtFault` (a vCPU that cannot go on after a fault) the batch ends there instead and
 * the cases after it are returned as `NOT_RUN`. `first`: the image was built with its cases at
 * records `first`.. (`buildImage(cases, 'hlt', first)`), so their addresses match a larger batch.
 */
export function runOnVcpu(
  vcpu: Vcpu,
  mem: GuestMemory,
  img: BuiltImage,
  cases: CaseInput[],
  unsupported: (exit: string) => boolean,
  opts: { stopAtFault?: boolean; first?: number } = {},
): CaseResult[] {
  const { stopAtFault = false, first = 0 } = opts;
  let stoppedAt = cases.length;
  mem.u8.set(img.code, CODE_BASE);
  mem.u8.set(img.data, DATA_BASE);
  const errors = new Map<number, string>();
  let eip = img.caseStart[0] ?? img.finish;
  let budget = 200;
  for (;;) {
    vcpu.setRegs({ gpr: [0, 0, 0, 0, MEM_SIZE - 16, 0, 0, 0], eip, eflags: 0x2 });
    let exit = vcpu.run(50_000_000);
    while (exit.kind === 'quantum' && --budget > 0) exit = vcpu.run(50_000_000);
    if (exit.kind === 'halt') break;
    const at = vcpu.getRegs().eip;
    const where = exit.kind === 'fault' ? exit.eip : at;
    const desc = exit.kind === 'fault' ? `${exit.cause}: ${exit.detail} at 0x${exit.eip.toString(16)} [${hex(exit.bytes.slice(0, 8))}]` : JSON.stringify(exit);
    let k = -1;
    for (let j = 0; j < cases.length; j++) if (where >= img.caseStart[j]! && where < (img.caseStart[j + 1] ?? img.finish)) k = j;
    if (k < 0 || budget <= 0) {
      // Lost track: everything not yet known fails.
      const first = k < 0 ? 0 : k;
      for (let j = first; j < cases.length; j++) if (!errors.has(j)) errors.set(j, `engine stopped outside the cases: ${desc}`);
      break;
    }
    errors.set(k, desc);
    if (k + 1 >= cases.length) break;
    if (stopAtFault) {
      stoppedAt = k + 1;
      break;
    }
    eip = img.caseStart[k + 1]!;
  }
  const data = mem.u8.slice(DATA_BASE, DATA_BASE + img.data.length);
  return cases.map((c, k) => {
    if (k >= stoppedAt) return NOT_RUN;
    const e = errors.get(k);
    if (e !== undefined) return { ok: false, error: e, unsupported: unsupported(e) };
    return { ok: true, out: readOutput(data, first + k, c.xmm !== null) };
  });
}

/** How the emulator runs a batch: the interpreter only, or every block compiled on first use. */
export type EngineMode = 'interpreter' | 'compiled';

/** The emulator under test. */
export function runOnEmu(cases: CaseInput[], mode: EngineMode): CaseResult[] {
  const img = buildImage(cases, 'hlt');
  const mem = new GuestMemory(MEM_SIZE);
  const cpu = new EmuCpu(mem);
  cpu.compileAfter = mode === 'compiled' ? 1 : 0;
  return runOnVcpu(cpu, mem, img, cases, () => false);
}

/** The host CPU: the batch as a static 32-bit Linux executable. */
export class NativeOracle implements Oracle {
  readonly name = 'native';
  readonly description = 'host CPU, 32-bit Linux process (real hardware)';
  private readonly dir = mkdtempSync(join(tmpdir(), 'denali-difftest-'));
  private n = 0;

  /** Can this host run i386 Linux executables? (null = yes, else the reason) */
  static unavailable(): string | null {
    if (process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'ia32')) return `needs Linux on x86 (this is ${process.platform}/${process.arch})`;
    const o = new NativeOracle();
    try {
      const r = o.run([{ code: [0x90], regs: [0, 0, 0, 0, 0, 0, 0, 0], eflags: 0x202, xmm: null, scratch: new Uint8Array(512), stack: new Uint8Array(512) }]);
      return r[0]!.ok ? null : `the host cannot run a 32-bit process: ${r[0]!.ok ? '' : r[0]!.error}`;
    } catch (e) {
      return `the host cannot run a 32-bit process: ${(e as Error).message.split('\n')[0]}`;
    } finally {
      o.close();
    }
  }

  run(cases: CaseInput[], first = 0): CaseResult[] {
    if (cases.length === 0) return [];
    const img = buildImage(cases, 'linux', first);
    const path = join(this.dir, `b${this.n++}`);
    writeFileSync(path, elfExecutable(img));
    chmodSync(path, 0o755);
    let stdout: Buffer;
    try {
      stdout = execFileSync(path, [], { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26, timeout: 20_000 });
    } catch (e) {
      const err = e as { signal?: string; status?: number };
      rmSync(path, { force: true });
      if (cases.length === 1) return [{ ok: false, error: `native process died (${err.signal ?? `status ${err.status}`})`, unsupported: false }];
      // Find the case that kills the process: split the batch.
      const half = cases.length >> 1;
      return [...this.run(cases.slice(0, half), first), ...this.run(cases.slice(half), first + half)];
    }
    rmSync(path, { force: true });
    if (stdout.length !== img.data.length) throw new Error(`native run wrote ${stdout.length} bytes, expected ${img.data.length}`);
    const data = new Uint8Array(stdout.buffer, stdout.byteOffset, stdout.length);
    return cases.map((c, k) => ({ ok: true as const, out: readOutput(data, first + k, c.xmm !== null) }));
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A KVM guest (one vCPU reused for every batch). */
export class KvmOracle implements Oracle {
  readonly name = 'kvm';
  readonly description: string;
  private vcpu!: Vcpu;
  private mem!: GuestMemory;
  private readonly make: () => void;

  /** Dependencies are passed in so that this module does not load the KVM backend (koffi) unless used. */
  constructor(kvm: { allocateGuestMemory: (size: number) => GuestMemory; newVcpu: (mem: GuestMemory) => Vcpu; native: boolean }) {
    // Destroying a KVM vCPU also releases its memory: both are made together.
    this.make = () => {
      this.mem = kvm.allocateGuestMemory(MEM_SIZE);
      this.vcpu = kvm.newVcpu(this.mem);
    };
    this.make();
    this.description = kvm.native ? 'KVM guest (hardware virtualization: the processor itself)' : "KVM guest on kvm-pvm (the kernel's x86 instruction emulator, not hardware)";
  }

  run(cases: CaseInput[]): CaseResult[] {
    if (cases.length === 0) return [];
    const img = buildImage(cases, 'hlt');
    const res = runOnVcpu(this.vcpu, this.mem, img, cases, (e) => e.startsWith('unknown-exit'));
    if (res.some((r) => !r.ok)) {
      // A vCPU that hit an emulation failure is not trusted for the next batch.
      this.vcpu.destroy?.();
      this.make();
    }
    return res;
  }

  close(): void {
    this.vcpu.destroy?.();
  }
}

/**
 * The process backend (cpu/process): each batch runs natively in a new sandboxed tender, so
 * this checks the emulator against the processor and, at the same time, the backend's own
 * handling of registers, EFLAGS and memory on the way in and out of the guest. A fault ends a
 * tender, so the cases after a faulting one run again in a new tender.
 */
export class ProcessOracle implements Oracle {
  readonly name = 'process';
  readonly description = 'process backend: a sandboxed tender process (the processor itself, 32-bit code at CPL 3)';

  /** Dependencies are passed in so that this module does not load the process backend (koffi) unless used. */
  constructor(private readonly proc: { allocateGuestMemory: (size: number) => GuestMemory; newVcpu: (mem: GuestMemory) => Vcpu }) {}

  run(cases: CaseInput[], first = 0): CaseResult[] {
    if (cases.length === 0) return [];
    const mem = this.proc.allocateGuestMemory(MEM_SIZE);
    const vcpu = this.proc.newVcpu(mem);
    let res: CaseResult[];
    try {
      // unknown-exit: the tender did not answer or ended on its own (not the guest's doing).
      res = runOnVcpu(vcpu, mem, buildImage(cases, 'hlt', first), cases, (e) => e.startsWith('unknown-exit'), { stopAtFault: true, first });
    } finally {
      vcpu.destroy?.();
    }
    const rest = res.indexOf(NOT_RUN);
    if (rest < 0) return res;
    return [...res.slice(0, rest), ...this.run(cases.slice(rest), first + rest)];
  }

  close(): void {}
}
