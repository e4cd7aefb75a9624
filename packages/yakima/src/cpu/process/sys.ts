/**
 * The Linux calls the process backend's waits need beyond `cpu/kvm/libc.ts`: raw futex
 * wait/wake and a non-reaping waitid, through koffi (no compiled addon). (Memory files are
 * made in memory/native.ts, processes started in spawn.ts.)
 *
 * `bindProcessSys` is self-contained (it uses nothing from its module scope): the waiter
 * threads rebuild it from its source text, so the main thread and the workers share one
 * definition.
 */
import type { KoffiModule } from '../kvm/libc.js';
import { koffiModule } from '../kvm/libc.js';

/** The calls, typed loosely at the FFI boundary (pointers are bigint). */
export interface ProcessSys {
  /**
   * FUTEX_WAIT (shared, not private: the word lives in a memfd mapped by two processes) on the
   * u32 at `addr` while it equals `expected`, for at most `timeoutNs`. Returns 0 on wake,
   * -1 with errno set otherwise (ETIMEDOUT, EAGAIN when the value already differs, EINTR).
   */
  futexWait(addr: bigint, expected: number, timeoutNs: number): number;
  /** FUTEX_WAKE every waiter on the u32 at `addr`. */
  futexWake(addr: bigint): number;
  /**
   * waitid(P_PID, pid, WEXITED | WNOHANG | WNOWAIT): how `pid` ended, without reaping it (Node
   * still reaps and reports it). undefined while it runs or when it is not our child.
   */
  peekExit(pid: number): { code: number | null; signal: number | null } | undefined;
  errno(): number;
  view(addr: bigint, length: number): ArrayBuffer;
}

/** Build the bindings from a loaded koffi module. Self-contained: see the module comment. */
export function bindProcessSys(koffi: KoffiModule): ProcessSys {
  const lib = koffi.load('libc.so.6');
  const f = (decl: string): ((...args: unknown[]) => unknown) => lib.func(decl) as (...args: unknown[]) => unknown;
  // glibc's syscall() is an assembly stub: a fixed six-argument prototype is safe to call.
  const syscallPtr = f('long syscall(long n, uint64_t a, long b, long c, void *d, long e, long f)');
  const waitid = f('int waitid(int idtype, int id, void *infop, int options)');
  const ts = new BigInt64Array(2);
  const info = new Int32Array(32);
  return {
    futexWait: (addr, expected, timeoutNs) => {
      const ns = Math.max(0, Math.floor(timeoutNs));
      ts[0] = BigInt(Math.floor(ns / 1e9));
      ts[1] = BigInt(ns % 1e9);
      return Number(syscallPtr(202, addr, 0, expected, ts, 0, 0));
    },
    futexWake: (addr) => Number(syscallPtr(202, addr, 1, 0x7fffffff, null, 0, 0)),
    peekExit: (pid) => {
      info.fill(0);
      // P_PID = 1; WNOHANG = 1, WEXITED = 4, WNOWAIT = 0x01000000. siginfo: si_pid at 16, si_code at 8, si_status at 24.
      if ((waitid(1, pid, info, 0x01000005) as number) !== 0 || info[4] !== pid) return undefined;
      return info[2] === 1 ? { code: info[6]!, signal: null } : { code: null, signal: info[6]! };
    },
    errno: () => koffi.errno(),
    view: (addr, length) => koffi.view(addr, length),
  };
}

let sys: ProcessSys | undefined;

/** The process-wide bindings (loaded on first use). @throws Error when koffi cannot be loaded. */
export function processSys(): ProcessSys {
  sys ??= bindProcessSys(koffiModule());
  return sys;
}
