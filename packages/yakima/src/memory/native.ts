/**
 * The few host calls guest memory needs beyond `cpu/kvm/libc.ts`: memfd_create(2) for the
 * shared templates and a reader of /proc/self/pagemap (Linux Documentation
 * admin-guide/mm/pagemap.rst) to tell a VM's private (copy-on-write) pages from shared ones.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { koffiModule, libc } from '../cpu/kvm/libc.js';

let memfdCreate: ((name: string, flags: number) => number) | undefined;

/** `MFD_CLOEXEC` (linux/memfd.h). */
const MFD_CLOEXEC = 1;

/**
 * A new anonymous memory file (memfd_create(2)): its pages live in the page cache (shmem),
 * so every private mapping of it shares the pages until one writes.
 * @throws Error when koffi or memfd_create is unavailable, or the call fails.
 */
export function createMemfd(name: string): number {
  if (!memfdCreate) {
    const fn = koffiModule().load('libc.so.6').func('int memfd_create(const char *name, unsigned int flags)');
    memfdCreate = (n, f) => fn(n, f) as number;
  }
  const fd = memfdCreate(name, MFD_CLOEXEC);
  if (fd < 0) throw new Error(`memfd_create failed: ${libc().strerror(libc().errno())}`);
  return fd;
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
  if (scratch.length < pages * 2) scratch = new Uint32Array(pages * 2);
  const bytes = new Uint8Array(scratch.buffer, 0, pages * 8);
  const pos = Number((address >> 12n) * 8n);
  let got = 0;
  while (got < bytes.length) {
    const n = readSync(pagemapFd, bytes, got, bytes.length - got, pos + got);
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

/** Close the pagemap descriptor (tests; it reopens on demand). */
export function closePagemap(): void {
  if (pagemapFd !== undefined) closeSync(pagemapFd);
  pagemapFd = undefined;
}
