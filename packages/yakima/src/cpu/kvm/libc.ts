/**
 * FFI bindings to the few libc functions the KVM backend needs, through koffi (no compiled
 * addon of our own). Linux x86-64 / glibc only.
 *
 * `bindLibc` is self-contained on purpose (it uses nothing from its module scope): the vCPU
 * worker threads rebuild it from its source text (`bindLibc.toString()`), so the main thread
 * and the workers share one definition.
 */
import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

export type KoffiModule = typeof Koffi.default;

/** Linux x86-64 constants used with these bindings. */
export const LINUX = {
  O_RDWR: 2,
  O_CLOEXEC: 0o2000000,
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_PRIVATE: 0x02,
  MAP_ANONYMOUS: 0x20,
  MAP_NORESERVE: 0x4000,
  MADV_DONTNEED: 4,
  CLOCK_MONOTONIC: 1,
  SIG_BLOCK: 0,
  SIG_UNBLOCK: 1,
  SIGEV_THREAD_ID: 4,
  /** glibc's user-space sigset_t size in bytes. */
  SIGSET_SIZE: 128,
  /** struct sigevent size and field offsets (x86-64 glibc). */
  SIGEVENT_SIZE: 64,
  SIGEVENT_SIGNO: 8,
  SIGEVENT_NOTIFY: 12,
  SIGEVENT_TID: 16,
  /** struct itimerspec: it_interval {sec, nsec}, it_value {sec, nsec}. */
  ITIMERSPEC_SIZE: 32,
  EINTR: 4,
  EAGAIN: 11,
  EACCES: 13,
  ENOENT: 2,
  EPERM: 1,
} as const;

/** The libc functions, typed loosely at the FFI boundary (pointers are bigint in koffi 3). */
export interface Libc {
  open(path: string, flags: number): number;
  close(fd: number): number;
  /** ioctl with an integer (or no) argument. */
  ioctlInt(fd: number, request: number, arg: number): number;
  /** ioctl with a pointer argument: a typed array / Buffer (koffi passes its address) or a bigint address. */
  ioctlPtr(fd: number, request: number, arg: Uint8Array | bigint | null): number;
  mmap(addr: bigint | null, length: number, prot: number, flags: number, fd: number, offset: number): bigint;
  munmap(addr: bigint, length: number): number;
  madvise(addr: bigint, length: number, advice: number): number;
  gettid(): number;
  timer_create(clockid: number, sevp: Uint8Array, timerid: Uint8Array): number;
  timer_settime(timerid: bigint, flags: number, value: Uint8Array, old: null): number;
  timer_delete(timerid: bigint): number;
  pthread_sigmask(how: number, set: Uint8Array | null, old: Uint8Array | null): number;
  sigtimedwait(set: Uint8Array, info: null, timeout: Uint8Array): number;
  /** `signal(sig, handler)`; handler 0n = SIG_DFL, 1n = SIG_IGN. Returns the previous handler. */
  signal(sig: number, handler: bigint): bigint;
  sigrtmax(): number;
  strerror(errnum: number): string;
  /** errno of the calling thread after the last FFI call. */
  errno(): number;
  /** koffi.view: an ArrayBuffer over native memory (no copy). */
  view(ptr: bigint, length: number): ArrayBuffer;
  /** The native address of an ArrayBuffer or typed array's backing store. */
  address(buf: ArrayBuffer | Uint8Array): bigint;
}

/** Build the bindings from a loaded koffi module. Self-contained: see the module comment. */
export function bindLibc(koffi: KoffiModule): Libc {
  const lib = koffi.load('libc.so.6');
  const f = (decl: string): ((...args: unknown[]) => unknown) => lib.func(decl) as (...args: unknown[]) => unknown;
  const open = f('int open(const char *path, int flags)');
  const close = f('int close(int fd)');
  const ioctlInt = f('int ioctl(int fd, unsigned long req, unsigned long arg)');
  const ioctlPtr = f('int ioctl(int fd, unsigned long req, void *arg)');
  const mmap = f('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
  const munmap = f('int munmap(void *addr, size_t length)');
  const madvise = f('int madvise(void *addr, size_t length, int advice)');
  const gettid = f('int gettid(void)');
  const timerCreate = f('int timer_create(int clockid, void *sevp, void *timerid)');
  const timerSettime = f('int timer_settime(void *timerid, int flags, void *value, void *old)');
  const timerDelete = f('int timer_delete(void *timerid)');
  const pthreadSigmask = f('int pthread_sigmask(int how, void *set, void *old)');
  const sigtimedwait = f('int sigtimedwait(void *set, void *info, void *timeout)');
  const signal = f('void *signal(int sig, void *handler)');
  const sigrtmax = f('int __libc_current_sigrtmax(void)');
  const strerror = f('const char *strerror(int errnum)');
  const ptr = (p: unknown): bigint => (typeof p === 'bigint' ? p : p == null ? 0n : BigInt(p as number));
  return {
    open: (path, flags) => open(path, flags) as number,
    close: (fd) => close(fd) as number,
    ioctlInt: (fd, req, arg) => ioctlInt(fd, req, arg) as number,
    ioctlPtr: (fd, req, arg) => ioctlPtr(fd, req, arg) as number,
    mmap: (addr, length, prot, flags, fd, offset) => ptr(mmap(addr, length, prot, flags, fd, offset)),
    munmap: (addr, length) => munmap(addr, length) as number,
    madvise: (addr, length, advice) => madvise(addr, length, advice) as number,
    gettid: () => gettid() as number,
    timer_create: (clockid, sevp, timerid) => timerCreate(clockid, sevp, timerid) as number,
    timer_settime: (timerid, flags, value, old) => timerSettime(timerid, flags, value, old) as number,
    timer_delete: (timerid) => timerDelete(timerid) as number,
    pthread_sigmask: (how, set, old) => pthreadSigmask(how, set, old) as number,
    sigtimedwait: (set, info, timeout) => sigtimedwait(set, info, timeout) as number,
    signal: (sig, handler) => ptr(signal(sig, handler)),
    sigrtmax: () => sigrtmax() as number,
    strerror: (e) => strerror(e) as string,
    errno: () => koffi.errno(),
    view: (p, length) => koffi.view(p, length),
    address: (buf) => koffi.address(buf),
  };
}

let loaded: { koffi: KoffiModule; libc: Libc } | undefined;
let loadError: Error | undefined;

/** Absolute path of the koffi package entry (workers `require` it from there). */
export function koffiPath(): string {
  return createRequire(import.meta.url).resolve('koffi');
}

/**
 * The process-wide koffi module and libc bindings, loaded on first use (so merely importing
 * the KVM backend costs nothing and works where koffi or glibc is missing).
 * @throws Error when koffi cannot be loaded or this is not Linux with glibc.
 */
export function libc(): Libc {
  return loadKoffi().libc;
}

/** The koffi module itself (for `koffi.view` etc.). @throws like `libc()`. */
export function koffiModule(): KoffiModule {
  return loadKoffi().koffi;
}

function loadKoffi(): { koffi: KoffiModule; libc: Libc } {
  if (loaded) return loaded;
  if (loadError) throw loadError;
  try {
    if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`the KVM backend needs Linux on x86-64 (this is ${process.platform}/${process.arch})`);
    const koffi = createRequire(import.meta.url)('koffi') as KoffiModule;
    loaded = { koffi, libc: bindLibc(koffi) };
    return loaded;
  } catch (e) {
    loadError = e instanceof Error ? e : new Error(String(e));
    throw loadError;
  }
}

/**
 * More libc functions for main-thread code, bound together on first use: `decls` gives each
 * name its C prototype in koffi's syntax (e.g. `'int kill(int pid, int sig)'`); the getter
 * binds them all the first time it is called and returns the same object afterwards. `T`
 * types the functions at the FFI boundary. (Worker threads rebuild self-contained binders
 * from source instead: `bindLibc`, `bindProcessSys`.)
 * @throws Error from the getter when koffi cannot be loaded or a function is missing.
 */
export function lazyLibcFunctions<T>(decls: { [K in keyof T]: string }): () => T {
  let fns: T | undefined;
  return () => {
    if (!fns) {
      const lib = koffiModule().load('libc.so.6');
      fns = Object.fromEntries(Object.entries(decls).map(([name, decl]) => [name, lib.func(decl as string)])) as T;
    }
    return fns;
  };
}

/** An Error for a failed libc call: "what: strerror(errno) (errno N)". */
export function sysError(what: string, errno: number): Error & { errno: number } {
  let text = `errno ${errno}`;
  try {
    text = `${libc().strerror(errno)} (errno ${errno})`;
  } catch {
    // keep the number only
  }
  return Object.assign(new Error(`${what}: ${text}`), { errno });
}
