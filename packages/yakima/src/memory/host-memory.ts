/**
 * Guest memory backed by host mappings made here (mmap through koffi), and the one table of
 * where each such `GuestMemory` lives in the host's address space. Every native backend uses
 * it: KVM maps a VM's host range into the guest (`hostAddressOf`), the process backend hands
 * the VM's memfd to its tender (`sharedMemoryFd`), and memory/template.ts registers the private
 * template mappings it makes. The view (`GuestMemory.buffer`) is an ArrayBuffer over the very
 * same pages, so devices and hypercalls read and write guest memory directly.
 *
 * A region is never unmapped while JavaScript can still reach its view: releasing one gives
 * the pages back (they read as zero) and the range is unmapped once the ArrayBuffer is garbage,
 * so a stale reference to a finished VM's memory can never crash the VMM.
 */
import { LAYOUT, PAGE_SIZE } from '@denali/image-format';
import { GuestMemory } from '../boot/guest-memory.js';
import { LINUX, libc, sysError } from '../cpu/kvm/libc.js';
import { createMemfd, ftruncateFd, sealSize } from './native.js';

/** Where a `GuestMemory` lives in this process. */
interface HostRegion {
  address: bigint;
  size: number;
  /** The memfd behind a shared region (ours to close), else -1. */
  fd: number;
  released: boolean;
}

const regions = new WeakMap<GuestMemory, HostRegion>();

/** `MAP_SHARED` (mman.h). */
export const MAP_SHARED = 0x01;
/** `MADV_REMOVE` (madvise(2)): frees shmem pages; MADV_DONTNEED would only drop this mapping's PTEs. */
const MADV_REMOVE = 9;
const MAP_FAILED = 0xffffffffffffffffn;

/** Unmaps a range once its ArrayBuffer is garbage (no JS can reach the memory any more). */
const unmapper = new FinalizationRegistry<{ address: bigint; size: number }>(({ address, size }) => {
  try {
    libc().munmap(address, size);
  } catch {
    // nothing useful to do in a finalizer
  }
});

/**
 * Unmap `[address, address + size)` when `buffer` is garbage collected. `token` (optional)
 * lets the caller cancel that with `cancelUnmapWhenGarbage` when it unmaps the range itself.
 */
export function unmapWhenGarbage(buffer: ArrayBuffer, address: bigint, size: number, token?: object): void {
  unmapper.register(buffer, { address, size }, token);
}

/** Undo `unmapWhenGarbage` for `token` (the caller unmaps the range now). */
export function cancelUnmapWhenGarbage(token: object): void {
  unmapper.unregister(token);
}

/** @throws RangeError unless `size` is a page multiple within [LAYOUT.MIN_MEMORY, LAYOUT.MAX_MEMORY] (the rule GuestMemory enforces, checked before touching the host). */
function checkSize(size: number): void {
  if (!Number.isInteger(size) || size % PAGE_SIZE !== 0 || size < LAYOUT.MIN_MEMORY || size > LAYOUT.MAX_MEMORY) {
    throw new RangeError(`memory size ${size} must be a multiple of 4096 between ${LAYOUT.MIN_MEMORY} and ${LAYOUT.MAX_MEMORY} bytes`);
  }
}

/**
 * `size` bytes of zeroed, page-aligned anonymous guest memory, mmap(MAP_PRIVATE |
 * MAP_ANONYMOUS | MAP_NORESERVE): untouched pages cost no host RAM. For the KVM backend
 * (pass it to `createBootImage` and then to `KvmBackend.createVcpu`).
 * @throws RangeError for a size GuestMemory rejects; Error (with errno) when mmap fails.
 */
export function allocateGuestMemory(size: number): GuestMemory {
  checkSize(size);
  const c = libc();
  const address = c.mmap(null, size, LINUX.PROT_READ | LINUX.PROT_WRITE, LINUX.MAP_PRIVATE | LINUX.MAP_ANONYMOUS | LINUX.MAP_NORESERVE, -1, 0);
  if (address === MAP_FAILED || address === 0n) throw sysError(`mmap of ${size} bytes of guest memory`, c.errno());
  const buffer = c.view(address, size);
  const memory = new GuestMemory(size, buffer);
  regions.set(memory, { address, size, fd: -1, released: false });
  unmapWhenGarbage(buffer, address, size);
  return memory;
}

/**
 * A new sealed memfd of `size` zero bytes (its size can never change: F_SEAL_SHRINK |
 * F_SEAL_GROW, memfd_create(2), fcntl(2)), for guest memory another process maps too.
 * @throws Error (with errno) when memfd_create, ftruncate or the seals fail.
 */
export function createGuestMemfd(size: number): number {
  const fd = createMemfd('denali-guest', true);
  try {
    ftruncateFd(fd, size);
    sealSize(fd);
    return fd;
  } catch (e) {
    libc().close(fd);
    throw e;
  }
}

/**
 * `size` bytes of zeroed guest memory as a sealed memfd mapped read+write and shared into this
 * process (MAP_SHARED): the process backend's tender maps the same memfd (`sharedMemoryFd`).
 * Untouched pages cost no host RAM. Pass the result to `createBootImage` (`allocateMemory`)
 * and then to `ProcessBackend.createVcpu`.
 * @throws RangeError for another size; Error (with errno) when memfd_create, ftruncate or mmap fails.
 */
export function allocateSharedGuestMemory(size: number): GuestMemory {
  checkSize(size);
  const fd = createGuestMemfd(size);
  const c = libc();
  const address = c.mmap(null, size, LINUX.PROT_READ | LINUX.PROT_WRITE, MAP_SHARED, fd, 0);
  if (address === MAP_FAILED || address === 0n) {
    const errno = c.errno();
    c.close(fd);
    throw sysError(`mmap of ${size} bytes of guest memory`, errno);
  }
  const buffer = c.view(address, size);
  const memory = new GuestMemory(size, buffer);
  regions.set(memory, { address, size, fd, released: false });
  unmapWhenGarbage(buffer, address, size);
  return memory;
}

/**
 * Record that `memory` is mapped at `address` (memory/template.ts makes its own mappings);
 * `fd` is the memfd behind a shared mapping (closed by `releaseGuestMemory`), else -1. The
 * caller owns the mapping itself.
 */
export function adoptHostMemory(memory: GuestMemory, address: bigint, size: number, fd = -1): void {
  regions.set(memory, { address, size, fd, released: false });
}

/** Undo `adoptHostMemory` before the caller unmaps the memory (closes a shared region's memfd if still open). */
export function forgetHostMemory(memory: GuestMemory): void {
  const r = regions.get(memory);
  if (r && !r.released && r.fd >= 0) libc().close(r.fd);
  regions.delete(memory);
}

/** The host address of mapped guest memory, or undefined for ordinary (ArrayBuffer) or released memory. */
export function hostAddressOf(memory: GuestMemory): bigint | undefined {
  const r = regions.get(memory);
  return r && !r.released ? r.address : undefined;
}

/** True when `memory` is a host mapping made or adopted here and not released (KVM can map it). */
export function isKvmMemory(memory: GuestMemory): boolean {
  return hostAddressOf(memory) !== undefined;
}

/** The memfd behind shared guest memory (to hand to a tender), or undefined for other memory or once released. */
export function sharedMemoryFd(memory: GuestMemory): number | undefined {
  const r = regions.get(memory);
  return r && !r.released && r.fd >= 0 ? r.fd : undefined;
}

/**
 * Give a finished VM's memory back to the host now: a shared region's memfd is closed and its
 * pages removed (MADV_REMOVE; freed for good once the tender process is gone too), an anonymous
 * or private one's pages dropped (MADV_DONTNEED). The range reads as zero (or as its template)
 * afterwards and is unmapped when its buffer is garbage. Idempotent. KVM: call only after the
 * VM's memory slots are gone (`KvmVcpu.destroy` does both in that order).
 */
export function releaseGuestMemory(memory: GuestMemory): void {
  const r = regions.get(memory);
  if (!r || r.released) return;
  r.released = true;
  const c = libc();
  if (r.fd >= 0) {
    c.close(r.fd);
    c.madvise(r.address, r.size, MADV_REMOVE);
  } else {
    c.madvise(r.address, r.size, LINUX.MADV_DONTNEED);
  }
}

/** Same as `releaseGuestMemory`: the process backend's name for it. */
export const releaseSharedGuestMemory = releaseGuestMemory;
