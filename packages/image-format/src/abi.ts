/**
 * The Denali guest ABI: the one source of truth for every number that the guest (Ilwaco,
 * `packages/ilwaco-sdk`) and the VMM (Yakima, `packages/yakima`) must agree on.
 *
 * Neither side reaches into the other: Yakima imports this module, and the SDK's C header
 * `include/denali/abi.h` is generated from it (`pnpm gen:abi`); a test fails if the header on
 * disk differs from what this module generates.
 *
 * Design sources: Denali paper (Whitaker, Shaw, Gribble 2002), section 3.1 (virtual
 * instructions, virtual registers, asynchronous batched interrupts), 3.1.2 (no virtual MMU,
 * no BIOS), 3.2 (idle instruction, idle table, `hlt` terminates a VM). The hypercall transport
 * (`out dx, eax` with the argument block's address in eax) follows Solo5 hvt.
 * The full prose description lives in `docs/architecture.md`.
 */

/** Version of this ABI; stored in the read-only virtual registers and in every manifest. */
export const ABI_VERSION = 1;

/** Architecture id written in `manifest.json` and checked by `readImage`. */
export const ARCH_ID = 'denali-x86-32';

/** Size of a page of guest-physical memory, in bytes. */
export const PAGE_SIZE = 0x1000;

/**
 * The guest-physical memory map (paper 3.1.2: one flat address space, no virtual MMU).
 * All addresses are guest-physical byte addresses.
 */
export const LAYOUT = {
  /** Page 0 is never mapped: any access faults the VM (catches null dereferences). */
  NULL_PAGE_END: 0x1000,
  /** Read-only virtual register page (filled by Yakima at boot, never changes). */
  VREG_RO_BASE: 0x1000,
  /** Boot arguments area inside the read-only page: NUL-terminated strings back to back. */
  BOOTARGS_BASE: 0x1100,
  /** Bytes available for boot arguments (to the end of the read-only page). */
  BOOTARGS_MAX: 0x1000 - 0x100,
  /** Read-write virtual register page (clock, pending interrupts, interrupt-enable flag). */
  VREG_RW_BASE: 0x2000,
  /** First byte of ordinary guest RAM; everything from here to the top of memory is RAM. */
  RAM_BASE: 0x3000,
  /** Lowest address an image segment may be loaded at (1 MiB). */
  IMAGE_BASE: 0x100000,
  /** Smallest memory size a VM may have, in bytes (2 MiB). */
  MIN_MEMORY: 2 * 1024 * 1024,
  /** Largest memory size a VM may have, in bytes (1 GiB). */
  MAX_MEMORY: 1024 * 1024 * 1024,
  /** Default stack size when a manifest does not name one, in bytes (256 KiB). */
  DEFAULT_STACK_SIZE: 256 * 1024,
} as const;

/** Magic value at offset 0 of the read-only virtual register page: ASCII "DNLI", little-endian. */
export const VREG_MAGIC = 0x494c4e44;

/** Clock ticks per second. One tick is one microsecond. */
export const TICK_RATE = 1_000_000;

/**
 * Byte offsets inside the read-only virtual register page (at `LAYOUT.VREG_RO_BASE`).
 * Every field is a little-endian u32 unless its name says otherwise.
 */
export const VREG_RO = {
  MAGIC: 0x00,
  ABI_VERSION: 0x04,
  /** Guest memory size in bytes (malloc sizes its heap from this: paper 3.3). */
  MEMORY_SIZE: 0x08,
  /** Clock ticks per second (`TICK_RATE`). */
  TICK_RATE: 0x0c,
  /** VM id, unique within one Yakima instance. */
  VM_ID: 0x10,
  /** 6-byte MAC address of the VM's virtual NIC, then 2 bytes of padding. */
  MAC: 0x14,
  /** IPv4 address, netmask, gateway, in network byte order (0 when there is no network). */
  IPV4_ADDR: 0x1c,
  IPV4_NETMASK: 0x20,
  IPV4_GATEWAY: 0x24,
  /** First byte after the loaded image including BSS, page-aligned: the heap starts here. */
  IMAGE_END: 0x28,
  /** Initial stack pointer (top of memory) and the stack's size in bytes. */
  STACK_TOP: 0x2c,
  STACK_SIZE: 0x30,
  /** Number of boot argument strings (argc). */
  ARGC: 0x34,
  /** Guest address and total length in bytes of the boot argument strings. */
  BOOTARGS_ADDR: 0x38,
  BOOTARGS_LEN: 0x3c,
  /** Largest IP packet the NIC carries (Ethernet payload, bytes): 1500. 0 when the VM has no NIC. */
  MTU: 0x40,
  /**
   * NIC features Yakima offers (`NET_FEATURE` bits; 0 when the VM has no NIC or on a Yakima
   * older than the feature). A guest uses a `FRAME_FLAG` only when its feature bit is set here.
   */
  NET_FEATURES: 0x44,
} as const;

/**
 * Bits of `VREG_RO.NET_FEATURES` (the feature negotiation of virtio-net, reduced to what the
 * host offers: a guest that does not read the register sees the NIC of ABI version 1).
 */
export const NET_FEATURE = {
  /**
   * Checksum offload: NET_SEND honours `FRAME_FLAG.TX_CSUM` and NET_RECV reports
   * `FRAME_FLAG.RX_CSUM_VALID` to descriptors marked `FRAME_FLAG.RX_FLAGS`.
   */
  CSUM: 1 << 0,
} as const;

/**
 * Byte offsets inside the read-write virtual register page (at `LAYOUT.VREG_RW_BASE`).
 * Yakima writes PENDING, CLOCK and WALLCLOCK on every VM entry; the guest owns the rest.
 */
export const VREG_RW = {
  /** Interrupt-enable flag: non-zero lets Yakima deliver an upcall (replaces cli/sti, paper 3.1.2 n.2). */
  INTERRUPT_ENABLE: 0x00,
  /** Pending virtual interrupt bitmap (`IRQ`); Yakima ORs bits in, the guest clears them with xchg. */
  PENDING: 0x04,
  /** Guest address of the upcall entry point, 0 for none. */
  UPCALL_ENTRY: 0x08,
  /** u64: ticks since the VM booted (paper 3.1.1: elapsed time in a virtual register). */
  CLOCK: 0x10,
  /** u64: microseconds since the Unix epoch. */
  WALLCLOCK: 0x18,
} as const;

/**
 * Virtual interrupt lines, as bits of the pending bitmap (paper 3.1.1: batched, asynchronous;
 * "something happened in the recent past").
 */
export const IRQ = {
  /** Time has passed: the VM was descheduled, or its idle timeout expired. Read CLOCK for how much. */
  TIMER: 1 << 0,
  /** Console input is waiting (or the console reached end of input). */
  CONSOLE: 1 << 1,
  /** Frames are waiting in the NIC's Rx FIFO (networking issue). */
  NET_RX: 1 << 2,
} as const;

/** Hypercalls are `out dx, eax` with `dx = HYPERCALL_PORT_BASE + number`. */
export const HYPERCALL_PORT_BASE = 0x500;
/** Number of ports reserved for hypercalls, starting at `HYPERCALL_PORT_BASE`. */
export const HYPERCALL_PORT_COUNT = 0x100;

/** Hypercall numbers (virtual instructions, paper 3.1). */
export const HYPERCALL = {
  /** Terminate the VM with a status. Args: `EXIT_ARGS`. */
  EXIT: 0,
  /** Yield the CPU until an interrupt or a timeout (paper 3.1.1). Args: `IDLE_ARGS`. */
  IDLE: 1,
  /** Write bytes to the console. Args: `CONSOLE_ARGS`. */
  CONSOLE_WRITE: 2,
  /** Read waiting console bytes without blocking. Args: `CONSOLE_ARGS`. */
  CONSOLE_READ: 3,
  /** Transmit any number of Ethernet frames with one virtual instruction (paper 3.1.2). Args: `NET_ARGS`. */
  NET_SEND: 4,
  /** Copy waiting frames from the NIC's Rx FIFO into guest buffers, never blocking. Args: `NET_ARGS`. */
  NET_RECV: 5,
} as const;

/** Argument block of `HYPERCALL.EXIT` (offsets in bytes, u32 fields). */
export const EXIT_ARGS = { STATUS: 0x0, SIZE: 4 } as const;

/**
 * Argument block of `HYPERCALL.IDLE`: a u64 timeout in ticks, relative to now.
 * `IDLE_FOREVER` waits for an interrupt only. Returns at once if an interrupt is pending.
 */
export const IDLE_ARGS = { TIMEOUT_LO: 0x0, TIMEOUT_HI: 0x4, SIZE: 8 } as const;

/** The timeout value (both halves all ones) that means "no timeout". */
export const IDLE_FOREVER = 0xffffffff;

/**
 * Argument block of `HYPERCALL.CONSOLE_WRITE` and `HYPERCALL.CONSOLE_READ`.
 * BUF/LEN are in; DONE (bytes written or read) and EOF (read only: 1 when input has ended)
 * are written by Yakima.
 */
export const CONSOLE_ARGS = { BUF: 0x0, LEN: 0x4, DONE: 0x8, EOF: 0xc, SIZE: 16 } as const;

/**
 * Argument block of `HYPERCALL.NET_SEND` and `HYPERCALL.NET_RECV`: DESCS is the guest address
 * of COUNT frame descriptors (`FRAME_DESC`); Yakima writes DONE, the number of descriptors it
 * consumed (frames accepted into the Tx FIFO, or frames received). COUNT is at most
 * `NET_MAX_BATCH`.
 */
export const NET_ARGS = { DESCS: 0x0, COUNT: 0x4, DONE: 0x8, SIZE: 12 } as const;

/**
 * A frame descriptor: ADDR is the guest address of the frame bytes (destination MAC first, no
 * FCS); LEN is a u16 byte count and FLAGS a u16 of `FRAME_FLAG` bits. For NET_SEND, LEN is the
 * frame length; frames shorter than `ETH_FRAME_MIN` or longer than `ETH_FRAME_MAX` are dropped
 * and counted, as are frames with a FLAGS bit that is not a Tx flag. For NET_RECV, LEN is the
 * buffer's capacity on the way in and the bytes stored on the way out; a longer frame is
 * truncated to the capacity.
 *
 * Compatibility: ABI version 1 had LEN as one u32 at 0x4. A guest that leaves FLAGS 0 gets
 * exactly that behaviour. On NET_RECV, a descriptor without `FRAME_FLAG.RX_FLAGS` is read and
 * written as the old u32 LEN (Yakima never writes FLAGS to a guest that did not ask for them).
 */
export const FRAME_DESC = { ADDR: 0x0, LEN: 0x4, FLAGS: 0x6, SIZE: 8 } as const;

/**
 * Bits of `FRAME_DESC.FLAGS` (checksum offload as real NICs do it; compare virtio-net's
 * NEEDS_CSUM and DATA_VALID). Usable only when `VREG_RO.NET_FEATURES` has `NET_FEATURE.CSUM`.
 */
export const FRAME_FLAG = {
  /**
   * NET_SEND: Yakima fills in the checksums of this frame before it reaches the switch: for an
   * IPv4 packet (IHL and total length within the frame) the header checksum, and for an
   * unfragmented TCP or UDP packet the TCP/UDP checksum over the pseudo-header and the
   * segment (RFC 9293 3.1, RFC 768; a UDP sum of 0 is sent as 0xffff). The guest may leave
   * those fields with any value. Other frames (ARP, ICMP's own checksum, fragments) leave as given.
   */
  TX_CSUM: 1 << 0,
  /**
   * NET_RECV, out: the IPv4 header checksum and the TCP or UDP checksum of this frame were
   * verified correct by Yakima (a UDP datagram with checksum 0 carries none: only its IPv4
   * header was verified), so the guest may skip verifying them. Unset means "not verified":
   * bad checksums, other protocols, fragments, truncated frames; the guest checks as usual.
   */
  RX_CSUM_VALID: 1 << 1,
  /**
   * NET_RECV, in: the guest reads FLAGS (and LEN as a u16) on the way out. Bit 31 of the old
   * u32 LEN, which no valid capacity could set.
   */
  RX_FLAGS: 1 << 15,
} as const;

/** Shortest Ethernet frame Yakima carries: the 14-byte header (bytes). */
export const ETH_FRAME_MIN = 14;
/** Longest Ethernet frame Yakima carries: 14-byte header + 1500-byte MTU (bytes, no FCS). */
export const ETH_FRAME_MAX = 1514;
/** Largest COUNT in one NET_SEND or NET_RECV. */
export const NET_MAX_BATCH = 256;

/**
 * Upcall frame (paper 3.1.1 interrupt delivery). When a VM is entered with interrupts
 * enabled, an upcall entry registered and some interrupt pending, Yakima clears
 * INTERRUPT_ENABLE, pushes the interrupted EIP and then EFLAGS on the guest stack
 * (so `[esp]` = EFLAGS, `[esp+4]` = EIP) and jumps to UPCALL_ENTRY. The handler must
 * preserve every register, set INTERRUPT_ENABLE again, and return with `popfl; ret`.
 */
export const UPCALL_FRAME = { EFLAGS: 0x0, EIP: 0x4, SIZE: 8 } as const;

/**
 * The Denali C ABI: the flags every guest translation unit is compiled with. i686 integer
 * instructions plus the scalar SSE2 that `-mfpmath=sse` makes gcc emit; no PIE, no libc.
 */
export const C_ABI_FLAGS = [
  '-m32',
  '-march=i686',
  '-msse2',
  '-mfpmath=sse',
  '-fno-pie',
  '-ffreestanding',
  '-fno-stack-protector',
  '-fno-builtin',
  '-fno-asynchronous-unwind-tables',
  '-fcf-protection=none',
] as const;
