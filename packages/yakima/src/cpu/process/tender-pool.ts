/**
 * Tenders started ahead of the VMs that will use them: spawning a tender (posix_spawn, exec,
 * set-up) takes ~3-4 ms here, most of a process-backend VM's boot. A pooled tender is spawned
 * with a socket instead of guest memory, does every VM-independent step (prctl, rlimits, nice,
 * the control page) and blocks in recvmsg(2) using no CPU; `take` hands it the VM's memfd and
 * memory size over the socket (SCM_RIGHTS, unix(7)) and it goes on exactly like a tender
 * spawned for that VM (tender/tender.c, `await_handoff`).
 *
 * The pool is per Node process (shared by every Yakima in it), keyed by quantum and nice; it is
 * filled a little after each take (the first VM of a kind spawns its own tender), off the
 * booting VM's path. Pooled tenders die with Node
 * (PR_SET_PDEATHSIG) or when `drainTenderPool` closes their sockets.
 */
import { koffiModule, lazyLibcFunctions, libc, LINUX, sysError } from '../kvm/libc.js';
import { MAP_SHARED } from '../../memory/host-memory.js';
import { createMemfd, ftruncateFd } from '../../memory/native.js';
import { CTL } from './control-page.js';
import { killProcess, reapProcess, spawnProcess } from './spawn.js';
import { processSys } from './sys.js';
import { tenderBinary } from './tender-build.js';

/** A started tender and its control page (mapped here), ready for a VM. */
export interface StartedTender {
  pid: number;
  /** Host address of the control page mapping (CTL.BYTES). */
  ctlAddress: bigint;
}

interface Pooled extends StartedTender {
  /** Our end of the socket the tender waits on. */
  sock: number;
}

interface PoolFns {
  socketpair: (domain: number, type: number, protocol: number, sv: Int32Array) => number;
  sendmsg: (fd: number, msg: Uint8Array, flags: number) => number;
}

const bind = lazyLibcFunctions<PoolFns>({
  socketpair: 'int socketpair(int domain, int type, int protocol, _Out_ int *sv)',
  sendmsg: 'long sendmsg(int fd, void *msg, int flags)',
});

/** Spare tenders kept per (quantum, nice). */
export const TENDER_POOL_SIZE = 2;
/** Delay before a take is refilled, in ms: the spawn (which blocks the event loop ~0.3-3 ms) stays off the booting VM's path. */
const REFILL_DELAY_MS = 5;

const pools = new Map<string, Pooled[]>();
const refills = new Map<string, NodeJS.Timeout>();

/** A fresh control page, mapped shared here; the fd is for the child and closed by the caller. */
function controlPage(): { fd: number; address: bigint } {
  const c = libc();
  const fd = createMemfd('denali-control');
  try {
    ftruncateFd(fd, CTL.BYTES);
  } catch (e) {
    c.close(fd);
    throw e;
  }
  const address = c.mmap(null, CTL.BYTES, LINUX.PROT_READ | LINUX.PROT_WRITE, MAP_SHARED, fd, 0);
  if (address === 0xffffffffffffffffn || address === 0n) {
    const errno = c.errno();
    c.close(fd);
    throw sysError('mmap of the control page', errno);
  }
  return { fd, address };
}

/**
 * Spawn a tender for one VM now: `memfd` (its guest memory, `size` bytes) and a new control
 * page are passed as fds 3 and 4.
 * @throws Error when the control page cannot be made or the process cannot be started.
 */
export function spawnTender(memfd: number, size: number, quantumMicros: number, nice: number): StartedTender {
  const ctl = controlPage();
  try {
    const pid = spawnProcess(tenderBinary(), [String(size), String(quantumMicros), String(process.pid), String(nice)], [memfd, ctl.fd]);
    return { pid, ctlAddress: ctl.address };
  } catch (e) {
    libc().munmap(ctl.address, CTL.BYTES);
    throw new Error(`cannot start the VM's process: ${(e as Error).message}`);
  } finally {
    libc().close(ctl.fd); // the mapping keeps the page alive; the child has its own copy
  }
}

function spawnPooled(quantumMicros: number, nice: number): Pooled {
  const f = bind();
  const sv = new Int32Array(2);
  // AF_UNIX = 1, SOCK_SEQPACKET = 5, SOCK_CLOEXEC = 0x80000 (our ends never leak into other children).
  if (f.socketpair(1, 5 | 0x80000, 0, sv) !== 0) throw sysError('socketpair for a pooled tender', koffiModule().errno());
  const ctl = controlPage();
  try {
    const pid = spawnProcess(tenderBinary(), ['0', String(quantumMicros), String(process.pid), String(nice)], [sv[1]!, ctl.fd]);
    return { pid, ctlAddress: ctl.address, sock: sv[0]! };
  } catch (e) {
    libc().close(sv[0]!);
    libc().munmap(ctl.address, CTL.BYTES);
    throw e;
  } finally {
    libc().close(sv[1]!);
    libc().close(ctl.fd);
  }
}

/**
 * Send `size` and `memfd` to a pooled tender (sendmsg with one SCM_RIGHTS descriptor).
 * @returns false when the tender is gone (its socket end is closed).
 */
function handOff(p: Pooled, memfd: number, size: number): boolean {
  const c = libc();
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, size >>> 0, true);
  const iov = new Uint8Array(16);
  new DataView(iov.buffer).setBigUint64(0, c.address(data), true);
  new DataView(iov.buffer).setBigUint64(8, 4n, true);
  // struct cmsghdr { size_t len; int level; int type; } + one int, padded: CMSG_SPACE(4) = 24.
  const cmsg = new Uint8Array(24);
  const dv = new DataView(cmsg.buffer);
  dv.setBigUint64(0, 20n, true); // CMSG_LEN(4)
  dv.setInt32(8, 1, true); // SOL_SOCKET
  dv.setInt32(12, 1, true); // SCM_RIGHTS
  dv.setInt32(16, memfd, true);
  // struct msghdr: name, namelen(+pad), iov, iovlen, control, controllen, flags(+pad): 56 bytes.
  const msg = new Uint8Array(56);
  const mv = new DataView(msg.buffer);
  mv.setBigUint64(16, c.address(iov), true);
  mv.setBigUint64(24, 1n, true);
  mv.setBigUint64(32, c.address(cmsg), true);
  mv.setBigUint64(40, 24n, true);
  const MSG_NOSIGNAL = 0x4000;
  const n = bind().sendmsg(p.sock, msg, MSG_NOSIGNAL);
  void [data, iov, cmsg];
  c.close(p.sock);
  return n === 4;
}

function discard(p: Pooled): void {
  libc().close(p.sock); // the tender's recvmsg returns 0: it exits
  killProcess(p.pid);
  reapProcess(p.pid);
  libc().munmap(p.ctlAddress, CTL.BYTES);
}

/**
 * Spawn spare tenders for (quantum, nice) until the pool holds `TENDER_POOL_SIZE`.
 * @throws Error when a tender cannot be spawned.
 */
export function fillTenderPool(quantumMicros: number, nice: number): void {
  const key = `${quantumMicros}/${nice}`;
  let pool = pools.get(key);
  if (!pool) pools.set(key, (pool = []));
  while (pool.length < TENDER_POOL_SIZE) pool.push(spawnPooled(quantumMicros, nice));
}

/**
 * A tender for a VM with guest memory `memfd` of `size` bytes: a pooled one when there is one
 * (handed the memfd; the pool is refilled `REFILL_DELAY_MS` later), else one spawned now.
 * @throws Error when no tender can be started.
 */
export function takeTender(memfd: number, size: number, quantumMicros: number, nice: number): StartedTender & { pooled: boolean } {
  const key = `${quantumMicros}/${nice}`;
  let pool = pools.get(key);
  if (!pool) pools.set(key, (pool = []));
  // The first VM of a kind spawns its own tender; spares are ready for the next ones.
  scheduleRefill(key, quantumMicros, nice);
  while (pool.length > 0) {
    const p = pool.shift()!;
    if (processSys().peekExit(p.pid) === undefined && handOff(p, memfd, size)) return { pid: p.pid, ctlAddress: p.ctlAddress, pooled: true };
    discard(p);
  }
  return { ...spawnTender(memfd, size, quantumMicros, nice), pooled: false };
}

function scheduleRefill(key: string, quantumMicros: number, nice: number): void {
  if (refills.has(key)) return;
  const t = setTimeout(() => {
    refills.delete(key);
    if (!pools.has(key)) return; // drained meanwhile
    try {
      fillTenderPool(quantumMicros, nice);
    } catch {
      // Spawning failed now (e.g. out of processes): VMs spawn their own tenders meanwhile.
    }
  }, REFILL_DELAY_MS);
  t.unref();
  refills.set(key, t);
}

/** Pids of the spare tenders now in the pools (for tests and diagnostics). */
export function pooledTenderPids(): number[] {
  return [...pools.values()].flatMap((p) => p.map((t) => t.pid));
}

/** End every spare tender and stop refilling. Idempotent. */
export function drainTenderPool(): void {
  for (const t of refills.values()) clearTimeout(t);
  refills.clear();
  for (const pool of pools.values()) for (const p of pool.splice(0)) discard(p);
  pools.clear();
}
