/**
 * The few Linux calls the process backend needs beyond `cpu/kvm/libc.ts`: memfd_create,
 * ftruncate, fcntl seals and raw futex wait/wake, through koffi (no compiled addon).
 *
 * `bindProcessSys` is self-contained (it uses nothing from its module scope): the waiter
 * threads rebuild it from its source text, so the main thread and the workers share one
 * definition.
 */
import type { KoffiModule } from '../kvm/libc.js';
import { koffiModule } from '../kvm/libc.js';

/** Linux x86-64 numbers used here (man 2 memfd_create, fcntl, futex). */
export const PROC_LINUX = {
  MFD_CLOEXEC: 1,
  MFD_ALLOW_SEALING: 2,
  F_ADD_SEALS: 1033,
  F_SEAL_SHRINK: 2,
  F_SEAL_GROW: 4,
  MAP_SHARED: 1,
  SYS_futex: 202,
  FUTEX_WAIT: 0,
  FUTEX_WAKE: 1,
  ETIMEDOUT: 110,
} as const;

/** The calls, typed loosely at the FFI boundary (pointers are bigint). */
export interface ProcessSys {
  memfdCreate(name: string, flags: number): number;
  ftruncate(fd: number, length: number): number;
  fcntl(fd: number, cmd: number, arg: number): number;
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
  const memfdCreate = f('int memfd_create(const char *name, unsigned int flags)');
  const ftruncate = f('int ftruncate(int fd, int64_t length)');
  const fcntl = f('int fcntl(int fd, int cmd, int arg)');
  // glibc's syscall() is an assembly stub: a fixed six-argument prototype is safe to call.
  const syscallPtr = f('long syscall(long n, uint64_t a, long b, long c, void *d, long e, long f)');
  const waitid = f('int waitid(int idtype, int id, void *infop, int options)');
  const ts = new BigInt64Array(2);
  const info = new Int32Array(32);
  return {
    memfdCreate: (name, flags) => memfdCreate(name, flags) as number,
    ftruncate: (fd, length) => ftruncate(fd, length) as number,
    fcntl: (fd, cmd, arg) => fcntl(fd, cmd, arg) as number,
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
