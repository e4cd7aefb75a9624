import { LAYOUT } from '@denali/image-format';

/**
 * Thrown by the checked accessors when a guest-supplied address range is not accessible.
 * Yakima turns it into a fault of that VM, never of the VMM.
 */
export class GuestMemoryError extends Error {
  constructor(
    /** First guest address of the bad range. */
    readonly address: number,
    /** Length of the range in bytes. */
    readonly length: number,
    readonly access: 'read' | 'write',
    /** The VM's memory size in bytes, to say which rule the range broke; unknown: "outside". */
    memorySize = 0,
  ) {
    super(`guest ${access} of ${length} bytes at 0x${(address >>> 0).toString(16)} ${whyBad(address, length, access, memorySize)}`);
    this.name = 'GuestMemoryError';
  }
}

/** Which access rule `[addr, addr+len)` breaks, as a phrase (see `GuestMemory`). */
function whyBad(addr: number, len: number, access: 'read' | 'write', size: number): string {
  const hex = (n: number): string => `0x${n.toString(16)}`;
  if (!Number.isInteger(addr) || !Number.isInteger(len) || len < 0 || addr < 0 || addr + len > size) return "is outside the VM's memory";
  if (addr < LAYOUT.NULL_PAGE_END) return `touches page 0 [0x0, ${hex(LAYOUT.NULL_PAGE_END)}), which the guest may not access`;
  if (access === 'write' && addr < LAYOUT.VREG_RW_BASE) {
    return `is into the read-only virtual-register page [${hex(LAYOUT.NULL_PAGE_END)}, ${hex(LAYOUT.VREG_RW_BASE)})`;
  }
  return "is outside the VM's memory";
}

/**
 * One VM's guest-physical memory: a single flat ArrayBuffer of `size` bytes (paper 3.1.2: no
 * virtual MMU). Access rules, the same on every backend:
 * - `[0, 0x1000)` (page 0): no access at all;
 * - `[0x1000, 0x2000)` (read-only virtual registers and boot arguments): read only;
 * - `[0x2000, size)`: read and write.
 * The emulator inlines these checks on its hot path; the checked methods here are for the
 * VMM side (hypercall arguments, devices), where every pointer the guest passes is untrusted.
 */
export class GuestMemory {
  readonly buffer: ArrayBuffer;
  readonly u8: Uint8Array;
  readonly dv: DataView;

  /**
   * @param size memory size in bytes: a page multiple within [LAYOUT.MIN_MEMORY, LAYOUT.MAX_MEMORY].
   * @param buffer backing store to use instead of a fresh zeroed ArrayBuffer (e.g. an mmap'd,
   *   page-aligned region that KVM maps into the guest); must be exactly `size` bytes and zeroed.
   * @throws RangeError for any other size, or a buffer of the wrong length.
   */
  constructor(
    readonly size: number,
    buffer?: ArrayBuffer,
  ) {
    if (!Number.isInteger(size) || size % 0x1000 !== 0 || size < LAYOUT.MIN_MEMORY || size > LAYOUT.MAX_MEMORY) {
      throw new RangeError(`memory size ${size} must be a multiple of 4096 between ${LAYOUT.MIN_MEMORY} and ${LAYOUT.MAX_MEMORY} bytes`);
    }
    if (buffer && buffer.byteLength !== size) throw new RangeError(`backing buffer is ${buffer.byteLength} bytes, expected ${size}`);
    this.buffer = buffer ?? new ArrayBuffer(size);
    this.u8 = new Uint8Array(this.buffer);
    this.dv = new DataView(this.buffer);
  }

  /** True when the guest may read `[addr, addr+len)`. */
  canRead(addr: number, len: number): boolean {
    return Number.isInteger(addr) && Number.isInteger(len) && len >= 0 && addr >= LAYOUT.NULL_PAGE_END && addr + len <= this.size;
  }

  /** True when the guest may write `[addr, addr+len)`. */
  canWrite(addr: number, len: number): boolean {
    return Number.isInteger(addr) && Number.isInteger(len) && len >= 0 && addr >= LAYOUT.VREG_RW_BASE && addr + len <= this.size;
  }

  /** Little-endian u32 at a guest-readable address. @throws GuestMemoryError */
  readU32(addr: number): number {
    if (!this.canRead(addr, 4)) throw new GuestMemoryError(addr, 4, 'read', this.size);
    return this.dv.getUint32(addr, true);
  }

  /** Store a little-endian u32 at a guest-writable address. @throws GuestMemoryError */
  writeU32(addr: number, value: number): void {
    if (!this.canWrite(addr, 4)) throw new GuestMemoryError(addr, 4, 'write', this.size);
    this.dv.setUint32(addr, value >>> 0, true);
  }

  /** A view (not a copy) of a guest-readable range. @throws GuestMemoryError */
  view(addr: number, len: number): Uint8Array {
    if (!this.canRead(addr, len)) throw new GuestMemoryError(addr, len, 'read', this.size);
    return this.u8.subarray(addr, addr + len);
  }

  /** A view (not a copy) of a guest-writable range, for the VMM to fill. @throws GuestMemoryError */
  writableView(addr: number, len: number): Uint8Array {
    if (!this.canWrite(addr, len)) throw new GuestMemoryError(addr, len, 'write', this.size);
    return this.u8.subarray(addr, addr + len);
  }
}
