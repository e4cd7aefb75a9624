import type { GuestMemory } from '../../boot/guest-memory.js';
import { jcc, jccSide } from './control.js';
import { stringOp } from './data.js';
import { decodeInstr } from './decoder.js';
import type { CompiledBlock } from './compiler.js';
import type { Instr } from './instr.js';

/** Most instructions in one decoded block (also bounds the quantum overshoot). */
export const MAX_BLOCK_INSTRS = 64;
/** Granularity of the per-page code map used to ignore writes near, but not on, code (bytes). */
const LINE_SHIFT = 6;
const LINES_PER_PAGE = 0x1000 >> LINE_SHIFT;
/**
 * Size of the direct-mapped EIP -> block array in front of the Map. 4,096 entries (32 KiB per
 * vCPU) rather than 16,384 (128 KiB, allocated in V8's large-object space): every swap-in
 * makes a vCPU, and the larger array halved swap-in throughput through old-space GCs
 * (`pnpm bench:swap-core`); httpd decodes about 1,400 blocks, so hits stay in the array.
 */
const FAST_SIZE = 1 << 12;
/**
 * Most decoded blocks kept in the process-wide store shared by every vCPU (about 1 KiB each;
 * httpd has about 1,400). Past this the store is emptied and refilled, like the compiled-block
 * store in compiler.ts.
 */
const SHARED_MAX = 1 << 16;

/**
 * Decoded blocks shared by every vCPU of the process, keyed by EIP. Decoding depends only on
 * the code bytes and the guest memory size (fetch faults), so a block decoded by one VM serves
 * every VM whose memory holds the same bytes at the same address: N VMs of one image decode
 * each block once, and a VM swapped back in (a fresh vCPU, an empty cache) finds its blocks
 * here, already compiled, instead of decoding and interpreting them again.
 */
const SHARED = new Map<number, Block[]>();
let sharedCount = 0;

/** Decoded blocks in the process-wide shared store (for tests and statistics). */
export function sharedDecodedCount(): number {
  return sharedCount;
}

/**
 * A block: decoded instructions from `addr` up to and including the first block terminator
 * other than a conditional branch (jmp, call, ret, exit, fault) or `MAX_BLOCK_INSTRS`
 * instructions. Conditional branches inside it are side exits (`jccSide`).
 * `instrs` carries everything a block compiler needs (see `Instr`).
 */
export class Block {
  /** Executions so far (the block compiler takes over after `COMPILE_AFTER`). */
  hits = 0;
  /** The compiled form, once hot (see compiler.ts). */
  fn: CompiledBlock | null = null;
  constructor(
    /** Guest address of the first instruction. */
    readonly addr: number,
    /** First guest address after the last instruction byte. */
    readonly end: number,
    readonly instrs: Instr[],
    /** EIP after the block when its last instruction does not set EIP itself. */
    readonly endEip: number,
    /** Guest memory size (bytes) it was decoded in: fetch faults depend on it. */
    readonly memSize: number = 0,
    /** Copy of the code bytes `[addr, end)`, or null when the block may not be shared. */
    readonly bytes: Uint8Array | null = null,
  ) {}
}

/**
 * Slot of `eip` in the direct-mapped array. The page number is folded in: functions are
 * 16-byte aligned, so blocks of different pages at the same page offset are common, and indexed
 * by the offset alone they evicted each other (httpd: 79 misses per request, 37 with the fold).
 */
function fastSlot(eip: number): number {
  return (eip ^ (eip >>> 12)) & (FAST_SIZE - 1);
}

function share(b: Block): void {
  if (sharedCount >= SHARED_MAX) {
    SHARED.clear();
    sharedCount = 0;
  }
  const list = SHARED.get(b.addr);
  if (list === undefined) SHARED.set(b.addr, [b]);
  else {
    // A few variants per address at most (different images); the newest goes first.
    if (list.length >= 8) {
      list.pop();
      sharedCount--;
    }
    list.unshift(b);
  }
  sharedCount++;
}

/**
 * Blocks shared by the VMs whose guest memories start from one template (an image's, and the
 * clone templates made from its VMs): one EIP-indexed table for all of them instead of one
 * per vCPU. A per-vCPU table of 4,096 slots is cold by the time its VM runs again when
 * thousands of VMs take turns: at 1,000 resident VMs its cache misses were the largest cost
 * of a request. A VM uses this table only for code on pages whose bytes it has checked
 * against `pages` (`BlockCache.clean`), so a VM that wrote its code, or a template whose page
 * differs, gets blocks of its own instead.
 */
export class SharedCode {
  readonly fast: (Block | undefined)[] = new Array<Block | undefined>(FAST_SIZE).fill(undefined);
  readonly map = new Map<number, Block>();
  /** Per page index: the bytes its shared blocks were decoded from (a copy of the first VM's page that ran code there). */
  readonly pages = new Map<number, Uint8Array>();
  constructor(
    /** Guest memory size (bytes) of the VMs sharing it: fetch faults depend on it. */
    readonly size: number,
  ) {}

  /** Add a block decoded from bytes equal to `pages`. Past `SHARED_MAX` blocks the table starts over. */
  add(b: Block): void {
    if (this.map.size >= SHARED_MAX) {
      this.map.clear();
      this.fast.fill(undefined);
    }
    this.map.set(b.addr, b);
    this.fast[fastSlot(b.addr)] = b;
  }
}

/** Page states in `BlockCache.clean`. */
const PAGE_UNCHECKED = 0;
const PAGE_SHARED = 1;
const PAGE_OWN = 2;

/** An empty table standing for a vCPU's own EIP table before it needs one. */
const NO_FAST: (Block | undefined)[] = [];

/**
 * Decoded-block cache keyed by EIP, with self-modifying-code detection: `codePages` has one
 * byte per 4 KiB page (non-zero when the page holds decoded bytes), so a guest write costs
 * one array load in the common case; only writes to code pages consult the finer 64-byte
 * line map and drop the blocks they overlap.
 */
export class BlockCache {
  readonly codePages: Uint8Array;
  /** This vCPU's own EIP table (blocks not taken from `shared`); allocated when first needed. */
  private fast: (Block | undefined)[] = NO_FAST;
  /**
   * With `shared`: per page, PAGE_SHARED when this VM's page equals the bytes the shared blocks
   * were decoded from (it uses them, and a write to the page resets the state), PAGE_OWN when
   * it differs (own blocks), PAGE_UNCHECKED until code first runs there.
   */
  private readonly clean: Uint8Array;
  private readonly map = new Map<number, Block>();
  private readonly pageBlocks = new Map<number, Block[]>();
  private readonly pageLines = new Map<number, Uint8Array>();
  /** Blocks decoded since creation (for tests and statistics). */
  decoded = 0;
  /** Blocks taken from the process-wide shared store instead of decoded (see `SHARED`). */
  reused = 0;
  /** Blocks dropped because the guest wrote to their bytes. */
  invalidated = 0;
  /** Pages compared with the shared code's bytes (`checkPage`; for tests and statistics). */
  pagesCompared = 0;

  /**
   * @param shared blocks shared with the other VMs of this memory's template (see `SharedCode`);
   *   without it every block is this vCPU's own. @throws RangeError when its size differs.
   */
  constructor(
    private mem: GuestMemory,
    private shared: SharedCode | null = null,
  ) {
    if (shared && shared.size !== mem.size) throw new RangeError(`shared code of a ${shared.size}-byte memory cannot serve a ${mem.size}-byte one`);
    this.codePages = new Uint8Array(Math.ceil(mem.size / 0x1000));
    this.clean = new Uint8Array(shared ? this.codePages.length : 0);
  }

  /**
   * Serve another guest memory of the same size from now on (a swap-in reusing a swapped-out
   * VM's vCPU), with `shared` as its template's shared blocks: this vCPU's own blocks are
   * dropped and every page is checked again before shared blocks run from it, except the
   * pages in `sharedPages`: the caller knows they hold the shared bytes (`SharedCode.pages`)
   * now. The tables stay allocated, so a swap-in makes no garbage here.
   * @throws RangeError when a size differs.
   */
  rebind(mem: GuestMemory, shared: SharedCode | null, sharedPages?: Iterable<number>): void {
    if (mem.size !== this.mem.size) throw new RangeError(`block cache of a ${this.mem.size}-byte memory cannot serve a ${mem.size}-byte one`);
    if (shared && shared.size !== mem.size) throw new RangeError(`shared code of a ${shared.size}-byte memory cannot serve a ${mem.size}-byte one`);
    if ((shared === null) !== (this.shared === null)) throw new RangeError('a block cache cannot switch between shared and own code');
    this.mem = mem;
    this.shared = shared;
    this.clear();
    if (shared === null || sharedPages === undefined) return;
    for (const p of sharedPages) {
      if (p >= this.clean.length || !shared.pages.has(p)) continue;
      // As checkPage leaves a page found equal: a write to it resets the state.
      this.clean[p] = PAGE_SHARED;
      this.codePages[p] = 1;
    }
  }

  /** True when this cache uses a template's shared blocks. */
  get sharesCode(): boolean {
    return this.shared !== null;
  }

  /** The block starting at `eip`, decoding it on a miss. */
  lookup(eip: number): Block {
    const slot = fastSlot(eip);
    const sh = this.shared;
    if (sh !== null && this.clean[eip >>> 12] === PAGE_SHARED) {
      const b = sh.fast[slot];
      if (b !== undefined && b.addr === eip && this.clean[(b.end - 1) >>> 12] === PAGE_SHARED) return b;
    }
    const b = this.fast[slot];
    if (b !== undefined && b.addr === eip) return b;
    return this.lookupSlow(eip, slot);
  }

  private lookupSlow(eip: number, slot: number): Block {
    if (this.shared !== null) {
      const b = this.sharedLookup(this.shared, eip);
      if (b !== undefined) return b;
    }
    let m = this.map.get(eip);
    if (m === undefined) m = this.sharedBlock(eip) ?? this.decodeBlock(eip);
    if (this.fast === NO_FAST) this.fast = new Array<Block | undefined>(FAST_SIZE).fill(undefined);
    this.fast[slot] = m;
    return m;
  }

  /**
   * The block at `eip` from the template's shared table when every page it covers holds the
   * shared bytes in this VM (checked on first use: see `checkPage`), decoding it into the
   * table on a miss; undefined when this VM must use a block of its own.
   */
  private sharedLookup(sh: SharedCode, eip: number): Block | undefined {
    if (eip < 0 || eip >= this.mem.size || !this.checkPage(sh, eip >>> 12)) return undefined;
    let b = sh.map.get(eip);
    if (b === undefined) {
      if (this.map.has(eip)) return undefined; // decoded as our own already
      const d = this.decode(eip);
      // Shared only when its bytes lie in memory on pages holding the shared bytes.
      if (d.bytes === null || d.end > this.mem.size || !this.checkPage(sh, (d.end - 1) >>> 12)) {
        this.adopt(d);
        return undefined;
      }
      sh.add(d);
      this.decoded++;
      if (d.bytes !== null) share(d);
      b = d;
    } else if (!this.checkPage(sh, (b.end - 1) >>> 12)) return undefined;
    return b;
  }

  /**
   * Is page `p` of this VM's memory equal to the shared bytes of that page? Compared once
   * (4 KiB) until the VM writes the page; the first VM to run code on a page provides its bytes.
   */
  private checkPage(sh: SharedCode, p: number): boolean {
    const state = this.clean[p];
    if (state === PAGE_SHARED) return true;
    if (state === PAGE_OWN || p >= this.clean.length) return false;
    const mine = this.mem.u8.subarray(p << 12, Math.min((p + 1) << 12, this.mem.size));
    const theirs = sh.pages.get(p);
    let same = true;
    this.pagesCompared++;
    if (theirs === undefined) sh.pages.set(p, mine.slice());
    // memcmp: every swap-in checks each code page the VM runs again (rebind), so a byte loop
    // here cost ~3 µs per page, ~10 % of the CPU per request at 10,000 swapping VMs.
    else same = Buffer.compare(mine, theirs) === 0;
    this.clean[p] = same ? PAGE_SHARED : PAGE_OWN;
    if (same) this.codePages[p] = 1; // a write to the page must reset its state
    return same;
  }

  /** A block another vCPU decoded from the same bytes at `eip` in a memory of the same size. */
  private sharedBlock(eip: number): Block | undefined {
    const list = SHARED.get(eip);
    if (list === undefined) return undefined;
    const u8 = this.mem.u8;
    const size = this.mem.size;
    outer: for (const b of list) {
      const bytes = b.bytes!;
      if (b.memSize !== size || b.end > size) continue;
      for (let k = 0, a = b.addr; k < bytes.length; k++, a++) if (u8[a] !== bytes[k]) continue outer;
      this.reused++;
      this.map.set(eip, b);
      this.register(b);
      return b;
    }
    return undefined;
  }

  private decodeBlock(eip: number): Block {
    const b = this.decode(eip);
    this.adopt(b);
    if (b.bytes !== null) share(b);
    return b;
  }

  /** Make a decoded block one of this vCPU's own. */
  private adopt(b: Block): void {
    this.decoded++;
    this.map.set(b.addr, b);
    this.register(b);
  }

  /** Decode the block at `eip` from this VM's memory. */
  private decode(eip: number): Block {
    const instrs: Instr[] = [];
    let pc = eip;
    for (;;) {
      const i = decodeInstr(this.mem, pc);
      // A fetch fault after the first instruction ends the block before it, so the
      // instructions ahead of it run (and the fault is raised when EIP gets there).
      if (i.faultCause === 'memory' && i.spec === null && instrs.length > 0) break;
      i.idx = instrs.length;
      instrs.push(i);
      pc = i.next;
      // String instructions (rep or not) go on in the block too: a rep that pauses sets EIP
      // back to itself and stops the block (STOP_YIELD), and memcpy's `rep movsd; rep movsb`
      // and what follows become one block.
      if (i.term && i.exec === stringOp) i.term = false;
      if (instrs.length >= MAX_BLOCK_INSTRS) break;
      if (i.term) {
        // A conditional branch does not end the block: decoding goes on along its fall-through
        // (a superblock), and the branch becomes a side exit. Blocks stay one contiguous byte
        // range, so the self-modifying-code maps and the compiled-code key are unchanged. A
        // branch back into the block (a loop back edge) goes on too: the compiler makes the
        // loops of a nest JavaScript loops inside one function, and the code after the nest
        // follows in the same block.
        if (i.exec !== jcc) break;
        i.exec = jccSide;
      }
    }
    const last = instrs[instrs.length - 1];
    const end = last.spec === null && last.faultCause === 'memory' ? last.addr : pc;
    const size = this.mem.size;
    // Blocks whose bytes lie in memory can be shared; fetch-fault records cover no bytes.
    const shareable = end > eip && eip >= 0 && end <= size;
    const bytes = shareable ? this.mem.u8.slice(eip, end) : null;
    return new Block(eip, Math.max(end, eip + 1), instrs, pc, size, bytes);
  }

  private register(b: Block): void {
    if (b.addr < 0 || b.addr >= this.mem.size) return; // fetch-fault blocks cover no memory
    const last = Math.min(b.end, this.mem.size) - 1;
    for (let p = b.addr >>> 12; p <= last >>> 12; p++) {
      this.codePages[p] = 1;
      let list = this.pageBlocks.get(p);
      if (list === undefined) this.pageBlocks.set(p, (list = []));
      list.push(b);
      let lines = this.pageLines.get(p);
      if (lines === undefined) this.pageLines.set(p, (lines = new Uint8Array(LINES_PER_PAGE)));
      const lo = Math.max(b.addr, p << 12);
      const hi = Math.min(last, (p << 12) + 0xfff);
      for (let l = (lo & 0xfff) >> LINE_SHIFT; l <= (hi & 0xfff) >> LINE_SHIFT; l++) lines[l] = 1;
    }
  }

  /**
   * The guest wrote `[addr, addr+len)` and at least one touched page holds code. Drops the
   * blocks whose bytes overlap the write. @returns true when some block was dropped.
   */
  write(addr: number, len: number): boolean {
    const lastByte = addr + len - 1;
    let dropped = false;
    for (let p = addr >>> 12; p <= lastByte >>> 12; p++) {
      if (this.codePages[p] === 0) continue;
      if (this.clean.length > 0 && this.clean[p] === PAGE_SHARED) {
        // The page may no longer hold the shared bytes: check it again when code next runs
        // there, and leave the running block (it may come from this page).
        this.clean[p] = PAGE_UNCHECKED;
        if (!this.pageBlocks.has(p)) this.codePages[p] = 0;
        dropped = true;
      }
      const lines = this.pageLines.get(p);
      if (lines === undefined) continue;
      const lo = Math.max(addr, p << 12) & 0xfff;
      const hi = Math.min(lastByte, (p << 12) + 0xfff) & 0xfff;
      let hit = false;
      for (let l = lo >> LINE_SHIFT; l <= hi >> LINE_SHIFT; l++) if (lines[l]) hit = true;
      if (!hit) continue;
      const list = this.pageBlocks.get(p) ?? [];
      for (const b of list.slice()) {
        if (b.addr <= lastByte && addr < b.end) {
          this.drop(b);
          dropped = true;
        }
      }
    }
    return dropped;
  }

  /** Remove one block from every index and rebuild the code maps of its pages. */
  private drop(b: Block): void {
    this.invalidated++;
    if (this.map.get(b.addr) === b) this.map.delete(b.addr);
    const slot = fastSlot(b.addr);
    if (this.fast[slot] === b) this.fast[slot] = undefined;
    const last = Math.min(b.end, this.mem.size) - 1;
    for (let p = b.addr >>> 12; p <= last >>> 12; p++) {
      const list = (this.pageBlocks.get(p) ?? []).filter((x) => x !== b);
      const lines = this.pageLines.get(p);
      if (lines) lines.fill(0);
      if (list.length === 0) {
        this.pageBlocks.delete(p);
        this.pageLines.delete(p);
        if (this.clean.length === 0 || this.clean[p] !== PAGE_SHARED) this.codePages[p] = 0;
        continue;
      }
      this.pageBlocks.set(p, list);
      for (const o of list) {
        const olast = Math.min(o.end, this.mem.size) - 1;
        const lo = Math.max(o.addr, p << 12);
        const hi = Math.min(olast, (p << 12) + 0xfff);
        for (let l = (lo & 0xfff) >> LINE_SHIFT; l <= (hi & 0xfff) >> LINE_SHIFT; l++) lines![l] = 1;
      }
    }
  }

  /** Every cached block (for tools, statistics and test coverage). */
  blocks(): IterableIterator<Block> {
    return this.map.values();
  }

  /** Forget every decoded block (e.g. after the VMM rewrote guest memory behind the CPU's back). */
  clear(): void {
    this.map.clear();
    this.fast.fill(undefined);
    this.pageBlocks.clear();
    this.pageLines.clear();
    this.codePages.fill(0);
    this.clean.fill(PAGE_UNCHECKED);
  }
}
