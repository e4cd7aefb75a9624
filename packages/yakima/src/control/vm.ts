import { IRQ, LAYOUT, UPCALL_FRAME, VREG_RW, type Manifest } from '@denali/image-format';
import type { BootImage } from '../boot/boot-image.js';
import type { GuestMemory } from '../boot/guest-memory.js';
import { Reg, type Vcpu } from '../cpu/vcpu.js';
import { ClockDevice } from '../devices/clock.js';
import { ConsoleDevice, type ConsoleSink } from '../devices/console.js';
import type { NicDevice } from '../net/nic.js';
import type { FaultReport } from './fault-report.js';

/**
 * Life of a VM: runnable (in the run queue or running), idle (in the idle table), paused by the
 * operator (in neither; resumes as runnable), swapped (idle, its memory and vCPU written to the
 * swap area; any virtual interrupt swaps it back in), or finished (exited, faulted, stopped).
 */
export type VmState = 'runnable' | 'idle' | 'paused' | 'swapped' | 'exited' | 'faulted' | 'stopped';

/** Counters kept per VM; cheap enough to update on every VM exit. */
export interface VmStats {
  /** Times the VM was entered (scheduled onto the vCPU). */
  entries: number;
  /** Quanta that ended by preemption (the VM was still running). */
  preemptions: number;
  hypercalls: number;
  /** IDLE hypercalls that put the VM to sleep. */
  idles: number;
  /** Upcalls delivered (virtual interrupt batches seen by an interrupt-enabled guest). */
  upcalls: number;
  /** Console bytes the guest wrote (accepted by CONSOLE_WRITE). */
  consoleBytes: number;
  /** Times CONSOLE_WRITE found the console buffer full and the VM waited for the host to drain it. */
  consoleWaits: number;
  /** Times the guest asked for its network (an empty NET_SEND) although it has no NIC; the CLI hints at -p / --net. */
  netWithoutNic: number;
  /** VM exits handled by Yakima (hypercalls, quantum ends, halts, faults). */
  exits: number;
  /** Host time spent running this VM's vCPU (guest CPU time), in µs. */
  cpuTimeUs: number;
  /** Times the VM was swapped out to the swap area / swapped back in. */
  swapOuts: number;
  swapIns: number;
}

/** Hypercall data charged as one guest instruction of the quantum (a copy costs ~1 instruction per 4 bytes). */
export const BYTES_PER_INSTRUCTION = 4;

/**
 * One Denali virtual machine: its guest memory, its vCPU, its devices, and its scheduling state.
 * Devices raise virtual interrupts with `raise`; they are queued while the VM is not running
 * and delivered as one batch on the next VM entry (paper 3.1.1).
 */
export class Vm {
  state: VmState = 'runnable';
  /** Virtual interrupts raised since the last VM entry (IRQ bits). */
  pendingIrqs = 0;
  /** Exit status once `state` is 'exited'. */
  exitStatus: number | undefined;
  /** The fault that stopped the VM once `state` is 'faulted'. */
  fault: FaultReport | undefined;
  readonly stats: VmStats = { entries: 0, preemptions: 0, hypercalls: 0, idles: 0, upcalls: 0, consoleBytes: 0, consoleWaits: 0, netWithoutNic: 0, exits: 0, cpuTimeUs: 0, swapOuts: 0, swapIns: 0 };
  /** Instructions the vCPU had retired when it was swapped out (its placeholder vCPU counts none). */
  retiredAtSwapOut = 0;
  /**
   * Host work done for this VM in the current quantum (hypercall data moved), in
   * instruction-equivalents; the scheduler subtracts it from the quantum (`chargeBytes`).
   */
  charged = 0;
  /** `performance.now()` (ms) when the VM was created; `endedAt` when it finished. */
  readonly startedAt = performance.now();
  endedAt: number | undefined;
  readonly console: ConsoleDevice;
  readonly clock = new ClockDevice();
  /**
   * Guest memory. Replaced on swap-in; while the VM is swapped out it is a placeholder whose
   * contents throw `SwapError` (swap/swapped.ts).
   */
  memory: GuestMemory;
  /**
   * Host bytes held privately by this VM, set by Yakima's swap manager (swap/swapper.ts):
   * its written guest pages at the last measurement plus its vCPU and device objects; while
   * swapped out, what the VM object itself still holds.
   */
  hostBytes = 0;
  /** Position of the VM in the scheduler's idle table: its heap index, -2 when idle with no timeout, -1 when not in it (sched/idle-table.ts `IdlePositions`). */
  idlePosition = -1;
  /** The VM's virtual NIC, when the Yakima instance has a network. */
  nic: NicDevice | undefined;

  constructor(
    readonly id: number,
    /** Display name: the image name, made unique within the Yakima instance. */
    readonly name: string,
    readonly manifest: Manifest,
    readonly boot: BootImage,
    /** The vCPU. Replaced on swap-in; a placeholder that throws `SwapError` while swapped out. */
    public vcpu: Vcpu,
    sink: ConsoleSink,
    /** Called when an interrupt is raised for this VM, so the scheduler can wake it. */
    private readonly onInterrupt: (vm: Vm) => void,
  ) {
    this.memory = boot.memory;
    this.console = new ConsoleDevice(
      name,
      sink,
      () => this.raise(IRQ.CONSOLE),
      () => this.onInterrupt(this), // room in the console buffer: wake a VM waiting to write
    );
  }

  /**
   * Charge `bytes` of hypercall data movement to this VM's quantum, at `BYTES_PER_INSTRUCTION`
   * bytes per instruction-equivalent, so a VM cannot move unbounded data in one quantum.
   */
  chargeBytes(bytes: number): void {
    this.charged += Math.ceil(bytes / BYTES_PER_INSTRUCTION);
  }

  get finished(): boolean {
    return this.state === 'exited' || this.state === 'faulted' || this.state === 'stopped';
  }

  /**
   * Host memory this VM holds now, in bytes: its private (written) guest pages and per-VM
   * state (vCPU, devices); guest pages still shared with its image's or clone parent's
   * template are not counted (they are held once per template). See `Yakima.swapStats`.
   */
  residentBytes(): number {
    return this.hostBytes;
  }

  /** Queue a virtual interrupt (an `IRQ` bit) and wake the VM if it idles. */
  raise(irq: number): void {
    if (this.finished) return;
    this.pendingIrqs |= irq;
    this.onInterrupt(this);
  }

  /** The guest-visible pending bitmap (RW virtual register PENDING). */
  get guestPending(): number {
    return this.memory.dv.getUint32(LAYOUT.VREG_RW_BASE + VREG_RW.PENDING, true);
  }

  /**
   * VM entry: refresh the clock registers, deliver queued interrupts as one batch into the
   * PENDING register and, when the guest has enabled interrupts and registered an upcall
   * entry, redirect the vCPU to it (paper 3.1.1). Returns false when the upcall frame cannot
   * be pushed (the guest's stack pointer is bad): the caller faults the VM.
   */
  enter(): boolean {
    this.stats.entries++;
    const mem = this.memory;
    const rw = LAYOUT.VREG_RW_BASE;
    this.clock.publish(mem);
    if (this.pendingIrqs !== 0) {
      mem.dv.setUint32(rw + VREG_RW.PENDING, (this.guestPending | this.pendingIrqs) >>> 0, true);
      this.pendingIrqs = 0;
    }
    const enabled = mem.dv.getUint32(rw + VREG_RW.INTERRUPT_ENABLE, true);
    const entry = mem.dv.getUint32(rw + VREG_RW.UPCALL_ENTRY, true);
    if (enabled === 0 || entry === 0 || this.guestPending === 0) return true;
    const regs = this.vcpu.getRegs();
    const sp = (regs.gpr[Reg.ESP]! - UPCALL_FRAME.SIZE) >>> 0;
    if (!mem.canWrite(sp, UPCALL_FRAME.SIZE)) return false;
    mem.dv.setUint32(sp + UPCALL_FRAME.EFLAGS, regs.eflags >>> 0, true);
    mem.dv.setUint32(sp + UPCALL_FRAME.EIP, regs.eip >>> 0, true);
    mem.dv.setUint32(rw + VREG_RW.INTERRUPT_ENABLE, 0, true);
    regs.gpr[Reg.ESP] = sp;
    regs.eip = entry;
    this.vcpu.setRegs(regs);
    this.stats.upcalls++;
    return true;
  }
}
