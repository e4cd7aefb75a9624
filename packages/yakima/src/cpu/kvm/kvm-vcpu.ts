/**
 * One Denali VM on KVM: a KVM VM with one vCPU, running native x86 in 32-bit protected mode
 * (flat segments, no paging), no BIOS and no boot loader — Yakima's boot image is already in
 * the guest memory and the initial registers come from `setRegs`.
 *
 * Guest-physical map (KVM memory slots):
 * - [0, 0x1000): no slot — any access exits as MMIO and faults the VM ('memory');
 * - [0x1000, 0x2000): read-only slot (KVM_MEM_READONLY) — writes exit as MMIO → 'memory';
 * - [0x2000, size): read-write slot;
 * - `DIAG_BASE` (0xffe00000): Yakima's read-only diagnostic page (GDT, TSS, IDT and exception
 *   stubs, see diag.ts) — outside [0, size), so the documented map is unchanged.
 * Hypercalls are `out` exits; `hlt` exits; a guest that spins is stopped at the end of its
 * quantum by a per-thread timer signal (run-loop.ts).
 */
import { KVM_INSTRUCTIONS_PER_MICROSECOND } from './constants.js';
import { LAYOUT } from '@denali/image-format';
import type { GuestMemory } from '../../boot/guest-memory.js';
import { Reg, type FaultCause, type Vcpu, type VcpuExit, type VcpuRegs, type VcpuState } from '../vcpu.js';
import {
  classifyVector,
  DIAG_BASE,
  DIAG_GDT,
  DIAG_GDT_LIMIT,
  DIAG_IDT,
  DIAG_IDT_LIMIT,
  DIAG_PORT,
  DIAG_SIZE,
  DIAG_TSS,
  DIAG_TSS_LIMIT,
  diagHostPage,
  isDiagStubEip,
  SEL_CODE,
  SEL_DATA,
  SEL_TSS,
  vectorHasErrorCode,
} from './diag.js';
import {
  exitReasonName,
  KERNEL_SIGSET_SIZE,
  KVM,
  KVM_DTABLE,
  KVM_EXIT,
  KVM_EXIT_IO_IN,
  KVM_EXIT_IO_OUT,
  KVM_FPU_SIZE,
  KVM_INTERNAL_ERROR,
  KVM_MEM_READONLY,
  KVM_MEMORY_REGION,
  KVM_REGS,
  KVM_RUN,
  KVM_SEGMENT,
  KVM_SREGS,
  KVM_SREGS_SIZE,
  KVM_SYNC_X86_REGS,
  KVM_USERSPACE_MEMORY_REGION_SIZE,
} from './kvm-api.js';
import { hostAddressOf, releaseGuestMemory } from './kvm-memory.js';
import { locateWriter } from './locate.js';
import { libc, LINUX, sysError } from './libc.js';
import { kvmSystem } from './probe.js';
import { createRunLoop, RESULT, RUN_ERROR, RUN_QUANTUM, type RunLoop, type RunLoopConfig } from './run-loop.js';

export { KVM_INSTRUCTIONS_PER_MICROSECOND };

/** Guest-physical address given to KVM_SET_TSS_ADDR (3 pages, far outside guest memory). */
export const KVM_TSS_ADDR = 0xfffbd000;

const SLOT_VREG_RO = 0;
const SLOT_RAM = 1;
const SLOT_DIAG = 2;

/** Runs KVM_RUN somewhere else (a worker thread); implemented by `KvmBackend`. */
export interface KvmExecutor {
  /**
   * Same contract as `RunLoop.run`, asynchronously; resolves with the nanoseconds spent.
   * An out exit is completed by the executor itself (EIP moves past the instruction) by the
   * time `settle` returns.
   */
  run(vcpuFd: number, runAddress: bigint, quantumNs: number, result: Int32Array): Promise<number>;
  /** Wait until the last out exit has been completed (so registers are final). Short and synchronous. */
  settle(): void;
}

let preemptSignal: number | undefined;

/** The real-time signal used to end quanta (SIGRTMAX-3), set to SIG_IGN process-wide once. */
export function preemptionSignal(): number {
  if (preemptSignal === undefined) {
    const c = libc();
    const signo = c.sigrtmax() - 3;
    // SIG_IGN: harmless if it ever reaches a thread that does not block it. Threads running
    // vCPUs block it, and a blocked signal is kept pending even when ignored.
    c.signal(signo, 1n);
    preemptSignal = signo;
  }
  return preemptSignal;
}

/** The run loop's configuration for this process (sent to workers as plain data). */
export function runLoopConfig(): RunLoopConfig {
  return {
    signo: preemptionSignal(),
    KVM_RUN: KVM.RUN,
    EXIT_REASON: KVM_RUN.EXIT_REASON,
    IMMEDIATE_EXIT: KVM_RUN.IMMEDIATE_EXIT,
    IO_DIRECTION: KVM_RUN.IO_DIRECTION,
    IO_SIZE: KVM_RUN.IO_SIZE,
    IO_PORT: KVM_RUN.IO_PORT,
    IO_COUNT: KVM_RUN.IO_COUNT,
    IO_DATA_OFFSET: KVM_RUN.IO_DATA_OFFSET,
    EXIT_IO: KVM_EXIT.IO,
    EXIT_INTR: KVM_EXIT.INTR,
    EXIT_IO_OUT: KVM_EXIT_IO_OUT,
    EINTR: LINUX.EINTR,
    EAGAIN: LINUX.EAGAIN,
    SIG_BLOCK: LINUX.SIG_BLOCK,
    SIGEV_THREAD_ID: LINUX.SIGEV_THREAD_ID,
    CLOCK_MONOTONIC: LINUX.CLOCK_MONOTONIC,
  };
}

let mainLoop: RunLoop | undefined;
/** The run loop of the thread that loaded this module (used by the synchronous `run`). */
function localRunLoop(): RunLoop {
  mainLoop ??= createRunLoop(libc(), runLoopConfig());
  return mainLoop;
}

/** kvm_regs offsets of the eight general registers, in `Reg` order (EAX ECX EDX EBX ESP EBP ESI EDI). */
const GPR_OFFSETS = [KVM_REGS.RAX, KVM_REGS.RCX, KVM_REGS.RDX, KVM_REGS.RBX, KVM_REGS.RSP, KVM_REGS.RBP, KVM_REGS.RSI, KVM_REGS.RDI];

/** CR0: PE | MP | ET | NE (protected mode, no paging; x87/SSE usable). CR4: OSFXSR | OSXMMEXCPT. */
const CR0_INIT = 0x33;
const CR4_INIT = 0x600;

/**
 * A Denali vCPU on KVM. Implements `Vcpu` (synchronous `run` on the calling thread, the
 * instruction budget turned into time at `KVM_INSTRUCTIONS_PER_MICROSECOND`) and adds
 * `runAsync` (KVM_RUN on a worker thread, see `KvmBackend`).
 *
 * Registers live in the mmap'd kvm_run area (KVM_CAP_SYNC_REGS): `getRegs`/`setRegs` are
 * plain memory accesses, valid whenever the vCPU is not running.
 */
export class KvmVcpu implements Vcpu {
  private readonly vmFd: number;
  private readonly vcpuFd: number;
  private readonly runAddress: bigint;
  private readonly runSize: number;
  private readonly runView: DataView;
  private readonly result = new Int32Array(RESULT.LENGTH);
  private guestNs = 0;
  private running = false;
  /** A synchronous `run` returned an out exit that KVM has not completed yet (EIP not advanced). */
  private ioPending = false;
  private destroyed = false;
  private destroyRequested = false;
  /**
   * The executor gave up on a run (its worker did not answer in time, or died): the worker
   * may still be inside KVM_RUN on this vCPU, so its kvm_run area, fds and memory are never
   * unmapped or closed (a leak, rather than a use-after-unmap crash of the whole process),
   * and the vCPU runs no more.
   */
  private abandoned = false;

  /**
   * @param memory guest memory from `allocateGuestMemory` (already holding the boot image).
   * @param executor where `runAsync` runs KVM_RUN; without one it runs on the calling thread.
   * @param onDestroy called once when the vCPU is destroyed (the backend's bookkeeping).
   * @throws KvmUnavailableError when KVM is not usable; Error when memory is not KVM memory
   *   or a KVM call fails.
   */
  constructor(
    readonly memory: GuestMemory,
    private readonly executor?: KvmExecutor,
    private readonly onDestroy?: () => void,
  ) {
    const sys = kvmSystem();
    const c = libc();
    const host = hostAddressOf(memory);
    if (host === undefined) throw new Error('KvmVcpu needs guest memory from allocateGuestMemory()');
    const vm = c.ioctlInt(sys.fd, KVM.CREATE_VM, 0);
    if (vm < 0) throw sysError('KVM_CREATE_VM', c.errno());
    let vcpu = -1;
    let run = 0n;
    try {
      check(c.ioctlInt(vm, KVM.SET_TSS_ADDR, KVM_TSS_ADDR), 'KVM_SET_TSS_ADDR');
      const ro = BigInt(LAYOUT.VREG_RO_BASE);
      const rw = BigInt(LAYOUT.VREG_RW_BASE);
      setRegion(vm, SLOT_VREG_RO, KVM_MEM_READONLY, LAYOUT.VREG_RO_BASE, LAYOUT.VREG_RW_BASE - LAYOUT.VREG_RO_BASE, host + ro);
      setRegion(vm, SLOT_RAM, 0, LAYOUT.VREG_RW_BASE, memory.size - LAYOUT.VREG_RW_BASE, host + rw);
      setRegion(vm, SLOT_DIAG, KVM_MEM_READONLY, DIAG_BASE, DIAG_SIZE, diagHostPage());
      vcpu = c.ioctlInt(vm, KVM.CREATE_VCPU, 0);
      check(vcpu, 'KVM_CREATE_VCPU');
      run = c.mmap(null, sys.vcpuMmapSize, LINUX.PROT_READ | LINUX.PROT_WRITE, 1 /* MAP_SHARED */, vcpu, 0);
      if (run === 0xffffffffffffffffn || run === 0n) throw sysError('mmap of kvm_run', c.errno());
      check(c.ioctlPtr(vcpu, KVM.SET_CPUID2, sys.cpuid), 'KVM_SET_CPUID2');
      setInitialSregs(vcpu);
      // Nothing blocked while in the guest: our preemption signal (blocked in the thread) can
      // then interrupt KVM_RUN. struct kvm_signal_mask { u32 len; u8 sigset[8]; }.
      const mask = new Uint8Array(4 + KERNEL_SIGSET_SIZE);
      new DataView(mask.buffer).setUint32(0, KERNEL_SIGSET_SIZE, true);
      check(c.ioctlPtr(vcpu, KVM.SET_SIGNAL_MASK, mask), 'KVM_SET_SIGNAL_MASK');
      // Registers travel through kvm_run (KVM_CAP_SYNC_REGS); seed them once.
      check(c.ioctlPtr(vcpu, KVM.GET_REGS, run + BigInt(KVM_RUN.SYNC_REGS)), 'KVM_GET_REGS');
    } catch (e) {
      if (run !== 0n) c.munmap(run, sys.vcpuMmapSize);
      if (vcpu >= 0) c.close(vcpu);
      c.close(vm);
      throw e;
    }
    this.vmFd = vm;
    this.vcpuFd = vcpu;
    this.runAddress = run;
    this.runSize = sys.vcpuMmapSize;
    this.runView = new DataView(c.view(run, sys.vcpuMmapSize));
    this.runView.setBigUint64(KVM_RUN.KVM_VALID_REGS, BigInt(KVM_SYNC_X86_REGS), true);
  }

  /** Estimated instructions retired: guest time × `KVM_INSTRUCTIONS_PER_MICROSECOND`. */
  get instructionsRetired(): number {
    return Math.floor((this.guestNs * KVM_INSTRUCTIONS_PER_MICROSECOND) / 1000);
  }

  /** Host time spent running this vCPU (inside the run loop), in microseconds. */
  get guestMicros(): number {
    return this.guestNs / 1000;
  }

  /** True while a `runAsync` is in flight. */
  get isRunning(): boolean {
    return this.running;
  }

  /**
   * Run on the calling thread until an exit that needs Yakima or until the time equivalent of
   * `maxInstructions` (at `KVM_INSTRUCTIONS_PER_MICROSECOND`) has passed.
   * Blocks the thread; use `runAsync` in the VMM. Do not mix both on one vCPU in a hot loop:
   * KVM prefers a vCPU to stay on one thread (the first KVM_RUN after a switch is slower).
   */
  run(maxInstructions: number): VcpuExit {
    this.checkIdle();
    const ns = (Math.max(1, maxInstructions) / KVM_INSTRUCTIONS_PER_MICROSECOND) * 1000;
    this.executor?.settle();
    this.ioPending = false; // this KVM_RUN completes it
    this.guestNs += localRunLoop().run(this.vcpuFd, this.runView, ns, this.result);
    const r = this.result;
    this.ioPending = r[RESULT.CODE] === KVM_EXIT.IO && r[RESULT.DIRECTION] === KVM_EXIT_IO_OUT;
    return this.decode();
  }

  /**
   * Run on this vCPU's worker thread until an exit that needs Yakima or until `quantumMicros`
   * of host time have passed (then `{kind:'quantum'}`). The event loop stays free meanwhile.
   * Calling it again with what is left of the same quantum continues that quantum without
   * re-arming the timer (a deadline up to 5% of the quantum later than the armed one counts
   * as the same quantum, so such a call may end that much early).
   * Only one run at a time per vCPU; `getRegs`/`setRegs` must wait until it resolves.
   */
  async runAsync(quantumMicros: number): Promise<VcpuExit> {
    if (this.abandoned && !this.destroyed) return this.abandonedFault('the vCPU was abandoned after an earlier run failed');
    this.checkIdle();
    if (!this.executor) return this.run(quantumMicros * KVM_INSTRUCTIONS_PER_MICROSECOND);
    this.settleIo();
    this.running = true;
    let failure: unknown;
    try {
      this.guestNs += await this.executor.run(this.vcpuFd, this.runAddress, Math.max(1, quantumMicros) * 1000, this.result);
    } catch (e) {
      // The worker did not answer in time (KvmWorkerStuckError) or is gone: never hang or
      // throw into the scheduler; the VM faults with the reason.
      failure = e;
      this.abandoned = true;
    } finally {
      this.running = false;
      if (this.destroyRequested) this.destroy();
    }
    if (failure !== undefined) return this.abandonedFault(failure instanceof Error ? failure.message : String(failure));
    if (this.destroyed) return { kind: 'fault', cause: 'unknown-exit', detail: 'vCPU destroyed while running', eip: 0, bytes: new Uint8Array() };
    return this.decode();
  }

  /** The fault of a run the executor gave up on (registers may be stale: the worker never finished). */
  private abandonedFault(detail: string): VcpuExit {
    const eip = this.destroyed && !this.abandoned ? 0 : this.runView.getUint32(KVM_RUN.SYNC_REGS + KVM_REGS.RIP, true);
    const m = this.memory;
    const bytes = !this.destroyed && m.canRead(eip, 1) ? m.u8.slice(eip, Math.min(eip + 15, m.size)) : new Uint8Array();
    return { kind: 'fault', cause: 'unknown-exit', detail, eip, bytes };
  }

  getRegs(): VcpuRegs {
    this.settleIo();
    const dv = this.runView;
    const base = KVM_RUN.SYNC_REGS;
    const gpr = GPR_OFFSETS.map((off) => dv.getUint32(base + off, true));
    return { gpr, eip: dv.getUint32(base + KVM_REGS.RIP, true), eflags: dv.getUint32(base + KVM_REGS.RFLAGS, true) };
  }

  setRegs(regs: VcpuRegs): void {
    this.checkIdle();
    this.settleIo();
    const dv = this.runView;
    const base = KVM_RUN.SYNC_REGS;
    GPR_OFFSETS.forEach((off, i) => dv.setBigUint64(base + off, BigInt(regs.gpr[i]! >>> 0), true));
    dv.setBigUint64(base + KVM_REGS.RIP, BigInt(regs.eip >>> 0), true);
    // Bit 1 of EFLAGS is always 1.
    dv.setBigUint64(base + KVM_REGS.RFLAGS, BigInt((regs.eflags | 2) >>> 0), true);
    const dirty = dv.getBigUint64(KVM_RUN.KVM_DIRTY_REGS, true);
    dv.setBigUint64(KVM_RUN.KVM_DIRTY_REGS, dirty | BigInt(KVM_SYNC_X86_REGS), true);
  }

  /**
   * The architectural state for swap and cloning: general registers, EIP, EFLAGS and the
   * FPU/SSE state of KVM_GET_FPU (`struct kvm_fpu`: x87 registers, FCW/FSW/FTW, XMM0-15,
   * MXCSR). Segment registers are not included: every Denali vCPU has the same flat ones.
   */
  saveState(): VcpuState {
    const regs = this.getRegs();
    const bytes = new Uint8Array(STATE_FPU + KVM_FPU_SIZE);
    const dv = new DataView(bytes.buffer);
    regs.gpr.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
    dv.setUint32(32, regs.eip >>> 0, true);
    dv.setUint32(36, regs.eflags >>> 0, true);
    dv.setFloat64(40, this.guestNs, true);
    const fpu = bytes.subarray(STATE_FPU);
    check(libc().ioctlPtr(this.vcpuFd, KVM.GET_FPU, fpu), 'KVM_GET_FPU');
    return { backend: 'kvm', bytes };
  }

  /** Load a `saveState` result. @throws Error for another backend's state or a failed ioctl. */
  restoreState(state: VcpuState): void {
    if (state.backend !== 'kvm' || state.bytes.length !== STATE_FPU + KVM_FPU_SIZE) throw new Error(`not a KVM vCPU state (backend '${state.backend}', ${state.bytes.length} bytes)`);
    const dv = new DataView(state.bytes.buffer, state.bytes.byteOffset, state.bytes.byteLength);
    const gpr = Array.from({ length: 8 }, (_, i) => dv.getUint32(i * 4, true));
    this.setRegs({ gpr, eip: dv.getUint32(32, true), eflags: dv.getUint32(36, true) });
    check(libc().ioctlPtr(this.vcpuFd, KVM.SET_FPU, state.bytes.slice(STATE_FPU)), 'KVM_SET_FPU');
    this.guestNs = dv.getFloat64(40, true);
  }

  /**
   * Close the vCPU and VM and give the guest memory back to the host (its GuestMemory then
   * reads as zeros). Idempotent; while a `runAsync` is in flight it happens when that returns.
   */
  destroy(): void {
    if (this.destroyed) return;
    if (this.running) {
      this.destroyRequested = true;
      return;
    }
    this.destroyed = true;
    if (this.abandoned) {
      // See `abandoned`: a worker may still use this kvm_run area and memory. Leak them.
      this.onDestroy?.();
      return;
    }
    this.executor?.settle(); // the worker must be done with this vCPU's kvm_run
    const c = libc();
    c.munmap(this.runAddress, this.runSize);
    c.close(this.vcpuFd);
    c.close(this.vmFd);
    releaseGuestMemory(this.memory);
    this.onDestroy?.();
  }

  /** Make a pending out exit complete (EIP past the instruction) before registers are used. */
  private settleIo(): void {
    if (this.abandoned) return; // nothing the worker did is final (or will be completed)
    if (this.ioPending) {
      this.ioPending = false;
      localRunLoop().complete(this.vcpuFd, this.runView);
    }
    this.executor?.settle();
  }

  private checkIdle(): void {
    if (this.destroyed) throw new Error('KvmVcpu used after destroy()');
    if (this.abandoned) throw new Error('KvmVcpu was abandoned after its worker did not answer');
    if (this.running) throw new Error('KvmVcpu is running (runAsync in flight)');
  }

  /** Turn the run loop's result into a VcpuExit. */
  private decode(): VcpuExit {
    const r = this.result;
    const code = r[RESULT.CODE]!;
    const dv = this.runView;
    switch (code) {
      case RUN_QUANTUM:
        return { kind: 'quantum' };
      case RUN_ERROR:
        return this.fault('unknown-exit', `KVM_RUN failed: ${sysError('', r[RESULT.ERRNO]!).message.slice(2)}`);
      case KVM_EXIT.HLT:
        return { kind: 'halt' };
      case KVM_EXIT.IO: {
        const port = r[RESULT.PORT]!;
        const size = r[RESULT.SIZE]!;
        if (r[RESULT.DIRECTION] === KVM_EXIT_IO_IN) {
          return this.fault('deprecated-instruction', `in from port 0x${port.toString(16)} is deprecated in Denali`);
        }
        if (r[RESULT.COUNT] !== 1) {
          return this.fault('deprecated-instruction', `string I/O (outs) to port 0x${port.toString(16)} is deprecated in Denali`);
        }
        if (port === DIAG_PORT && size === 4 && isDiagStubEip(this.getRegs().eip)) return this.exceptionFault(r[RESULT.VALUE]!);
        if (size !== 1 && size !== 2 && size !== 4) return this.fault('unknown-exit', `I/O exit of size ${size}`);
        return { kind: 'io-out', port, value: r[RESULT.VALUE]! >>> 0, size };
      }
      case KVM_EXIT.MMIO: {
        const addr = Number(dv.getBigUint64(KVM_RUN.MMIO_PHYS_ADDR, true));
        const len = dv.getUint32(KVM_RUN.MMIO_LEN, true);
        const write = dv.getUint8(KVM_RUN.MMIO_IS_WRITE) !== 0;
        const detail = `${write ? 'write' : 'read'} of ${len} bytes at 0x${addr.toString(16)}`;
        if (!write) return this.fault('memory', detail, addr);
        // KVM finished the write instruction before exiting: find where it started.
        const regs = this.getRegs();
        const start = locateWriter(this.memory, regs.eip, addr, regs.gpr);
        return this.fault('memory', start === undefined ? `${detail} (eip is after the writing instruction)` : detail, addr, start);
      }
      case KVM_EXIT.SHUTDOWN:
        return this.fault('triple-fault', 'shutdown (triple fault)');
      case KVM_EXIT.FAIL_ENTRY: {
        const reason = dv.getBigUint64(KVM_RUN.FAIL_ENTRY_REASON, true);
        return this.fault('unknown-exit', `VM entry failed (hardware reason 0x${reason.toString(16)})`);
      }
      case KVM_EXIT.INTERNAL_ERROR: {
        const sub = dv.getUint32(KVM_RUN.INTERNAL_SUBERROR, true);
        const eip = this.getRegs().eip;
        if (!this.memory.canRead(eip, 1)) return this.fault('memory', `instruction fetch at 0x${eip.toString(16)}`, eip);
        if (sub === KVM_INTERNAL_ERROR.DELIVERY_EV) {
          const esp = this.getRegs().gpr[Reg.ESP]!;
          return this.fault('triple-fault', `exception delivery failed (stack pointer 0x${esp.toString(16)})`);
        }
        // KVM emulates an instruction when it touches memory outside the slots (MMIO) or, on
        // hosts without hardware virtualization for this mode (e.g. kvm-pvm), every instruction.
        if (sub === KVM_INTERNAL_ERROR.EMULATION) return this.fault('unknown-exit', 'KVM could not emulate this instruction (MMIO access it cannot emulate, or an instruction the host must emulate but does not support)');
        return this.fault('unknown-exit', `KVM internal error, suberror ${sub}`);
      }
      default:
        return this.fault('unknown-exit', `unexpected ${exitReasonName(code)}`);
    }
  }

  private fault(cause: FaultCause, detail: string, address?: number, eipOverride?: number): VcpuExit {
    const eip = eipOverride ?? this.getRegs().eip;
    const m = this.memory;
    const bytes = m.canRead(eip, 1) ? m.u8.slice(eip, Math.min(eip + 15, m.size)) : new Uint8Array();
    return address === undefined ? { kind: 'fault', cause, detail, eip, bytes } : { kind: 'fault', cause, detail, eip, bytes, address };
  }

  /** An exception reported by a diagnostic stub: read the frame, restore EIP/ESP/EFLAGS, classify. */
  private exceptionFault(vector: number): VcpuExit {
    const regs = this.getRegs();
    const esp = regs.gpr[Reg.ESP]!;
    const m = this.memory;
    const hasCode = vectorHasErrorCode(vector);
    const frame = hasCode ? 16 : 12;
    if (!m.canRead(esp, frame)) return this.fault('triple-fault', `exception ${vector} with an unreadable stack`, undefined, 0);
    const errorCode = hasCode ? m.dv.getUint32(esp, true) : undefined;
    const at = esp + (hasCode ? 4 : 0);
    let eip = m.dv.getUint32(at, true);
    const eflags = m.dv.getUint32(at + 8, true);
    let { cause, detail } = classifyVector(vector, errorCode);
    if (vector === 3 || vector === 4) {
      eip = (eip - 1) >>> 0; // traps: the frame holds the next instruction
    } else if (vector === 13 && errorCode !== undefined && (errorCode & 2) !== 0) {
      cause = 'deprecated-instruction'; // #GP from the IDT limit: `int n` with n >= 32
      detail = `int 0x${(errorCode >>> 3).toString(16)} is deprecated in Denali`;
    } else if (eip >= 2 && m.canRead(eip - 2, 2) && m.u8[eip - 2] === 0xcd && m.u8[eip - 1] === vector) {
      cause = 'deprecated-instruction'; // `int n` with n < 32 lands in our stub directly
      detail = `int 0x${vector.toString(16)} is deprecated in Denali`;
      eip -= 2;
    }
    // Put the architectural state back as it was at the fault (EAX/EDX were used by the stub).
    const gpr = regs.gpr.slice();
    gpr[Reg.ESP] = (esp + frame) >>> 0;
    this.setRegs({ gpr, eip, eflags });
    return this.fault(cause, detail, undefined, eip);
  }
}

/** Offset of `struct kvm_fpu` in a saved state: after 8 GPRs, EIP, EFLAGS (u32) and guest ns (f64). */
const STATE_FPU = 48;

function check(ret: number, what: string): void {
  if (ret < 0) throw sysError(what, libc().errno());
}

function setRegion(vm: number, slot: number, flags: number, gpa: number, size: number, host: bigint): void {
  const buf = new Uint8Array(KVM_USERSPACE_MEMORY_REGION_SIZE);
  const dv = new DataView(buf.buffer);
  dv.setUint32(KVM_MEMORY_REGION.SLOT, slot, true);
  dv.setUint32(KVM_MEMORY_REGION.FLAGS, flags, true);
  dv.setBigUint64(KVM_MEMORY_REGION.GUEST_PHYS_ADDR, BigInt(gpa), true);
  dv.setBigUint64(KVM_MEMORY_REGION.MEMORY_SIZE, BigInt(size), true);
  dv.setBigUint64(KVM_MEMORY_REGION.USERSPACE_ADDR, host, true);
  check(libc().ioctlPtr(vm, KVM.SET_USER_MEMORY_REGION, buf), `KVM_SET_USER_MEMORY_REGION (slot ${slot})`);
}

/** 32-bit protected mode, flat 4 GiB code/data segments, no paging, Yakima's IDT/GDT/TSS. */
function setInitialSregs(vcpu: number): void {
  const c = libc();
  const buf = new Uint8Array(KVM_SREGS_SIZE);
  check(c.ioctlPtr(vcpu, KVM.GET_SREGS, buf), 'KVM_GET_SREGS');
  const dv = new DataView(buf.buffer);
  const seg = (at: number, sel: number, type: number, base: number, limit: number, s: number, db: number, g: number): void => {
    dv.setBigUint64(at + KVM_SEGMENT.BASE, BigInt(base), true);
    dv.setUint32(at + KVM_SEGMENT.LIMIT, limit >>> 0, true);
    dv.setUint16(at + KVM_SEGMENT.SELECTOR, sel, true);
    dv.setUint8(at + KVM_SEGMENT.TYPE, type);
    dv.setUint8(at + KVM_SEGMENT.PRESENT, 1);
    dv.setUint8(at + KVM_SEGMENT.DPL, 0);
    dv.setUint8(at + KVM_SEGMENT.DB, db);
    dv.setUint8(at + KVM_SEGMENT.S, s);
    dv.setUint8(at + KVM_SEGMENT.L, 0);
    dv.setUint8(at + KVM_SEGMENT.G, g);
    dv.setUint8(at + KVM_SEGMENT.AVL, 0);
    dv.setUint8(at + KVM_SEGMENT.UNUSABLE, 0);
  };
  seg(KVM_SREGS.CS, SEL_CODE, 0xb, 0, 0xffffffff, 1, 1, 1);
  for (const s of [KVM_SREGS.DS, KVM_SREGS.ES, KVM_SREGS.FS, KVM_SREGS.GS, KVM_SREGS.SS]) seg(s, SEL_DATA, 0x3, 0, 0xffffffff, 1, 1, 1);
  seg(KVM_SREGS.TR, SEL_TSS, 0xb, DIAG_TSS, DIAG_TSS_LIMIT, 0, 0, 0);
  seg(KVM_SREGS.LDT, 0, 0x2, 0, 0, 0, 0, 0);
  dv.setUint8(KVM_SREGS.LDT + KVM_SEGMENT.PRESENT, 0);
  dv.setUint8(KVM_SREGS.LDT + KVM_SEGMENT.UNUSABLE, 1);
  dv.setBigUint64(KVM_SREGS.GDT + KVM_DTABLE.BASE, BigInt(DIAG_GDT), true);
  dv.setUint16(KVM_SREGS.GDT + KVM_DTABLE.LIMIT, DIAG_GDT_LIMIT, true);
  dv.setBigUint64(KVM_SREGS.IDT + KVM_DTABLE.BASE, BigInt(DIAG_IDT), true);
  dv.setUint16(KVM_SREGS.IDT + KVM_DTABLE.LIMIT, DIAG_IDT_LIMIT, true);
  dv.setBigUint64(KVM_SREGS.CR0, BigInt(CR0_INIT), true);
  dv.setBigUint64(KVM_SREGS.CR3, 0n, true);
  dv.setBigUint64(KVM_SREGS.CR4, BigInt(CR4_INIT), true);
  dv.setBigUint64(KVM_SREGS.EFER, 0n, true);
  check(c.ioctlPtr(vcpu, KVM.SET_SREGS, buf), 'KVM_SET_SREGS');
}
