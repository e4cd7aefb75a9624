import { createRequire } from 'node:module';
import { closeSync, constants as fsConstants, openSync, readSync, writeSync } from 'node:fs';

/**
 * Linux TUN/TAP character-device access (kernel Documentation/networking/tuntap.rst):
 * `open("/dev/net/tun", O_RDWR | O_NONBLOCK)` then `ioctl(fd, TUNSETIFF, struct ifreq)` with `IFF_TAP | IFF_NO_PI`
 * turns the descriptor into one end of a virtual Ethernet device; each read(2) then returns
 * exactly one frame (no FCS), each write(2) injects one. The ioctl goes through koffi (libc).
 */

/** `_IOW('T', 202, int)` on Linux: attach the descriptor to a (new) TUN/TAP device. */
export const TUNSETIFF = 0x400454ca;
/** `ifr_flags`: Ethernet frames (TAP), not IP packets (TUN). */
export const IFF_TAP = 0x0002;
/** `ifr_flags`: no 4-byte packet-information prefix on reads and writes. */
export const IFF_NO_PI = 0x1000;
/** `IFNAMSIZ`: interface names are at most 15 bytes plus a NUL. */
export const IFNAMSIZ = 16;
/** sizeof(struct ifreq) on 64-bit Linux: 16-byte name + 24-byte union. */
export const IFREQ_SIZE = 40;
/** `CLONE_NEWNET` for setns(2). */
const CLONE_NEWNET = 0x40000000;

type AsyncFn = { async: (...args: unknown[]) => void };
type LibcFns = {
  ioctl: (fd: number, req: number, arg: Buffer) => number;
  setns: (fd: number, nstype: number) => number;
  poll: AsyncFn;
  errno: () => number;
};
let libc: LibcFns | undefined;

/** Bind the few libc functions needed, once. @throws Error when koffi or libc cannot load. */
function loadLibc(): LibcFns {
  if (libc) return libc;
  const require = createRequire(import.meta.url);
  const koffi = require('koffi') as {
    load(name: string): { func(sig: string): (...a: unknown[]) => unknown };
    errno(): number;
  };
  const lib = koffi.load('libc.so.6');
  const ioctl = lib.func('int ioctl(int fd, unsigned long req, _Inout_ uint8_t *arg)') as LibcFns['ioctl'];
  const setns = lib.func('int setns(int fd, int nstype)') as LibcFns['setns'];
  const poll = lib.func('int poll(uint8_t *fds, unsigned long nfds, int timeout)') as unknown as AsyncFn;
  libc = { ioctl, setns, poll, errno: () => koffi.errno() };
  return libc;
}

/** Error from TAP setup whose `code` is the errno name, e.g. 'EPERM', 'ENOENT'. */
export class TapError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'TapError';
  }
}

const ERRNO_NAMES: Record<number, string> = { 1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 19: 'ENODEV', 22: 'EINVAL' };

/** An open TAP device: non-blocking descriptor, one frame per read/write. */
export interface TapDevice {
  /** The interface name the kernel gave (or kept). */
  readonly name: string;
  /** The file descriptor (O_NONBLOCK). */
  readonly fd: number;
}

/** Options of `openTapDevice`. */
export interface OpenTapOptions {
  /** Requested name, at most 15 bytes; may contain one `%d`. Default `denali%d`. */
  name?: string;
  /**
   * Create the device inside this named network namespace (`/var/run/netns/NAME`, made by
   * `ip netns add`). The calling thread enters it only for the TUNSETIFF call and returns.
   */
  netns?: string;
}

/**
 * Open `/dev/net/tun` and attach a new TAP device (IFF_TAP | IFF_NO_PI).
 * @throws TapError with code ENOENT (no /dev/net/tun), EPERM/EACCES (needs root or
 * CAP_NET_ADMIN), EINVAL (bad name) or another errno name.
 */
export function openTapDevice(opts: OpenTapOptions = {}): TapDevice {
  const name = opts.name ?? 'denali%d';
  if (Buffer.byteLength(name) >= IFNAMSIZ || !/^[A-Za-z0-9_.%-]+$/.test(name)) {
    throw new TapError(`TAP device name '${name}' must be 1 to 15 characters of [A-Za-z0-9_.-%]`, 'EINVAL');
  }
  const fns = loadLibc();
  let fd: number | undefined;
  let back: number | undefined;
  let target: number | undefined;
  try {
    if (opts.netns !== undefined) {
      if (!/^[A-Za-z0-9_.-]+$/.test(opts.netns)) throw new TapError(`bad network namespace name '${opts.netns}'`, 'EINVAL');
      back = openSync('/proc/thread-self/ns/net', fsConstants.O_RDONLY);
      target = openSync(`/var/run/netns/${opts.netns}`, fsConstants.O_RDONLY);
      if (fns.setns(target, CLONE_NEWNET) !== 0) {
        const errno = fns.errno();
        throw new TapError(`setns(${opts.netns}) failed (${ERRNO_NAMES[errno] ?? `errno ${errno}`})`, ERRNO_NAMES[errno] ?? 'EIO');
      }
    }
    // The device is created in the network namespace the descriptor was opened in.
    try {
      fd = openSync('/dev/net/tun', fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      throw new TapError(`cannot open /dev/net/tun (${code})`, code);
    }
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(name, 0, 'latin1');
    ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI, IFNAMSIZ);
    const rc = fns.ioctl(fd, TUNSETIFF, ifr);
    if (rc !== 0) {
      const errno = fns.errno();
      const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
      throw new TapError(`ioctl(TUNSETIFF) failed (${code})`, code);
    }
    const end = ifr.indexOf(0);
    return { name: ifr.toString('latin1', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end), fd };
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    throw e;
  } finally {
    if (back !== undefined) {
      if (target !== undefined && fns.setns(back, CLONE_NEWNET) !== 0) {
        // Cannot return to the original namespace: continuing would open sockets in the wrong one.
        throw new Error('setns back to the original network namespace failed');
      }
      closeSync(back);
    }
    if (target !== undefined) closeSync(target);
  }
}

/** Write one frame synchronously (a TAP write never blocks). Returns false on error. */
export function writeTapFrame(dev: TapDevice, frame: Uint8Array): boolean {
  try {
    return writeSync(dev.fd, frame) === frame.length;
  } catch {
    return false;
  }
}

/** POLLIN for poll(2). */
const POLLIN = 0x1;

/**
 * Reads frames from a TAP device without blocking the event loop: poll(2) runs on koffi's
 * async worker (timeout `pollMs`, so `stop` takes effect within that time even if the device
 * stays open), then the main thread drains every ready frame with non-blocking reads and hands
 * them over as one batch, in arrival order. Frames are fresh copies.
 */
export class TapReader {
  private stopped = false;
  private polling = false;
  private readonly buf = Buffer.alloc(65_536);
  private readonly pfd = Buffer.alloc(8);
  private stoppedResolve: (() => void) | undefined;

  constructor(
    private readonly dev: TapDevice,
    /** Called with each batch of frames (each its own Uint8Array). */
    private readonly onFrames: (frames: Uint8Array[]) => void,
    /** Most frames per batch. Default 512. */
    private readonly maxBatch = 512,
    /** poll(2) timeout, ms: the reader wakes this often while idle. Default 500. */
    private readonly pollMs = 500,
  ) {
    this.pfd.writeInt32LE(dev.fd, 0);
    this.pfd.writeInt16LE(POLLIN, 4);
  }

  /** Start reading. */
  start(): void {
    this.drain();
  }

  /** Stop; resolves once no poll is outstanding (at most `pollMs` later). */
  stop(): Promise<void> {
    this.stopped = true;
    if (!this.polling) return Promise.resolve();
    return new Promise((r) => (this.stoppedResolve = r));
  }

  private poll(): void {
    if (this.stopped) return;
    this.polling = true;
    loadLibc().poll.async(this.pfd, 1, this.pollMs, (_err: unknown, _n: number) => {
      this.polling = false;
      if (this.stopped) {
        this.stoppedResolve?.();
        return;
      }
      this.drain();
    });
  }

  private drain(): void {
    const frames: Uint8Array[] = [];
    for (let i = 0; i < this.maxBatch && !this.stopped; i++) {
      let n: number;
      try {
        n = readSync(this.dev.fd, this.buf, 0, this.buf.length, null);
      } catch {
        break; // EAGAIN: nothing more now (other errors: retried after the next poll)
      }
      if (n <= 0) break;
      frames.push(new Uint8Array(this.buf.subarray(0, n)));
    }
    if (frames.length > 0) {
      try {
        this.onFrames(frames);
      } catch {
        /* a consumer bug must not stop the reader */
      }
    }
    if (frames.length >= this.maxBatch) setImmediate(() => this.drain());
    else this.poll();
  }
}
