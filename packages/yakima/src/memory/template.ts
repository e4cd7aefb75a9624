/**
 * Guest memory shared copy-on-write (docs/architecture.md, "Memory model"). A `MemoryTemplate`
 * is a memory file (memfd) holding the initial contents of a VM's whole guest-physical space:
 * either an image's loaded segments (every VM of that image starts from it) or a booted VM's
 * memory (its clones start from it). Each VM's guest memory is a MAP_PRIVATE mapping of a
 * template: pages nobody wrote are the template's page-cache pages, held once for all VMs;
 * a write gives that VM a private copy (mmap(2), MAP_PRIVATE). Untouched pages cost nothing.
 *
 * The mapping is seen through `koffi.view` as an ordinary ArrayBuffer, so the emulator's hot
 * path (`u8`, `Int32Array` over `buffer`) and KVM (which maps the same host pages into the
 * guest) use it unchanged. One mapping (one VMA) per resident VM; a swapped-out VM has none,
 * so vm.max_map_count bounds resident VMs only.
 *
 * The process backend cannot share pages this way (its tender is another process, which
 * never sees this process's private copies): there each VM gets a *shared copy*, its own memfd
 * holding the template's contents (`map(true)`), and its own pages are those that differ from
 * the template.
 */
import { closeSync, fstatSync, ftruncateSync, writeSync } from 'node:fs';
import { LAYOUT, PAGE_SIZE, type DenaliImage } from '@denali/image-format';
import { GuestMemory } from '../boot/guest-memory.js';
import { LINUX, libc, sysError } from '../cpu/kvm/libc.js';
import { adoptHostMemory, cancelUnmapWhenGarbage, createGuestMemfd, forgetHostMemory, MAP_SHARED, releaseGuestMemory, sharedMemoryFd, unmapWhenGarbage } from './host-memory.js';
import { createMemfd, dataPageIndices, privatePageIndices } from './native.js';
import { SharedCode } from '../cpu/emu/block-cache.js';

/**
 * A host address range of one guest memory size with its ArrayBuffer view. Swap-out returns
 * slots to a small pool (re-mapped PROT_NONE: no memory, and a stray access faults) and
 * swap-in maps the next VM's template over a pooled slot with MAP_FIXED, reusing its view:
 * V8 counts every ArrayBuffer's size as external memory, and a new 12 MiB view per swap-in
 * made it run a full mark-compact every few dozen swap-ins.
 */
interface Slot {
  address: bigint;
  size: number;
  buffer: ArrayBuffer;
}

interface Mapping {
  slot: Slot;
  template: MemoryTemplate;
  /** A copy of the template in the VM's own memfd (the process backend), not a private mapping. */
  shared: boolean;
  unmapped: boolean;
}

const mappings = new WeakMap<GuestMemory, Mapping>();

/** Free slots by size, at most `POOL_MAX` each (each is one PROT_NONE mapping holding no memory). */
const pool = new Map<number, Slot[]>();
const POOL_MAX = 1024;

const MAP_FIXED = 0x10;
const MAP_FAILED = 0xffffffffffffffffn;

/** The initial contents of guest memories, held once in a memory file and mapped privately by each VM. */
export class MemoryTemplate {
  /** One bit per page: set when the template's page is not all zero. */
  readonly nonZero: Uint8Array;
  private fd: number;
  /** A read-only view of the template (made on first use), to tell a VM's changed pages in a shared copy. */
  private readOnly: { address: bigint; u8: Uint8Array } | undefined;
  /** Mappings made from this template and not yet unmapped. */
  mapped = 0;
  /**
   * Emulator blocks shared by the VMs mapping this template, and by those of the templates
   * cloned from its VMs (same code): see `SharedCode`. Made on first use.
   */
  private code: SharedCode | undefined;
  /** Per page: 0 not compared yet, 1 equal to the shared code's bytes for it, 2 different (see `holdsSharedCode`). */
  private codeVerdict: Uint8Array | undefined;

  private constructor(
    /** Guest memory size in bytes (a page multiple). */
    readonly size: number,
    /** What it holds, for messages: "image httpd" or "clone of VM 3". */
    readonly label: string,
  ) {
    this.fd = createMemfd(`denali-${label.replace(/\W+/g, '-')}`);
    ftruncateSync(this.fd, size);
    this.nonZero = new Uint8Array(Math.ceil(size / PAGE_SIZE / 8));
  }

  /**
   * The template of an image: its segments at their load addresses, zero elsewhere (the
   * per-VM virtual registers and boot arguments are written by each VM into its own copy).
   * @throws Error when memfd/mmap are unavailable (not Linux x86-64 with koffi).
   */
  static ofImage(image: DenaliImage, memorySize: number): MemoryTemplate {
    const t = new MemoryTemplate(memorySize, `image ${image.manifest.name}`);
    image.segments.forEach((data, i) => {
      const at = image.manifest.segments[i]!.loadAddress;
      if (data.length > 0 && at + data.length <= memorySize) t.write(at, data);
    });
    return t;
  }

  /**
   * A template holding a copy of `memory` as it is now (the post-boot state that clones
   * start from). Only non-zero pages are written; zero pages stay holes.
   */
  static ofMemory(memory: GuestMemory, label: string): MemoryTemplate {
    const t = new MemoryTemplate(memory.size, label);
    t.code = templateOf(memory)?.code;
    const words = new Int32Array(memory.buffer);
    const perPage = PAGE_SIZE / 4;
    for (let p = LAYOUT.NULL_PAGE_END / PAGE_SIZE; p < memory.size / PAGE_SIZE; p++) {
      let w = p * perPage;
      const end = w + perPage;
      while (w < end && words[w] === 0) w++;
      if (w < end) t.write(p * PAGE_SIZE, memory.u8.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
    }
    return t;
  }

  private write(at: number, data: Uint8Array): void {
    let done = 0;
    while (done < data.length) done += writeSync(this.fd, data, done, data.length - done, at + done);
    // Only pages with a non-zero byte: an all-zero page of a segment is a hole in the file,
    // and neither a swap record nor a process-backend VM's own copy needs it.
    for (let p = Math.floor(at / PAGE_SIZE); p < Math.ceil((at + data.length) / PAGE_SIZE); p++) {
      const from = Math.max(0, p * PAGE_SIZE - at);
      const to = Math.min(data.length, (p + 1) * PAGE_SIZE - at);
      let i = from;
      while (i < to && data[i] === 0) i++;
      if (i < to) this.nonZero[p >> 3]! |= 1 << (p & 7);
    }
  }

  /** True when the template's page `page` (index) may hold non-zero bytes. */
  pageNonZero(page: number): boolean {
    return (this.nonZero[page >> 3]! & (1 << (page & 7))) !== 0;
  }

  /** The emulator blocks shared by VMs of this template (see `code`). */
  get sharedCode(): SharedCode {
    return (this.code ??= new SharedCode(this.size));
  }

  /** Host bytes the template's pages occupy (its page cache), shared by every VM mapping it. */
  get hostBytes(): number {
    if (this.fd < 0) return 0;
    return fstatSync(this.fd).blocks * 512;
  }

  /**
   * A new guest memory holding the template's contents.
   *
   * Private (the default): a private, lazily faulted mapping of the whole template
   * (MAP_PRIVATE | MAP_NORESERVE); pages stay shared with every other VM of the template until
   * written. KVM can map it too (it is registered with host-memory).
   *
   * Shared (`shared: true`, the process backend): the VM's own sealed memfd, mapped
   * MAP_SHARED here and by its tender process, with the template's non-zero pages copied in
   * (a second process cannot see this process's private copy-on-write pages).
   * `sharedMemoryFd` gives its memfd.
   * @throws Error when memfd_create, the copy or mmap fails (e.g. the host's map count or
   *   address space is exhausted); nothing is left allocated then.
   */
  map(shared = false): GuestMemory {
    if (this.fd < 0) throw new Error(`memory template of ${this.label} is closed`);
    const c = libc();
    const fd = shared ? createGuestMemfd(this.size) : this.fd;
    if (shared) {
      try {
        this.copyInto(fd);
      } catch (e) {
        c.close(fd);
        throw e;
      }
    }
    const flags = shared ? MAP_SHARED : LINUX.MAP_PRIVATE | LINUX.MAP_NORESERVE;
    const prot = LINUX.PROT_READ | LINUX.PROT_WRITE;
    let slot = pool.get(this.size)?.pop();
    try {
      if (slot) {
        const at = c.mmap(slot.address, this.size, prot, flags | MAP_FIXED, fd, 0);
        if (at !== slot.address) {
          const errno = c.errno();
          releaseSlot(slot);
          throw sysError(`mmap of ${this.size} bytes of guest memory`, errno);
        }
      } else {
        const address = c.mmap(null, this.size, prot, flags, fd, 0);
        if (address === MAP_FAILED || address === 0n) throw sysError(`mmap of ${this.size} bytes of guest memory`, c.errno());
        slot = { address, size: this.size, buffer: c.view(address, this.size) };
        unmapWhenGarbage(slot.buffer, address, this.size, slot);
      }
    } catch (e) {
      if (shared) c.close(fd);
      throw e;
    }
    const memory = new GuestMemory(this.size, slot.buffer);
    mappings.set(memory, { slot, template: this, shared, unmapped: false });
    adoptHostMemory(memory, slot.address, this.size, shared ? fd : -1);
    this.mapped++;
    return memory;
  }

  /**
   * Guest memory for a VM being swapped in over `warm` (a swapped-out VM's mapping of this
   * template that kept its private pages): every page `warm` holds privately except those in
   * `overwrite` is dropped (madvise MADV_DONTNEED: it reads as this template again), and the
   * pages in `overwrite` (ascending) keep whatever they hold: **the caller must overwrite each
   * of them whole before anything reads the memory** (swap-in reads its record over them), or
   * unmap it. Pages `overwrite` names that `warm` did not hold are copied on write as in `map`.
   * @throws RangeError when `warm` maps another template; Error when madvise fails (`warm`
   *   is released then).
   */
  mapWarm(warm: WarmSlot, overwrite: Uint32Array): GuestMemory {
    if (warm.template !== this) throw new RangeError(`a warm slot of ${warm.template.label} cannot hold memory of ${this.label}`);
    const c = libc();
    let runStart = 0;
    let runLength = 0;
    const flush = (): void => {
      if (runLength === 0) return;
      const address = warm.slot.address + BigInt(runStart * PAGE_SIZE);
      const length = runLength * PAGE_SIZE;
      runLength = 0;
      if (c.madvise(address, length, LINUX.MADV_DONTNEED) !== 0) {
        const errno = c.errno();
        releaseWarm(warm);
        throw sysError("madvise(MADV_DONTNEED) of a swapped-out VM's pages", errno);
      }
    };
    // Runs of consecutive pages to drop: `warm.pages` less `overwrite` (both ascending).
    let k = 0;
    for (const p of warm.pages) {
      while (k < overwrite.length && overwrite[k]! < p) k++;
      if (k < overwrite.length && overwrite[k] === p) {
        flush();
        continue;
      }
      if (runLength > 0 && p === runStart + runLength) runLength++;
      else {
        flush();
        runStart = p;
        runLength = 1;
      }
    }
    flush();
    const memory = new GuestMemory(this.size, warm.slot.buffer);
    mappings.set(memory, { slot: warm.slot, template: this, shared: false, unmapped: false });
    adoptHostMemory(memory, warm.slot.address, this.size, -1);
    return memory;
  }

  /**
   * Copy the template's non-zero pages into a shared copy's memfd `fd`: one pwrite(2) per run
   * of pages, from the template's read-only view. Writing through the file fills
   * the new pages in the kernel; reading into the mapping instead took a page fault per page
   * (about 3x slower for httpd's 1.1 MiB).
   */
  private copyInto(fd: number): void {
    const src = this.readOnlyView();
    const pages = this.size / PAGE_SIZE;
    for (let p = 0; p < pages; ) {
      if (!this.pageNonZero(p)) {
        p++;
        continue;
      }
      let q = p + 1;
      while (q < pages && this.pageNonZero(q)) q++;
      const at = p * PAGE_SIZE;
      const len = (q - p) * PAGE_SIZE;
      let done = 0;
      while (done < len) done += writeSync(fd, src, at + done, len - done, at + done);
      p = q;
    }
  }

  /** The template's contents, mapped read-only here once (page cache shared with every VM). */
  private readOnlyView(): Uint8Array {
    if (!this.readOnly) {
      const c = libc();
      const address = c.mmap(null, this.size, LINUX.PROT_READ, MAP_SHARED, this.fd, 0);
      if (address === MAP_FAILED || address === 0n) throw sysError(`mmap of the memory template of ${this.label}`, c.errno());
      this.readOnly = { address, u8: new Uint8Array(c.view(address, this.size)) };
    }
    return this.readOnly.u8;
  }

  /** True when page `page` of `u8` (a guest memory of this template's size) equals the template's. */
  samePage(u8: Uint8Array, page: number): boolean {
    if (!this.pageNonZero(page)) {
      const words = new Int32Array(u8.buffer, u8.byteOffset + page * PAGE_SIZE, PAGE_SIZE / 4);
      for (let i = 0; i < words.length; i++) if (words[i] !== 0) return false;
      return true;
    }
    const a = new Int32Array(u8.buffer, u8.byteOffset + page * PAGE_SIZE, PAGE_SIZE / 4);
    const b = new Int32Array(this.readOnlyView().buffer, page * PAGE_SIZE, PAGE_SIZE / 4);
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  /**
   * True when page `page` of this template equals `bytes` (the bytes the shared emulator blocks
   * of that page were decoded from, `SharedCode.pages`). Compared once per page and template:
   * a VM swapped in over this template holds these bytes on every page its record does not
   * cover, so its vCPU need not compare them again (`BlockCache.rebind`).
   */
  holdsSharedCode(page: number, bytes: Uint8Array): boolean {
    const verdict = (this.codeVerdict ??= new Uint8Array(this.size / PAGE_SIZE));
    if (verdict[page] === 0) {
      const mine = this.readOnlyView().subarray(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
      verdict[page] = bytes.length === PAGE_SIZE && Buffer.compare(mine, bytes) === 0 ? 1 : 2;
    }
    return verdict[page] === 1;
  }

  /** Release the memory file (mapped pages stay valid until unmapped). Idempotent. */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    if (this.readOnly) libc().munmap(this.readOnly.address, this.size);
    this.readOnly = undefined;
  }
}

/** The template `memory` maps, or undefined for memory that is not a template mapping. */
export function templateOf(memory: GuestMemory): MemoryTemplate | undefined {
  const m = mappings.get(memory);
  return m && !m.unmapped ? m.template : undefined;
}

/** The emulator blocks shared by VMs of `memory`'s template, or null for memory that is not a template mapping. */
export function codeShareOf(memory: GuestMemory): SharedCode | null {
  return templateOf(memory)?.sharedCode ?? null;
}

/**
 * Page indices of `memory` that differ from its template's shared pages: for a private
 * mapping those written since it was made (from /proc/self/pagemap), for a shared copy the
 * data pages of its memfd whose contents differ from the template's. Empty for unmapped memory.
 */
export function privatePages(memory: GuestMemory): Uint32Array {
  const m = mappings.get(memory);
  if (!m || m.unmapped) return new Uint32Array(0);
  if (!m.shared) return privatePageIndices(m.slot.address, m.slot.size / PAGE_SIZE);
  // A shared copy holds every page it was given or that was written: keep those that differ.
  const fd = sharedMemoryFd(memory);
  if (fd === undefined) return new Uint32Array(0);
  const held = dataPageIndices(fd, m.slot.size / PAGE_SIZE);
  let n = 0;
  for (const p of held) if (!m.template.samePage(memory.u8, p)) held[n++] = p;
  return held.slice(0, n);
}

/**
 * Host bytes of guest memory `memory` holds on its own: its private (copy-on-write) pages, or
 * for a shared copy every page of its memfd (template copies included), from fstat(2).
 */
export function ownedBytes(memory: GuestMemory): number {
  const m = mappings.get(memory);
  if (!m || m.unmapped) return 0;
  if (!m.shared) return privatePageIndices(m.slot.address, m.slot.size / PAGE_SIZE).length * PAGE_SIZE;
  const fd = sharedMemoryFd(memory);
  return fd === undefined ? 0 : fstatSync(fd).blocks * 512;
}

/**
 * Unmap `memory` now (swap-out): its host pages are freed and its address range is unmapped
 * or parked in the slot pool (PROT_NONE, later mapped again for another VM). The caller must
 * have dropped every other reference to `memory` (vCPU, views): it must never be touched
 * again. Idempotent.
 */
export function unmapGuestMemory(memory: GuestMemory): void {
  const m = mappings.get(memory);
  if (!m || m.unmapped) return;
  m.unmapped = true;
  forgetHostMemory(memory);
  m.template.mapped--;
  parkSlot(m.slot);
}

/** Free a slot's pages: park it in the pool (PROT_NONE) or, past `POOL_MAX`, unmap it. */
function parkSlot(slot: Slot): void {
  const free = pool.get(slot.size) ?? [];
  pool.set(slot.size, free);
  if (free.length < POOL_MAX) {
    const flags = LINUX.MAP_PRIVATE | LINUX.MAP_ANONYMOUS | LINUX.MAP_NORESERVE | MAP_FIXED;
    if (libc().mmap(slot.address, slot.size, 0 /* PROT_NONE */, flags, -1, 0) === slot.address) {
      free.push(slot);
      return;
    }
  }
  releaseSlot(slot);
}

/**
 * A swapped-out VM's private mapping of `template`, kept mapped with its private pages so that
 * the next VM of the same template swapped in can take it (`MemoryTemplate.mapWarm`) instead of
 * a fresh mapping: reading a record into a fresh mapping takes a page fault, a new page and a
 * copy-on-write copy per page, and freeing the old mapping a page-table walk. On this host (a
 * VM itself), `pnpm bench:swap-core` ("swap-in mechanism", 25 pages): map and read 140 µs,
 * read into a kept mapping 8 µs, free a used mapping 30 µs.
 * Its pages are guest data of the VM that left it: nothing reads them until `mapWarm` has
 * dropped or overwritten every one.
 */
export interface WarmSlot {
  readonly template: MemoryTemplate;
  /** Every page the mapping holds privately (ascending indices), from pagemap at the swap-out. */
  readonly pages: Uint32Array;
  readonly slot: Slot;
}

/**
 * Retire `memory` at a swap-out like `unmapGuestMemory`, but keep its mapping and private pages
 * `pages` (ascending: every page `privatePages(memory)` found, zero ones too) as a warm slot.
 * The caller must have dropped every other reference to `memory`. A shared copy (process
 * backend) or memory that is not a template mapping is unmapped instead.
 * @returns the warm slot, or undefined when the memory was unmapped.
 */
export function retireWarm(memory: GuestMemory, pages: Uint32Array): WarmSlot | undefined {
  const m = mappings.get(memory);
  if (!m || m.unmapped) return undefined;
  if (m.shared) {
    unmapGuestMemory(memory);
    return undefined;
  }
  m.unmapped = true;
  forgetHostMemory(memory);
  return { template: m.template, pages, slot: m.slot };
}

/** Give up a warm slot: its pages are freed (the slot is parked or unmapped). Call at most once per slot. */
export function releaseWarm(warm: WarmSlot): void {
  warm.template.mapped--;
  parkSlot(warm.slot);
}

function releaseSlot(slot: Slot): void {
  cancelUnmapWhenGarbage(slot);
  libc().munmap(slot.address, slot.size);
}

/**
 * Give a finished VM's private pages back now (madvise DONTNEED: the range reads as the
 * template again; a shared copy's memfd is closed and emptied); the mapping itself goes when
 * no JS can reach the memory any more.
 */
export function releaseMappedMemory(memory: GuestMemory): void {
  const m = mappings.get(memory);
  if (!m || m.unmapped) return;
  if (m.shared) releaseGuestMemory(memory);
  else libc().madvise(m.slot.address, m.slot.size, LINUX.MADV_DONTNEED);
}
