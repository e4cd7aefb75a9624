/**
 * The few host calls guest memory needs beyond `cpu/kvm/libc.ts`: memfd_create(2) and size
 * seals for the templates and the process backend's guest memory; a reader of
 * /proc/self/pagemap (Linux Documentation admin-guide/mm/pagemap.rst) to tell a VM's private
 * (copy-on-write) pages from shared ones; lseek(2) SEEK_DATA/SEEK_HOLE to find a memfd's pages.
 */
import { closeSync, ftruncateSync, openSync, readSync } from 'node:fs';
import { lazyLibcFunctions, libc, sysError } from '../cpu/kvm/libc.js';

const bind = lazyLibcFunctions<{
  memfdCreate: (name: string, flags: number) => number;
  fcntl: (fd: number, cmd: number, arg: number) => number;
  lseek: (fd: number, off: number, whence: number) => number | bigint;
}>({
  memfdCreate: 'int memfd_create(const char *name, unsigned int flags)',
  fcntl: 'int fcntl(int fd, int cmd, int arg)',
  lseek: 'int64_t lseek(int fd, int64_t offset, int whence)',
});

/** `MFD_CLOEXEC`, `MFD_ALLOW_SEALING` (linux/memfd.h); `F_ADD_SEALS`, `F_SEAL_SHRINK`, `F_SEAL_GROW` (fcntl(2)). */
const MFD_CLOEXEC = 1;
const MFD_ALLOW_SEALING = 2;
const F_ADD_SEALS = 1033;
const F_SEAL_SHRINK_GROW = 2 | 4;

/**
 * A new anonymous memory file (memfd_create(2)): its pages live in the page cache (shmem),
 * so every private mapping of it shares the pages until one writes. `sealable` allows
 * `sealSize` on it.
 * @throws Error when koffi or memfd_create is unavailable, or the call fails.
 */
export function createMemfd(name: string, sealable = false): number {
  const fd = bind().memfdCreate(name, MFD_CLOEXEC | (sealable ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) throw new Error(`memfd_create failed: ${libc().strerror(libc().errno())}`);
  return fd;
}

/** Set a memfd's size in bytes (ftruncate(2)). @throws Error naming the errno on failure. */
export function ftruncateFd(fd: number, size: number): void {
  ftruncateSync(fd, size);
}

/**
 * Seal a memfd's size (F_SEAL_SHRINK | F_SEAL_GROW): no process holding it can change it, so
 * a mapping of it can never turn into SIGBUS.
 * @throws Error naming the errno when fcntl fails.
 */
export function sealSize(fd: number): void {
  if (bind().fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK_GROW) !== 0) throw sysError('sealing guest memory', libc().errno());
}

/** pagemap entry bits 63 (present), 62 (swapped) and 61 (file page or shared-anon), in the high word. */
const PM_PRESENT_OR_SWAPPED = (1 << 31) | (1 << 30);
const PM_FILE = 1 << 29;

let pagemapFd: number | undefined;
let scratch = new Uint32Array(0);

/**
 * Pages of `[address, address + pages * 4096)` this process holds privately: present (or in
 * the host's swap) and not a file/shared page, i.e. written since the mapping was made (a
 * copy-on-write copy) or anonymous. Returns their page indices relative to `address`, in order.
 * @throws Error when /proc/self/pagemap cannot be read.
 */
export function privatePageIndices(address: bigint, pages: number): Uint32Array {
  pagemapFd ??= openSync('/proc/self/pagemap', 'r');
  if (scanWorks !== false) {
    const found = scanPrivatePages(pagemapFd, address, pages);
    if (found) return found;
  }
  return readPrivatePages(pagemapFd, address, pages);
}

/**
 * `privatePageIndices` by reading the range's pagemap entries (8 bytes a page) and testing
 * them here: every kernel with /proc/self/pagemap. Exported for tests (it must agree with the
 * PAGEMAP_SCAN path).
 */
export function readPrivatePages(fd: number, address: bigint, pages: number): Uint32Array {
  if (scratch.length < pages * 2) scratch = new Uint32Array(pages * 2);
  const bytes = new Uint8Array(scratch.buffer, 0, pages * 8);
  const pos = Number((address >> 12n) * 8n);
  let got = 0;
  while (got < bytes.length) {
    const n = readSync(fd, bytes, got, bytes.length - got, pos + got);
    if (n <= 0) throw new Error('short read of /proc/self/pagemap');
    got += n;
  }
  let count = 0;
  const out = new Uint32Array(pages);
  for (let i = 0; i < pages; i++) {
    const hi = scratch[2 * i + 1]!;
    if ((hi & PM_PRESENT_OR_SWAPPED) !== 0 && (hi & PM_FILE) === 0) out[count++] = i;
  }
  return out.slice(0, count);
}

/**
 * PAGEMAP_SCAN (Linux 6.7, admin-guide/mm/pagemap.rst "PAGEMAP_SCAN IOCTL"): the kernel
 * returns the runs of pages matching a category test instead of 8 bytes per page. Swap-out and
 * budget measurements ask for a 12 MiB range (3,072 entries, 24 KiB) per VM; the read and the
 * loop over it were ~4 % of the CPU per request at 10,000 VMs. `_IOWR('f', 16, struct
 * pm_scan_arg)`, the argument 96 bytes.
 */
const PAGEMAP_SCAN = 0xc0606610;
const PM_SCAN_ARG_BYTES = 96;
/** Page categories (linux/fs.h): PAGE_IS_FILE, PAGE_IS_PRESENT, PAGE_IS_SWAPPED. */
const PAGE_IS_FILE = 1n << 2n;
const PAGE_IS_PRESENT = 1n << 3n;
const PAGE_IS_SWAPPED = 1n << 4n;
/** One `struct page_region` { start, end, categories } (u64 each). */
const REGION_BYTES = 24;

/** Whether PAGEMAP_SCAN works here: unknown until first tried; false after it fails (older kernels). */
let scanWorks: boolean | undefined;
let scanArg: BigUint64Array | undefined;
/** Byte view of `scanArg`, made once: it is passed to every ioctl. */
let scanArgBytes: Uint8Array | undefined;
let scanRegions = new BigUint64Array(0);
/** `scanRegions` as 32-bit halves, and its native address (both follow a reallocation). */
let scanRegionWords = new Uint32Array(0);
let scanRegionsAddress = 0n;
/** Scratch for the page indices found, grown as needed; callers get a copy. */
let scanOut = new Uint32Array(0);

/**
 * `privatePageIndices` through PAGEMAP_SCAN: pages that are present or swapped and not a file
 * page — the same test as the pagemap bits (a copy-on-write copy is an anonymous page).
 * undefined when the ioctl is unavailable (then the caller reads pagemap).
 *
 * Every swap-out and measurement calls it, so it makes no garbage besides its result and does
 * its region arithmetic in doubles (guest addresses are below 2^47): a fresh page-sized
 * scratch array and BigInt arithmetic per region took ~2 % of the CPU per request at 10,000 VMs.
 */
export function scanPrivatePages(fd: number, address: bigint, pages: number): Uint32Array | undefined {
  let c: ReturnType<typeof libc>;
  try {
    c = libc();
  } catch {
    scanWorks = false;
    return undefined;
  }
  const arg = (scanArg ??= new BigUint64Array(PM_SCAN_ARG_BYTES / 8));
  const argBytes = (scanArgBytes ??= new Uint8Array(arg.buffer));
  // At most one region per two pages (regions of matching pages are merged).
  const maxRegions = Math.ceil(pages / 2) + 1;
  if (scanRegions.length < maxRegions * 3) {
    scanRegions = new BigUint64Array(maxRegions * 3);
    scanRegionWords = new Uint32Array(scanRegions.buffer);
    scanRegionsAddress = c.address(scanRegions.buffer);
  }
  if (scanOut.length < pages) scanOut = new Uint32Array(pages);
  const out = scanOut;
  const words = scanRegionWords;
  const base = Number(address);
  const end = address + BigInt(pages) * 4096n;
  let count = 0;
  let start = address;
  while (start < end) {
    arg.fill(0n);
    arg[0] = BigInt(PM_SCAN_ARG_BYTES); // size
    arg[2] = start;
    arg[3] = end;
    arg[5] = scanRegionsAddress; // vec
    arg[6] = BigInt(scanRegions.length / 3); // vec_len
    arg[8] = PAGE_IS_FILE; // category_inverted: FILE must be clear …
    arg[9] = PAGE_IS_FILE; // category_mask
    arg[10] = PAGE_IS_PRESENT | PAGE_IS_SWAPPED; // category_anyof_mask: … and present or swapped
    arg[11] = PAGE_IS_PRESENT; // return_mask
    const n = c.ioctlPtr(fd, PAGEMAP_SCAN, argBytes);
    if (n < 0) {
      if (scanWorks === true) throw sysError('PAGEMAP_SCAN of guest memory', c.errno());
      scanWorks = false;
      return undefined;
    }
    scanWorks = true;
    for (let r = 0; r < n; r++) {
      // struct page_region { u64 start, end, categories }, little-endian.
      const w = 6 * r;
      const first = (words[w]! + words[w + 1]! * 0x1_0000_0000 - base) / 4096;
      const last = (words[w + 2]! + words[w + 3]! * 0x1_0000_0000 - base) / 4096;
      for (let p = first; p < last; p++) out[count++] = p;
    }
    const walkEnd = arg[4]!;
    if (walkEnd <= start) break; // no progress: never loop forever
    start = walkEnd;
  }
  return out.slice(0, count);
}

/** Close the pagemap descriptor (tests; it reopens on demand). */
export function closePagemap(): void {
  if (pagemapFd !== undefined) closeSync(pagemapFd);
  pagemapFd = undefined;
}

/** `SEEK_DATA`, `SEEK_HOLE` (lseek(2)). */
const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/**
 * Page indices of a memory file (memfd, `pages` pages long) that hold data, in order: pages
 * ever written or copied in, found with lseek(2) SEEK_DATA/SEEK_HOLE (never-touched pages
 * are holes and cost nothing).
 */
export function dataPageIndices(fd: number, pages: number): Uint32Array {
  const f = bind();
  const size = pages * PAGE_BYTES;
  const out: number[] = [];
  let at = 0;
  while (at < size) {
    const data = Number(f.lseek(fd, at, SEEK_DATA));
    if (data < 0 || data >= size) break; // ENXIO: no data past `at`
    let hole = Number(f.lseek(fd, data, SEEK_HOLE));
    if (hole < 0 || hole > size) hole = size;
    for (let p = Math.floor(data / PAGE_BYTES); p < Math.ceil(hole / PAGE_BYTES); p++) out.push(p);
    at = Math.max(hole, data + PAGE_BYTES);
  }
  return Uint32Array.from(out);
}

const PAGE_BYTES = 4096;
