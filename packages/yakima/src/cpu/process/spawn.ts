/**
 * Starts tenders with posix_spawn(3) (glibc: clone(CLONE_VM | CLONE_VFORK) + execve), not
 * Node's child_process: that forks Yakima, and a fork copies an address space that maps every
 * VM's memory — its cost grew to tens of ms per VM at a few thousand VMs. posix_spawn costs
 * the same however many VMs run, and the tender is still a fresh exec with an empty
 * environment. Yakima reaps its tenders itself (waitid on their pids; libuv only reaps the
 * children it started).
 */
import { lazyLibcFunctions, libc } from '../kvm/libc.js';

interface SpawnFns {
  spawn: (pid: Int32Array, path: string, actions: Uint8Array, attr: null, argv: BigUint64Array, envp: BigUint64Array) => number;
  init: (actions: Uint8Array) => number;
  destroy: (actions: Uint8Array) => number;
  addopen: (actions: Uint8Array, fd: number, path: string, flags: number, mode: number) => number;
  adddup2: (actions: Uint8Array, fd: number, newfd: number) => number;
  waitid: (idtype: number, id: number, info: Int32Array, options: number) => number;
  kill: (pid: number, sig: number) => number;
}

const bind = lazyLibcFunctions<SpawnFns>({
  spawn: 'int posix_spawn(_Out_ int *pid, const char *path, void *actions, void *attr, void *argv, void *envp)',
  init: 'int posix_spawn_file_actions_init(void *actions)',
  destroy: 'int posix_spawn_file_actions_destroy(void *actions)',
  addopen: 'int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int flags, int mode)',
  adddup2: 'int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)',
  waitid: 'int waitid(int idtype, int id, void *info, int options)',
  kill: 'int kill(int pid, int sig)',
});

/** A NUL-terminated C string array (argv / envp) and the buffers that must stay alive with it. */
function cStrings(items: string[]): { ptrs: BigUint64Array; keep: Buffer[] } {
  const keep = items.map((s) => Buffer.from(`${s}\0`, 'utf8'));
  const ptrs = new BigUint64Array(items.length + 1);
  keep.forEach((b, i) => (ptrs[i] = libc().address(b)));
  return { ptrs, keep };
}

/**
 * Start `path args...` with `fds[i]` as descriptor 3 + i in the child, stdin/stdout/stderr on
 * /dev/null and an empty environment. Returns the pid.
 * @throws Error naming the errno when posix_spawn fails (e.g. ENOENT, EAGAIN at the process limit).
 */
export function spawnProcess(path: string, args: string[], fds: number[]): number {
  const f = bind();
  const actions = new Uint8Array(512); // posix_spawn_file_actions_t is 80 bytes in glibc
  if (f.init(actions) !== 0) throw new Error('posix_spawn_file_actions_init failed');
  try {
    for (const [fd, flags] of [[0, 0], [1, 1], [2, 1]] as const) f.addopen(actions, fd, '/dev/null', flags, 0);
    // Two steps, so that no source descriptor is overwritten before it is copied.
    const hi = Math.max(2, ...fds) + 1;
    fds.forEach((fd, i) => f.adddup2(actions, fd, hi + i));
    fds.forEach((_, i) => f.adddup2(actions, hi + i, 3 + i));
    const argv = cStrings([path, ...args]);
    const envp = new BigUint64Array(1);
    const pid = new Int32Array(1);
    const r = f.spawn(pid, path, actions, null, argv.ptrs, envp);
    void argv.keep;
    if (r !== 0) throw Object.assign(new Error(`posix_spawn of ${path} failed: errno ${r}`), { errno: r });
    return pid[0]!;
  } finally {
    f.destroy(actions);
  }
}

/** SIGKILL `pid` (ESRCH ignored). */
export function killProcess(pid: number): void {
  bind().kill(pid, 9);
}

const unreaped = new Set<number>();
let sweeper: NodeJS.Timeout | undefined;

/** Reap `pid` (killed or exited) now if it is gone, else on a later sweep; never blocks. */
export function reapProcess(pid: number): void {
  if (tryReap(pid)) return;
  unreaped.add(pid);
  sweeper ??= setInterval(() => {
    for (const p of unreaped) if (tryReap(p)) unreaped.delete(p);
    if (unreaped.size === 0) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }, 50).unref();
}

const info = new Int32Array(32);
function tryReap(pid: number): boolean {
  info.fill(0);
  // P_PID = 1; WEXITED | WNOHANG. siginfo si_pid at byte 16. ECHILD: already reaped.
  const r = bind().waitid(1, pid, info, 4 | 1);
  return r !== 0 || info[4] === pid;
}
