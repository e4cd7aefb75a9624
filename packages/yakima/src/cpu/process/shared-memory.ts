/**
 * Guest memory for the process backend: a memfd, mapped MAP_SHARED into Yakima (seen as an
 * ordinary `GuestMemory`, so devices and hypercalls read and write it directly) and, by the
 * tender, into the VM's own process. The one entry point is `allocateSharedGuestMemory`, so a
 * different memory model (sharing, swap) can replace what sits behind it.
 */
import { LAYOUT, PAGE_SIZE } from '@denali/image-format';
import { GuestMemory } from '../../boot/guest-memory.js';
import { LINUX, libc, sysError } from '../kvm/libc.js';
import { PROC_LINUX, processSys } from './sys.js';

interface SharedRegion {
  fd: number;
  address: bigint;
  size: number;
  released: boolean;
}

const regions = new WeakMap<GuestMemory, SharedRegion>();

/** Unmaps a region once its ArrayBuffer is garbage (no JS can reach the memory any more). */
const unmapper = new FinalizationRegistry<{ address: bigint; size: number }>(({ address, size }) => {
  try {
    libc().munmap(address, size);
  } catch {
    // nothing useful to do in a finalizer
  }
});

/**
 * Allocate `size` bytes of zeroed guest memory as a sealed memfd (its size can never change:
 * F_SEAL_SHRINK | F_SEAL_GROW) mapped read+write and shared into this process. Untouched pages
 * cost no host RAM. Pass the result to `createBootImage` (`allocateMemory`) and then to
 * `ProcessBackend.createVcpu`.
 *
 * @param size bytes: a page multiple within [LAYOUT.MIN_MEMORY, LAYOUT.MAX_MEMORY].
 * @throws RangeError for another size; Error (with errno) when memfd_create, ftruncate or mmap fails.
 */
export function allocateSharedGuestMemory(size: number): GuestMemory {
  if (!Number.isInteger(size) || size % PAGE_SIZE !== 0 || size < LAYOUT.MIN_MEMORY || size > LAYOUT.MAX_MEMORY) {
    throw new RangeError(`memory size ${size} must be a multiple of 4096 between ${LAYOUT.MIN_MEMORY} and ${LAYOUT.MAX_MEMORY} bytes`);
  }
  const c = libc();
  const s = processSys();
  const fd = s.memfdCreate('denali-guest', PROC_LINUX.MFD_CLOEXEC | PROC_LINUX.MFD_ALLOW_SEALING);
  if (fd < 0) throw sysError('memfd_create for guest memory', s.errno());
  try {
    if (s.ftruncate(fd, size) !== 0) throw sysError(`ftruncate of guest memory to ${size} bytes`, s.errno());
    if (s.fcntl(fd, PROC_LINUX.F_ADD_SEALS, PROC_LINUX.F_SEAL_SHRINK | PROC_LINUX.F_SEAL_GROW) !== 0) throw sysError('sealing guest memory', s.errno());
    const address = c.mmap(null, size, LINUX.PROT_READ | LINUX.PROT_WRITE, PROC_LINUX.MAP_SHARED, fd, 0);
    if (address === 0xffffffffffffffffn || address === 0n) throw sysError(`mmap of ${size} bytes of guest memory`, c.errno());
    const buffer = c.view(address, size);
    const memory = new GuestMemory(size, buffer);
    regions.set(memory, { fd, address, size, released: false });
    unmapper.register(buffer, { address, size });
    return memory;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/** The memfd behind shared guest memory (to hand to a tender), or undefined for other memory or once released. */
export function sharedMemoryFd(memory: GuestMemory): number | undefined {
  const r = regions.get(memory);
  return r && !r.released ? r.fd : undefined;
}

/**
 * Give a finished VM's memory back: close the memfd and drop the pages from Yakima's mapping
 * (they read as zero afterwards; the range itself is unmapped when the buffer is garbage
 * collected, so a stale reference can never crash the VMM). The pages are freed once the
 * tender process is gone too. Idempotent.
 */
export function releaseSharedGuestMemory(memory: GuestMemory): void {
  const r = regions.get(memory);
  if (!r || r.released) return;
  r.released = true;
  const c = libc();
  c.close(r.fd);
  // MADV_REMOVE frees shmem pages (MADV_DONTNEED would only drop this mapping's PTEs).
  c.madvise(r.address, r.size, 9 /* MADV_REMOVE */);
}
