/**
 * One Denali VM on the process backend: a tender process (tender/tender.c) runs the guest's
 * 32-bit code natively in compatibility mode inside a seccomp sandbox; this class is its
 * Yakima-side half. It spawns the tender with the VM's memfd, hands it registers through the
 * control page, and turns each posted exit into a `VcpuExit`.
 *
 * What Yakima trusts: the kernel (the child's exit status and signal, its CPU time in
 * /proc/<pid>/schedstat) and its own bookkeeping. What it does not: anything on the control
 * page (see control-page.ts). Every wait is bounded; a tender that does not answer in time is
 * killed and its VM faulted.
 */
import { readFileSync } from 'node:fs';
import { HYPERCALL_PORT_BASE } from '@denali/image-format';
import { constants as osConstants } from 'node:os';
import type { GuestMemory } from '../../boot/guest-memory.js';
import { KVM_INSTRUCTIONS_PER_MICROSECOND } from '../kvm/constants.js';
import { LINUX, libc, sysError } from '../kvm/libc.js';
import type { FaultCause, Vcpu, VcpuExit, VcpuRegs, VcpuState } from '../vcpu.js';
import { CTL, EXIT, readMessage, readPostedExit, REPLY_LOAD_FPU, STATE_GUEST, STATE_POSTED, writeReply } from './control-page.js';
import { releaseSharedGuestMemory, sharedMemoryFd } from '../../memory/host-memory.js';
import { processSys } from './sys.js';
import { killProcess, reapProcess } from './spawn.js';
import { spawnTender, takeTender } from './tender-pool.js';
import type { Waiter } from './waiter.js';

/** Options of one process-backend vCPU (the backend fills them in). */
export interface ProcessVcpuOptions {
  /** CPU-time quantum of the tender's ITIMER_VIRTUAL, in µs (default 10,000). */
  quantumMicros?: number;
  /** Nice value of the tender (0-19; default 5: Yakima itself stays responsive). */
  nice?: number;
  /**
   * How long the main thread polls for an exit before handing the wait to a waiter thread, in
   * µs (default 30), when polling has been paying for this kind of exit (see `spinBudget`).
   */
  spinMicros?: number;
  /** Longest wait for one exit, in ms (default 2,000 + 20 × quantum). The tender is then killed. */
  answerTimeoutMs?: number;
  /** Where `runAsync` waits (none: `runAsync` blocks like `run`). */
  waiter?: () => Waiter;
  /** True when a waiter thread is loaded and ready (else a short wait polls rather than start one). */
  waiterReady?: () => boolean;
  /** Take the tender from the per-process pool of tenders started ahead (tender-pool.ts); default false: spawn one now. */
  pool?: boolean;
  /**
   * True when other VMs want a CPU (on one, or runnable and waiting): the tender then sleeps on
   * its next reply at once instead of spinning (see `resume`). Without it the tender always spins.
   */
  contended?: () => boolean;
}

/** How long a wait polls before it starts the first waiter thread, in ms. */
const WAITER_GRACE_MS = 3;

/**
 * `saveState` layout (little-endian): EAX..EDI (8 × u32), EIP, EFLAGS, guest time in µs (f64)
 * at 40, flags (u32) at 48 (bit 0: the x87/SSE area holds the guest's state; clear when the
 * guest never ran, so a fresh tender's initial state stands), the x87/SSE state (FXSAVE
 * layout, 512 bytes) at 64. Segments are not saved: every tender sets up the same ones.
 */
const STATE_FLAGS = 48;
const STATE_FPU = 64;
const STATE_BYTES = STATE_FPU + CTL.FPU_BYTES;

/** Every this many waits, one polls whatever the last exit took (see `spinBudget`). */
const SPIN_PROBE_EVERY = 16;

/** `fastAfter` index for exits that are not hypercalls (start-up, quantum ends); hypercalls use their number (0-31). */
const OTHER_EXIT = 32;

/** Least time between two reads of /proc/<pid>/schedstat for CPU accounting, in ms. */
const CPU_READ_MS = 10;
/** Least time between two schedstat reads of any vCPUs of this process, in ms (at most ~1,000 reads/s). */
const CPU_READ_GAP_MS = 1;
/** `performance.now()` before which no vCPU reads schedstat (see `cpuTimeMicros`). */
let nextCpuReadAt = 0;

const SIGNAL_REASONS: Record<string, [FaultCause, string]> = {
  SIGSYS: ['deprecated-instruction', 'the guest made a host system call (int 0x80, syscall, sysenter or 64-bit code); seccomp killed its process'],
  SIGSEGV: ['general-protection', "the VM's process crashed (SIGSEGV while handling a guest exit: the guest corrupted its own tender)"],
  SIGBUS: ['general-protection', "the VM's process crashed (SIGBUS)"],
  SIGKILL: ['unknown-exit', "the VM's process was killed (SIGKILL) from outside"],
};

/**
 * A Denali vCPU in a sandboxed host process. Registers are cached here between runs and sent
 * with each resume; `runAsync` waits on a waiter thread, `run` blocks the calling thread.
 */
export class ProcessVcpu implements Vcpu {
  /** The tender's pid (ours to kill and reap). */
  readonly pid: number;
  private readonly ctlAddress: bigint;
  private readonly ctl: DataView;
  private readonly ctlI32: Int32Array;
  private readonly quantumMicros: number;
  private readonly spinMicros: number;
  private readonly answerTimeoutMs: number;
  private regs: VcpuRegs = { gpr: [0, 0, 0, 0, 0, 0, 0, 0], eip: 0, eflags: 0x202 };
  private started = false;
  private running = false;
  private destroyRequested = false;
  private destroyed = false;
  /** Set once the kernel reported the tender's end (exit code or signal). */
  private ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private cancelWait: (() => void) | undefined;
  private lastCpuNs = 0;
  private lastCpuReadAt = -Infinity;
  private guestMicros = 0;
  /** Per kind of exit (hypercall number, or OTHER_EXIT): 1 when the resume after the last such exit was answered fast (see `spinBudget`). */
  private readonly fastAfter = new Uint8Array(OTHER_EXIT + 1).fill(1);
  /** Kind of the last exit collected (index into `fastAfter`). */
  private lastExitKey = OTHER_EXIT;
  private waits = 0;
  /** Exits handled (hypercalls, quanta, faults). */
  exits = 0;
  /** x87/SSE state from `restoreState`, loaded into the tender at its first resume. */
  private pendingFpu: Uint8Array | undefined;

  /**
   * Spawn the tender for `memory` (from `allocateSharedGuestMemory`, already holding the boot image).
   * @throws Error when the memory is not shared memory, the control page cannot be made, or
   *   the tender cannot be built (TenderBuildError).
   */
  constructor(
    readonly memory: GuestMemory,
    private readonly opts: ProcessVcpuOptions = {},
    private readonly onDestroy?: () => void,
  ) {
    const memfd = sharedMemoryFd(memory);
    if (memfd === undefined) throw new Error('ProcessVcpu needs guest memory from allocateSharedGuestMemory()');
    this.quantumMicros = Math.max(100, Math.min(10_000_000, Math.floor(opts.quantumMicros ?? 10_000)));
    this.spinMicros = Math.max(0, opts.spinMicros ?? 30);
    this.answerTimeoutMs = opts.answerTimeoutMs ?? 2000 + (20 * this.quantumMicros) / 1000;
    const nice = Math.max(0, Math.min(19, Math.floor(opts.nice ?? 5)));
    // A fresh exec with an empty environment; only the memfds are passed (spawnTender, tender-pool.ts).
    const started = opts.pool ? takeTender(memfd, memory.size, this.quantumMicros, nice) : spawnTender(memfd, memory.size, this.quantumMicros, nice);
    this.pid = started.pid;
    this.ctlAddress = started.ctlAddress;
    const buf = libc().view(this.ctlAddress, CTL.BYTES);
    this.ctl = new DataView(buf);
    this.ctlI32 = new Int32Array(buf);
  }

  /**
   * Exits on whose reply the tender spun rather than slept (see `resume`), as the tender
   * counts them: the guest can write this page, so a statistic, never a decision.
   */
  get tenderReplySpins(): number {
    return this.destroyed ? 0 : this.ctl.getUint32(CTL.REPLY_SPINS, true);
  }

  /** An estimate from the time the guest ran (whole instructions; the process gives no count). */
  get instructionsRetired(): number {
    return Math.round(this.guestMicros * KVM_INSTRUCTIONS_PER_MICROSECOND);
  }

  getRegs(): VcpuRegs {
    return { gpr: this.regs.gpr.slice(), eip: this.regs.eip, eflags: this.regs.eflags };
  }

  setRegs(regs: VcpuRegs): void {
    this.regs = { gpr: regs.gpr.map((r) => r >>> 0), eip: regs.eip >>> 0, eflags: regs.eflags >>> 0 };
  }

  /**
   * The vCPU's state for swapping and cloning: registers, flags, x87/SSE state (taken from the
   * tender at its last exit: it posts the FXSAVE image with every exit) and guest time. Call it
   * between runs (the tender waits at an exit, or has not run yet).
   */
  saveState(): VcpuState {
    const bytes = new Uint8Array(STATE_BYTES);
    const dv = new DataView(bytes.buffer);
    this.regs.gpr.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
    dv.setUint32(32, this.regs.eip >>> 0, true);
    dv.setUint32(36, this.regs.eflags >>> 0, true);
    dv.setFloat64(40, this.guestMicros, true);
    let fpu = this.pendingFpu;
    if (!fpu && this.started && !this.destroyed && Atomics.load(this.ctlI32, 0) === STATE_POSTED) {
      fpu = new Uint8Array(this.ctl.buffer, CTL.FPU, CTL.FPU_BYTES);
    }
    if (fpu) {
      bytes.set(fpu, STATE_FPU);
      dv.setUint32(STATE_FLAGS, 1, true);
    }
    return { backend: 'process', bytes };
  }

  /**
   * Load a `saveState` result into this (not yet run) vCPU: the registers now, the x87/SSE
   * state at the tender's first resume. Segments need nothing: the tender sets them up.
   * @throws Error for another backend's state or a malformed one.
   */
  restoreState(state: VcpuState): void {
    if (state.backend !== 'process' || state.bytes.length !== STATE_BYTES) throw new Error(`not a process vCPU state (backend '${state.backend}', ${state.bytes.length} bytes)`);
    const dv = new DataView(state.bytes.buffer, state.bytes.byteOffset, state.bytes.byteLength);
    const gpr = Array.from({ length: 8 }, (_, i) => dv.getUint32(i * 4, true));
    this.setRegs({ gpr, eip: dv.getUint32(32, true), eflags: dv.getUint32(36, true) });
    this.guestMicros = dv.getFloat64(40, true);
    this.pendingFpu = (dv.getUint32(STATE_FLAGS, true) & 1) !== 0 ? state.bytes.slice(STATE_FPU) : undefined;
  }

  /**
   * CPU time the VM's process has used, in µs, from the kernel (/proc/<pid>/schedstat);
   * the last value read once the process is gone.
   */
  cpuTimeMicros(fresh = false): number {
    const now = performance.now();
    // Yakima asks after every quantum (each time the VM idles): a file read each time would
    // cost the main thread more than a request's relay work. Accounting can be 10 ms behind.
    // Many VMs idling in turn would each read at every quantum: at most one read per
    // CPU_READ_GAP_MS in the whole process, so with thousands of VMs the accounts lag instead.
    if (!this.ended && (fresh || (now - this.lastCpuReadAt >= CPU_READ_MS && now >= nextCpuReadAt))) {
      this.lastCpuReadAt = now;
      nextCpuReadAt = now + CPU_READ_GAP_MS;
      try {
        const ns = Number(readFileSync(`/proc/${this.pid}/schedstat`, 'utf8').split(' ')[0]);
        if (Number.isFinite(ns)) this.lastCpuNs = ns;
      } catch {
        // gone between the check and the read: keep the last value
      }
    }
    return this.lastCpuNs / 1000;
  }

  /** Synchronous run: blocks the calling thread until the next exit (at most one CPU quantum of guest code). */
  run(_maxInstructions: number): VcpuExit {
    const t0 = performance.now();
    try {
      const pre = this.preRun();
      if (pre) return pre;
      const resumedAt = this.resume();
      if (!this.spin()) this.blockUntilPosted();
      this.noteExitGap(resumedAt);
      return this.collect();
    } finally {
      this.guestMicros += (performance.now() - t0) * 1000;
    }
  }

  /** Run until the next exit without blocking the event loop (the wait is on a waiter thread). */
  async runAsync(_quantumMicros: number): Promise<VcpuExit> {
    if (!this.opts.waiter) return this.run(0);
    const t0 = performance.now();
    this.running = true;
    try {
      let pre = this.preRun();
      if (pre) return pre;
      if (!this.started) {
        // The first exit is READY: the tender has set up and waits for the first registers.
        if (!this.spin()) await this.waitPosted(Math.max(5000, this.answerTimeoutMs));
        pre = this.startupExit();
        if (pre) return pre;
      }
      const resumedAt = this.resume();
      if (!this.spin()) await this.waitPosted(this.answerTimeoutMs);
      this.noteExitGap(resumedAt);
      return this.collect();
    } finally {
      this.running = false;
      this.guestMicros += (performance.now() - t0) * 1000;
      if (this.destroyRequested) this.destroy();
    }
  }

  /** Kill the tender and release the VM's memory and control page. Idempotent. */
  destroy(): void {
    this.destroyRequested = true;
    this.interruptWait();
    if (this.destroyed || this.running) return;
    this.destroyed = true;
    this.cpuTimeMicros(true);
    killProcess(this.pid);
    reapProcess(this.pid);
    libc().munmap(this.ctlAddress, CTL.BYTES);
    releaseSharedGuestMemory(this.memory);
    this.onDestroy?.();
  }

  /** An exit to report instead of running: the tender is gone, or (sync) still starting. */
  private preRun(): VcpuExit | undefined {
    if (this.destroyed) return this.failure('unknown-exit', 'the vCPU was destroyed');
    // With a waiter, a dead tender is noticed by the wait after the resume (the waiter thread
    // asks the kernel before each sleep): asking here too cost the main thread a waitid per
    // exit, ~7 % of swap-bench's requests/s at 100 process VMs.
    if (this.opts.waiter ? this.ended !== undefined : this.peekEnded()) return this.deathExit();
    if (!this.started && !this.opts.waiter) {
      if (!this.spin()) this.blockUntilPosted(Math.max(5000, this.answerTimeoutMs));
      return this.startupExit();
    }
    return undefined;
  }

  /** After waiting for READY: undefined when the tender is ready, else why not. */
  private startupExit(): VcpuExit | undefined {
    if (Atomics.load(this.ctlI32, 0) !== STATE_POSTED && this.peekEnded()) return this.deathExit();
    if (Atomics.load(this.ctlI32, 0) !== STATE_POSTED) return this.unanswered('start');
    const kind = this.ctl.getUint32(CTL.KIND, true);
    if (kind !== EXIT.READY) return this.failure('unknown-exit', `the VM's process did not start cleanly (first exit kind ${kind})`);
    this.started = true;
    return undefined;
  }

  /** Hand the page back to the tender with the current registers and wake it; returns performance.now(). */
  private resume(): number {
    writeReply(this.ctl, this.regs);
    // The tender may spin on its next reply (30-60 µs) only while no other VM wants a CPU:
    // spinning, it takes a core that Yakima needs to answer it or another VM needs to run.
    // Alone, spinning saves a futex wake-up per exit (swap-bench, 1 process VM: ~1.7x req/s).
    this.ctl.setUint32(CTL.REPLY_SPIN, this.opts.contended?.() ? 0 : 1, true);
    if (this.pendingFpu) this.replyFpu(this.pendingFpu);
    Atomics.store(this.ctlI32, 0, STATE_GUEST);
    // The tender spins a while before it sleeps; wake it only if it says it sleeps (a lying
    // guest only delays itself, and then hits the answer timeout).
    if (Atomics.load(this.ctlI32, CTL.SLEEPING >> 2) !== 0) processSys().futexWake(this.ctlAddress);
    return performance.now();
  }

  /** Hand a restored x87/SSE state to the tender with this resume (once: the tender clears the flag). */
  private replyFpu(fpu: Uint8Array): void {
    new Uint8Array(this.ctl.buffer, CTL.REPLY_FPU, CTL.FPU_BYTES).set(fpu);
    this.ctl.setUint32(CTL.REPLY_FLAGS, REPLY_LOAD_FPU, true);
    this.pendingFpu = undefined;
  }

  /** Note whether the exit just posted came within `spinMicros` of `resumedAt` (see `spinBudget`). */
  private noteExitGap(resumedAt: number): void {
    this.fastAfter[this.lastExitKey] = (performance.now() - resumedAt) * 1000 <= this.spinMicros ? 1 : 0;
  }

  /**
   * How long to poll for the next exit, in µs. Polling pays when the guest's next exit comes
   * within a few µs (a null hypercall round trip is 2-3 µs; a futex wait and a waiter thread
   * cost tens). When the guest computes longer before its next exit (a web server handling the
   * request NET_RECV brought), polling only takes the main thread — and on a machine with few
   * cores, the very core the tender needs: on 2 cores, polling 100 µs per exit cut httpd's
   * requests/s 2-3× against not polling. What comes next depends on what the guest just did,
   * so the choice is kept per kind of the previous exit (hypercall number): poll when the
   * last resume after that kind of exit was answered within `spinMicros`, and once every
   * `SPIN_PROBE_EVERY` waits anyway, so a VM whose exits become fast again is noticed.
   */
  private spinBudget(): number {
    if (this.spinMicros === 0) return 0;
    if (this.fastAfter[this.lastExitKey] !== 0 || ++this.waits % SPIN_PROBE_EVERY === 0) return this.spinMicros;
    return 0;
  }

  /** Poll for a posted exit for up to `spinBudget()` µs (a hypercall round trip is usually shorter). */
  private spin(): boolean {
    if (Atomics.load(this.ctlI32, 0) === STATE_POSTED) return true;
    const budget = this.spinBudget();
    if (budget === 0) return false;
    const until = performance.now() + budget / 1000;
    while (performance.now() < until) if (Atomics.load(this.ctlI32, 0) === STATE_POSTED) return true;
    return false;
  }

  private blockUntilPosted(timeoutMs = this.answerTimeoutMs): void {
    const s = processSys();
    const deadline = performance.now() + timeoutMs;
    while (Atomics.load(this.ctlI32, 0) !== STATE_POSTED) {
      const left = deadline - performance.now();
      if (left <= 0) return;
      s.futexWait(this.ctlAddress, STATE_GUEST, Math.min(left, 20) * 1e6);
      if (Atomics.load(this.ctlI32, 0) !== STATE_POSTED && this.peekEnded()) return;
    }
  }

  private async waitPosted(timeoutMs: number): Promise<void> {
    // No waiter thread yet: poll between event-loop turns for a short while first. A boot's
    // first exits come within ~1-2 ms; starting a thread for them costs the main thread ~1 ms
    // and the host ~50 ms of CPU that the booting guest competes with (4 of 5 hello boots did).
    if (this.opts.waiterReady && !this.opts.waiterReady()) {
      const graceEnd = performance.now() + Math.min(WAITER_GRACE_MS, timeoutMs);
      while (performance.now() < graceEnd) {
        if (Atomics.load(this.ctlI32, 0) === STATE_POSTED || this.peekEnded() || this.cancelledEarly()) return;
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    const waiter = this.opts.waiter!();
    // A new waiter thread takes ~50 ms to load: until then poll between event-loop turns, so a
    // VM's boot does not wait for the thread.
    const until = performance.now() + timeoutMs;
    while (!waiter.isReady) {
      if (this.peekEnded() || this.cancelledEarly() || Atomics.load(this.ctlI32, 0) === STATE_POSTED || performance.now() > until) return;
      await new Promise<void>((r) => setImmediate(r));
    }
    if (this.ended !== undefined || this.cancelledEarly()) return;
    await waiter.wait(this.ctlAddress, this.pid, Math.max(0, until - performance.now()), (cancel) => {
      this.cancelWait = cancel;
      // The process may have ended while this wait sat in the waiter's queue.
      if (this.ended || this.cancelledEarly()) cancel();
    });
    this.cancelWait = undefined;
  }

  /** True when a destroy was requested (a poll loop should stop). */
  private cancelledEarly(): boolean {
    return this.destroyRequested;
  }

  private interruptWait(): void {
    if (!this.cancelWait) return;
    this.cancelWait();
    try {
      processSys().futexWake(this.ctlAddress);
    } catch {
      // koffi unavailable: the waiter's 50 ms slice notices the cancel anyway
    }
  }

  /** Turn the posted exit (or its absence) into a VcpuExit. */
  private collect(): VcpuExit {
    if (Atomics.load(this.ctlI32, 0) !== STATE_POSTED) {
      if (this.peekEnded()) return this.deathExit();
      return this.unanswered('run');
    }
    const posted = readPostedExit(this.ctl, (eip) => this.bytesAt(eip));
    this.exits++;
    const ex = posted.exit;
    this.lastExitKey = ex?.kind === 'io-out' ? (ex.port - HYPERCALL_PORT_BASE) & 31 : OTHER_EXIT;
    this.regs = posted.regs;
    if (!posted.exit) return this.failure('unknown-exit', 'control page: READY posted again');
    return posted.exit;
  }

  /** The tender did not post in time: kill it, fault the VM. */
  private unanswered(what: 'start' | 'run'): VcpuExit {
    killProcess(this.pid);
    const limit = what === 'start' ? Math.max(5000, this.answerTimeoutMs) : this.answerTimeoutMs;
    return this.failure('unknown-exit', `the VM's process did not ${what === 'start' ? 'start' : 'answer'} within ${limit.toFixed(0)} ms; it was killed`);
  }

  /** Ask the kernel whether the tender has ended (for waits that block the event loop). */
  private peekEnded(): boolean {
    if (this.ended) return true;
    const st = processSys().peekExit(this.pid);
    if (!st) return false;
    const name = st.signal === null ? null : ((Object.entries(osConstants.signals).find(([, n]) => n === st.signal)?.[0] ?? `signal ${st.signal}`) as NodeJS.Signals);
    this.ended = { code: st.code, signal: name };
    return true;
  }

  /** The process ended without being asked to: report what the kernel says. */
  private deathExit(): VcpuExit {
    const e = this.ended;
    const signal = e?.signal ?? null;
    if (signal) {
      const [cause, detail] = SIGNAL_REASONS[signal] ?? ['unknown-exit', `the VM's process was killed by ${signal}`];
      return this.failure(cause, detail);
    }
    const code = e?.code;
    if (code === 111) return this.failure('unknown-exit', `the VM's process failed to set up: ${readMessage(new Uint8Array(this.ctl.buffer)) || 'no reason given'}`);
    return this.failure('unknown-exit', code === undefined || code === null ? "the VM's process is gone" : `the VM's process exited with code ${code}`);
  }

  private failure(cause: FaultCause, detail: string): VcpuExit {
    return { kind: 'fault', cause, detail, eip: this.regs.eip, bytes: this.bytesAt(this.regs.eip) };
  }

  private bytesAt(eip: number): Uint8Array {
    const m = this.memory;
    return m.canRead(eip, 1) ? m.u8.slice(eip, Math.min(eip + 15, m.size)) : new Uint8Array();
  }
}
