/**
 * The innermost loop of the KVM backend: KVM_RUN on the calling thread, with a per-thread
 * POSIX timer that ends the quantum.
 *
 * Preemption mechanism (why it is reliable):
 * - One real-time signal (`PREEMPT_SIGNAL`, SIGRTMAX-3, which neither Node nor glibc use) is
 *   set to SIG_IGN process-wide and is *blocked* in every thread that runs vCPUs. A blocked
 *   signal is never discarded, even when ignored; it stays pending until consumed.
 * - Each such thread owns a `timer_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID = that thread)`
 *   timer, armed one-shot for the quantum before the first KVM_RUN of a quantum.
 * - Each vCPU has KVM_SET_SIGNAL_MASK = the empty set, so while (and only while) the thread
 *   is inside KVM_RUN the signal is unblocked; when the timer fires the kernel kicks the vCPU
 *   out of guest mode and KVM_RUN fails with EINTR. On the way back to user space KVM restores
 *   the thread's mask, so the signal is never delivered to a handler: it is consumed with a
 *   zero-timeout sigtimedwait. No JS ever runs in signal context.
 * - The timer stays armed across the exits of one quantum (no timer syscall per hypercall);
 *   before a new quantum (another vCPU or another deadline) it is disarmed and any stale
 *   pending signal consumed, so an old expiry cannot cut the new quantum short. EINTR without
 *   our signal (some other signal hit the thread) just re-enters the guest.
 *
 * `createRunLoop` is self-contained (the worker threads rebuild it from its source text).
 */
import type { Libc } from './libc.js';

/** The numbers the run loop needs (plain data, so they can be sent to a worker). */
export interface RunLoopConfig {
  signo: number;
  KVM_RUN: number;
  EXIT_REASON: number;
  IMMEDIATE_EXIT: number;
  IO_DIRECTION: number;
  IO_SIZE: number;
  IO_PORT: number;
  IO_COUNT: number;
  IO_DATA_OFFSET: number;
  EXIT_IO: number;
  EXIT_INTR: number;
  EXIT_IO_OUT: number;
  EINTR: number;
  EAGAIN: number;
  SIG_BLOCK: number;
  SIGEV_THREAD_ID: number;
  CLOCK_MONOTONIC: number;
}

/** Index of each field in the result record (an Int32Array) `RunLoop.run` fills. */
export const RESULT = {
  /** `RUN_QUANTUM`, `RUN_ERROR`, or the kvm_run exit reason. */
  CODE: 0,
  /** For KVM_EXIT_IO: port, access size in bytes, the value (first element), direction, count. */
  PORT: 1,
  SIZE: 2,
  VALUE: 3,
  DIRECTION: 4,
  COUNT: 5,
  /** For RUN_ERROR: the errno of KVM_RUN. */
  ERRNO: 6,
  LENGTH: 8,
} as const;

/** Result code: the quantum ended (timer signal). */
export const RUN_QUANTUM = -1;
/** Result code: KVM_RUN failed with errno in `RESULT.ERRNO`. */
export const RUN_ERROR = -2;

export interface RunLoop {
  /**
   * Run the vCPU (`fd`, its mmap'd kvm_run seen through `run`) until an exit that needs Yakima
   * or until `quantumNs` nanoseconds have passed. Fills `result` (see `RESULT`), returns the
   * nanoseconds spent (wall clock, from arming the timer to the last exit).
   * An `out` exit is left pending: the next KVM_RUN completes it (moving EIP past the
   * instruction) before running guest code; call `complete` to do that without running the
   * guest (needed before reading or writing registers).
   */
  run(fd: number, run: DataView, quantumNs: number, result: Int32Array): number;
  /** Complete a pending I/O exit without running guest code (KVM_RUN with immediate_exit). */
  complete(fd: number, run: DataView): void;
  /** Delete this thread's timer. */
  dispose(): void;
}

/**
 * Prepare the calling thread (block the signal, create its timer) and return its run loop.
 * Call once per thread. Self-contained: see the module comment.
 */
export function createRunLoop(libc: Libc, c: RunLoopConfig): RunLoop {
  // The signal set (glibc sigset_t is 128 bytes; bit (signo-1)).
  const set = new Uint8Array(128);
  set[(c.signo - 1) >> 3] |= 1 << ((c.signo - 1) & 7);
  if (libc.pthread_sigmask(c.SIG_BLOCK, set, null) !== 0) throw new Error('pthread_sigmask failed');
  const sev = new Uint8Array(64);
  const sevDv = new DataView(sev.buffer);
  sevDv.setInt32(8, c.signo, true);
  sevDv.setInt32(12, c.SIGEV_THREAD_ID, true);
  sevDv.setInt32(16, libc.gettid(), true);
  const idBuf = new Uint8Array(8);
  if (libc.timer_create(c.CLOCK_MONOTONIC, sev, idBuf) !== 0) throw new Error(`timer_create failed: errno ${libc.errno()}`);
  const timerId = new DataView(idBuf.buffer).getBigUint64(0, true);
  const spec = new Uint8Array(32);
  const specDv = new DataView(spec.buffer);
  const zeroSpec = new Uint8Array(32);
  const zeroTimeout = new Uint8Array(16);

  const arm = (ns: number): void => {
    const n = Math.max(1000, Math.floor(ns));
    specDv.setBigInt64(16, BigInt(Math.floor(n / 1e9)), true);
    specDv.setBigInt64(24, BigInt(n % 1e9), true);
    libc.timer_settime(timerId, 0, spec, null);
  };
  /** Consume our signal if pending; true if it was. */
  const eat = (): boolean => libc.sigtimedwait(set, null, zeroTimeout) === c.signo;

  // The timer stays armed across exits of one quantum: a run whose deadline matches the armed
  // one (same vCPU; no more than REUSE_MS earlier, or up to 5% of the quantum later — callers
  // that pass "what is left" drift later by the time spent outside the run loop) continues
  // that quantum without any timer syscall. If the timer fires while no KVM_RUN is in
  // progress, the signal waits (blocked) and the next KVM_RUN returns EINTR at once: the
  // quantum has ended, as it should.
  const REUSE_MS = 0.05;
  let armedFd = -1;
  let armedDeadline = 0;

  return {
    run(fd, run, quantumNs, result) {
      const t0 = performance.now();
      const deadline = t0 + quantumNs / 1e6;
      const later = Math.max(REUSE_MS, quantumNs / 2e7);
      if (armedFd !== fd || deadline < armedDeadline - REUSE_MS || deadline > armedDeadline + later) {
        if (armedFd !== -1) libc.timer_settime(timerId, 0, zeroSpec, null);
        eat(); // a stale expiry of an earlier quantum
        arm(quantumNs);
        armedFd = fd;
        armedDeadline = deadline;
      }
      let code = 0;
      for (;;) {
        const r = libc.ioctlInt(fd, c.KVM_RUN, 0);
        if (r < 0) {
          const e = libc.errno();
          if (e === c.EINTR || e === c.EAGAIN) {
            if (eat()) {
              code = -1; // RUN_QUANTUM
              break;
            }
            continue; // another signal: re-enter the guest
          }
          code = -2; // RUN_ERROR
          result[6] = e;
          break;
        }
        code = run.getUint32(c.EXIT_REASON, true);
        if (code === c.EXIT_INTR) {
          if (eat()) {
            code = -1;
            break;
          }
          continue;
        }
        if (code === c.EXIT_IO) {
          const dir = run.getUint8(c.IO_DIRECTION);
          const size = run.getUint8(c.IO_SIZE);
          const count = run.getUint32(c.IO_COUNT, true);
          const off = Number(run.getBigUint64(c.IO_DATA_OFFSET, true));
          result[1] = run.getUint16(c.IO_PORT, true);
          result[2] = size;
          result[3] = size === 1 ? run.getUint8(off) : size === 2 ? run.getUint16(off, true) : run.getInt32(off, true);
          result[4] = dir;
          result[5] = count;
        }
        break;
      }
      // The one-shot timer has fired and its signal is consumed: nothing is armed any more.
      if (code === -1) armedFd = -1;
      result[0] = code;
      return (performance.now() - t0) * 1e6;
    },
    complete(fd, run) {
      run.setUint8(c.IMMEDIATE_EXIT, 1);
      libc.ioctlInt(fd, c.KVM_RUN, 0);
      run.setUint8(c.IMMEDIATE_EXIT, 0);
    },
    dispose() {
      libc.timer_delete(timerId);
    },
  };
}
