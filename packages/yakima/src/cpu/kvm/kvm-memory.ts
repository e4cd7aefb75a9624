/**
 * Guest-physical memory for the KVM backend: page-aligned anonymous host memory (mmap), seen
 * by the VMM as an ordinary `GuestMemory` (an ArrayBuffer view of the very same pages that
 * KVM maps into the guest, so devices and hypercalls read and write guest memory directly).
 */
import { LAYOUT, PAGE_SIZE } from '@denali/image-format';
import { GuestMemory } from '../../boot/guest-memory.js';
import { LINUX, libc, sysError } from './libc.js';

interface HostRegion {
  address: bigint;
  size: number;
  released: boolean;
}

const regions = new WeakMap<GuestMemory, HostRegion>();

/**
 * Unmaps a region once its ArrayBuffer is garbage (no JS can reach the memory any more).
 * Until then `releaseGuestMemory` only gives the pages back (they read as zero), so a stale
 * reference to a destroyed VM's memory can never crash the VMM.
 */
const unmapper = new FinalizationRegistry<{ address: bigint; size: number }>(({ address, size }) => {
  try {
    libc().munmap(address, size);
  } catch {
    // nothing useful to do in a finalizer
  }
});

/**
 * Allocate `size` bytes of zeroed, page-aligned guest memory with
 * mmap(MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE) — untouched pages cost no host RAM — and
 * wrap it in a `GuestMemory`. Pass the result to `createBootImage` (see the report: the
 * `memory` option) and then to `KvmBackend.createVcpu` / `new KvmVcpu`.
 *
 * @throws RangeError for a size `GuestMemory` rejects; Error when mmap fails.
 */
export function allocateGuestMemory(size: number): GuestMemory {
  // The same rule GuestMemory enforces, checked before touching the host.
  if (!Number.isInteger(size) || size % PAGE_SIZE !== 0 || size < LAYOUT.MIN_MEMORY || size > LAYOUT.MAX_MEMORY) {
    throw new RangeError(`memory size ${size} must be a multiple of 4096 between ${LAYOUT.MIN_MEMORY} and ${LAYOUT.MAX_MEMORY} bytes`);
  }
  const c = libc();
  const address = c.mmap(null, size, LINUX.PROT_READ | LINUX.PROT_WRITE, LINUX.MAP_PRIVATE | LINUX.MAP_ANONYMOUS | LINUX.MAP_NORESERVE, -1, 0);
  if (address === 0xffffffffffffffffn || address === 0n) throw sysError(`mmap of ${size} bytes of guest memory`, c.errno());
  const buffer = c.view(address, size);
  const memory = new GuestMemory(size, buffer);
  regions.set(memory, { address, size, released: false });
  unmapper.register(buffer, { address, size });
  return memory;
}

/**
 * Let memory mapped elsewhere (memory/template.ts: private mappings of a shared template) be
 * used by KVM: `hostAddressOf` then reports `address`. The caller owns the mapping.
 */
export function adoptHostMemory(memory: GuestMemory, address: bigint, size: number): void {
  regions.set(memory, { address, size, released: false });
}

/** Undo `adoptHostMemory` before the caller unmaps the memory. */
export function forgetHostMemory(memory: GuestMemory): void {
  regions.delete(memory);
}

/** The host address of KVM-backed guest memory, or undefined for ordinary (ArrayBuffer) memory. */
export function hostAddressOf(memory: GuestMemory): bigint | undefined {
  const r = regions.get(memory);
  return r && !r.released ? r.address : undefined;
}

/** True when `memory` came from `allocateGuestMemory` and has not been released. */
export function isKvmMemory(memory: GuestMemory): boolean {
  return hostAddressOf(memory) !== undefined;
}

/**
 * Give a destroyed VM's memory back to the host now (madvise DONTNEED: the RAM is freed and
 * the range reads as zeros). The address range itself is unmapped when the GuestMemory's
 * buffer is garbage collected. Idempotent. Call only after the VM's KVM memory slots are gone
 * (`KvmVcpu.destroy` does both in that order).
 */
export function releaseGuestMemory(memory: GuestMemory): void {
  const r = regions.get(memory);
  if (!r || r.released) return;
  r.released = true;
  libc().madvise(r.address, r.size, LINUX.MADV_DONTNEED);
}
