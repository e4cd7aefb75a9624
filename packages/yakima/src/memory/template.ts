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
 */
import { closeSync, fstatSync, ftruncateSync, writeSync } from 'node:fs';
import { LAYOUT, PAGE_SIZE, type DenaliImage } from '@denali/image-format';
import { GuestMemory } from '../boot/guest-memory.js';
import { LINUX, libc, sysError } from '../cpu/kvm/libc.js';
import { adoptHostMemory, forgetHostMemory } from '../cpu/kvm/kvm-memory.js';
import { createMemfd, privatePageIndices } from './native.js';
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
  unmapped: boolean;
}

const mappings = new WeakMap<GuestMemory, Mapping>();

/** Free slots by size, at most `POOL_MAX` each (each is one PROT_NONE mapping holding no memory). */
const pool = new Map<number, Slot[]>();
const POOL_MAX = 1024;

/** Unmaps a finished VM's memory once no JS can reach it (a stale view then cannot crash us). */
const unmapper = new FinalizationRegistry<{ address: bigint; size: number }>(({ address, size }) => {
  try {
    libc().munmap(address, size);
  } catch {
    // nothing useful to do in a finalizer
  }
});

const MAP_FIXED = 0x10;
const MAP_FAILED = 0xffffffffffffffffn;

/** The initial contents of guest memories, held once in a memory file and mapped privately by each VM. */
export class MemoryTemplate {
  /** One bit per page: set when the template's page is not all zero. */
  readonly nonZero: Uint8Array;
  private fd: number;
  /** Mappings made from this template and not yet unmapped. */
  mapped = 0;
  /**
   * Emulator blocks shared by the VMs mapping this template, and by those of the templates
   * cloned from its VMs (same code): see `SharedCode`. Made on first use.
   */
  private code: SharedCode | undefined;

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
    for (let p = Math.floor(at / PAGE_SIZE); p < Math.ceil((at + data.length) / PAGE_SIZE); p++) this.nonZero[p >> 3]! |= 1 << (p & 7);
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
   * A new guest memory: a private, lazily faulted mapping of the whole template
   * (MAP_PRIVATE | MAP_NORESERVE). KVM can map it too (it is registered with kvm-memory).
   * @throws Error when mmap fails (e.g. the host's map count or address space is exhausted).
   */
  map(): GuestMemory {
    if (this.fd < 0) throw new Error(`memory template of ${this.label} is closed`);
    const c = libc();
    const flags = LINUX.MAP_PRIVATE | LINUX.MAP_NORESERVE;
    const prot = LINUX.PROT_READ | LINUX.PROT_WRITE;
    let slot = pool.get(this.size)?.pop();
    if (slot) {
      const at = c.mmap(slot.address, this.size, prot, flags | MAP_FIXED, this.fd, 0);
      if (at !== slot.address) {
        const errno = c.errno();
        releaseSlot(slot);
        throw sysError(`mmap of ${this.size} bytes of guest memory`, errno);
      }
    } else {
      const address = c.mmap(null, this.size, prot, flags, this.fd, 0);
      if (address === MAP_FAILED || address === 0n) throw sysError(`mmap of ${this.size} bytes of guest memory`, c.errno());
      slot = { address, size: this.size, buffer: c.view(address, this.size) };
      unmapper.register(slot.buffer, { address, size: this.size }, slot);
    }
    const memory = new GuestMemory(this.size, slot.buffer);
    mappings.set(memory, { slot, template: this, unmapped: false });
    adoptHostMemory(memory, slot.address, this.size);
    this.mapped++;
    return memory;
  }

  /** Release the memory file (mapped pages stay valid until unmapped). Idempotent. */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
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
 * Page indices of `memory` that differ from its template's shared pages (written since the
 * mapping was made), from /proc/self/pagemap. Empty for unmapped memory.
 */
export function privatePages(memory: GuestMemory): Uint32Array {
  const m = mappings.get(memory);
  if (!m || m.unmapped) return new Uint32Array(0);
  return privatePageIndices(m.slot.address, m.slot.size / PAGE_SIZE);
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
  const free = pool.get(m.slot.size) ?? [];
  pool.set(m.slot.size, free);
  const c = libc();
  if (free.length < POOL_MAX) {
    const flags = LINUX.MAP_PRIVATE | LINUX.MAP_ANONYMOUS | LINUX.MAP_NORESERVE | MAP_FIXED;
    if (c.mmap(m.slot.address, m.slot.size, 0 /* PROT_NONE */, flags, -1, 0) === m.slot.address) {
      free.push(m.slot);
      return;
    }
  }
  releaseSlot(m.slot);
}

function releaseSlot(slot: Slot): void {
  unmapper.unregister(slot);
  libc().munmap(slot.address, slot.size);
}

/**
 * Give a finished VM's private pages back now (madvise DONTNEED: the range reads as the
 * template again); the mapping itself goes when no JS can reach the memory any more.
 */
export function releaseMappedMemory(memory: GuestMemory): void {
  const m = mappings.get(memory);
  if (!m || m.unmapped) return;
  libc().madvise(m.slot.address, m.slot.size, LINUX.MADV_DONTNEED);
}
