/**
 * The slice of the Linux KVM userspace API (Documentation/virt/kvm/api.rst, <linux/kvm.h>)
 * that Yakima's native backend uses: ioctl request numbers and struct layouts, x86-64 host.
 *
 * Everything here is plain numbers so that it can be shared with the vCPU worker threads and
 * checked by a test against the documented ABI (`test/kvm/kvm-api.test.ts`, which also
 * compiles a C program against <linux/kvm.h> when a compiler and the headers exist).
 */

/** The only stable KVM API version (KVM_GET_API_VERSION must return it). */
export const KVM_API_VERSION = 12;

// --- ioctl request encoding (include/uapi/asm-generic/ioctl.h, x86) -------------------------

const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
/** The KVM ioctl "type" byte (KVMIO). */
const KVMIO = 0xae;

/** `_IOC(dir, type, nr, size)`: dir in bits 30-31, size in 16-29, type in 8-15, nr in 0-7. */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  // Computed with multiplication so that bit 31 does not turn the result negative.
  return dir * 0x40000000 + ((size & 0x3fff) << 16) + ((type & 0xff) << 8) + (nr & 0xff);
}
const io = (nr: number): number => ioc(IOC_NONE, KVMIO, nr, 0);
const iow = (nr: number, size: number): number => ioc(IOC_WRITE, KVMIO, nr, size);
const ior = (nr: number, size: number): number => ioc(IOC_READ, KVMIO, nr, size);
const iowr = (nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, KVMIO, nr, size);

// --- struct sizes ---------------------------------------------------------------------------

/** `struct kvm_regs`: 18 u64 (rax rbx rcx rdx rsi rdi rsp rbp r8..r15 rip rflags). */
export const KVM_REGS_SIZE = 144;
/** `struct kvm_segment`. */
export const KVM_SEGMENT_SIZE = 24;
/** `struct kvm_dtable`. */
export const KVM_DTABLE_SIZE = 16;
/** `struct kvm_sregs`. */
export const KVM_SREGS_SIZE = 312;
/** `struct kvm_fpu`. */
export const KVM_FPU_SIZE = 416;
/** `struct kvm_userspace_memory_region`. */
export const KVM_USERSPACE_MEMORY_REGION_SIZE = 32;
/** `struct kvm_cpuid2` header (nent, padding); entries follow. */
export const KVM_CPUID2_SIZE = 8;
/** `struct kvm_cpuid_entry2`. */
export const KVM_CPUID_ENTRY2_SIZE = 40;
/** `struct kvm_signal_mask` header (len); the kernel sigset (8 bytes on x86-64) follows. */
export const KVM_SIGNAL_MASK_SIZE = 4;
/** Size of the kernel's sigset_t on x86-64 (64 signals), the `len` of KVM_SET_SIGNAL_MASK. */
export const KERNEL_SIGSET_SIZE = 8;
/** `sizeof(struct kvm_run)` in current headers (the mmap'd area is KVM_GET_VCPU_MMAP_SIZE, larger). */
export const KVM_RUN_SIZE = 2352;

// --- ioctl numbers ----------------------------------------------------------------------------

export const KVM = {
  // system ioctls (on the /dev/kvm fd)
  GET_API_VERSION: io(0x00),
  CREATE_VM: io(0x01),
  CHECK_EXTENSION: io(0x03),
  GET_VCPU_MMAP_SIZE: io(0x04),
  GET_SUPPORTED_CPUID: iowr(0x05, KVM_CPUID2_SIZE),
  // VM ioctls
  CREATE_VCPU: io(0x41),
  SET_USER_MEMORY_REGION: iow(0x46, KVM_USERSPACE_MEMORY_REGION_SIZE),
  SET_TSS_ADDR: io(0x47),
  SET_IDENTITY_MAP_ADDR: iow(0x48, 8),
  // vCPU ioctls
  RUN: io(0x80),
  GET_REGS: ior(0x81, KVM_REGS_SIZE),
  SET_REGS: iow(0x82, KVM_REGS_SIZE),
  GET_SREGS: ior(0x83, KVM_SREGS_SIZE),
  SET_SREGS: iow(0x84, KVM_SREGS_SIZE),
  SET_SIGNAL_MASK: iow(0x8b, KVM_SIGNAL_MASK_SIZE),
  GET_FPU: ior(0x8c, KVM_FPU_SIZE),
  SET_FPU: iow(0x8d, KVM_FPU_SIZE),
  SET_CPUID2: iow(0x90, KVM_CPUID2_SIZE),
} as const;

/** KVM_CHECK_EXTENSION capability numbers used here. */
export const KVM_CAP = {
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_MEMSLOTS: 10,
  SYNC_REGS: 74,
  READONLY_MEM: 81,
  IMMEDIATE_EXIT: 136,
} as const;

/** `kvm_userspace_memory_region.flags`. */
export const KVM_MEM_READONLY = 1 << 1;

/** `kvm_run.exit_reason` values. */
export const KVM_EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
} as const;

/** `kvm_run.io.direction`. */
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

/** `kvm_run.kvm_valid_regs` / `kvm_dirty_regs` bits (KVM_CAP_SYNC_REGS). */
export const KVM_SYNC_X86_REGS = 1 << 0;
export const KVM_SYNC_X86_SREGS = 1 << 1;
export const KVM_SYNC_X86_EVENTS = 1 << 2;

// --- struct layouts (byte offsets) ------------------------------------------------------------

/** `struct kvm_regs` field offsets (all u64). */
export const KVM_REGS = {
  RAX: 0,
  RBX: 8,
  RCX: 16,
  RDX: 24,
  RSI: 32,
  RDI: 40,
  RSP: 48,
  RBP: 56,
  R8: 64,
  RIP: 128,
  RFLAGS: 136,
} as const;

/** `struct kvm_segment` field offsets. */
export const KVM_SEGMENT = {
  BASE: 0, // u64
  LIMIT: 8, // u32
  SELECTOR: 12, // u16
  TYPE: 14, // u8
  PRESENT: 15,
  DPL: 16,
  DB: 17,
  S: 18,
  L: 19,
  G: 20,
  AVL: 21,
  UNUSABLE: 22,
} as const;

/** `struct kvm_dtable` field offsets. */
export const KVM_DTABLE = { BASE: 0, LIMIT: 8 } as const;

/** `struct kvm_sregs` field offsets. */
export const KVM_SREGS = {
  CS: 0,
  DS: 24,
  ES: 48,
  FS: 72,
  GS: 96,
  SS: 120,
  TR: 144,
  LDT: 168,
  GDT: 192,
  IDT: 208,
  CR0: 224,
  CR2: 232,
  CR3: 240,
  CR4: 248,
  CR8: 256,
  EFER: 264,
  APIC_BASE: 272,
  INTERRUPT_BITMAP: 280,
} as const;

/** `struct kvm_run` field offsets (header, the exit-reason union at 32, sync regs at 304). */
export const KVM_RUN = {
  REQUEST_INTERRUPT_WINDOW: 0, // u8
  IMMEDIATE_EXIT: 1, // u8
  EXIT_REASON: 8, // u32
  READY_FOR_INTERRUPT_INJECTION: 12,
  IF_FLAG: 13,
  FLAGS: 14, // u16
  CR8: 16,
  APIC_BASE: 24,
  /** Start of the union of exit-specific data. */
  EXIT_UNION: 32,
  IO_DIRECTION: 32, // u8
  IO_SIZE: 33, // u8
  IO_PORT: 34, // u16
  IO_COUNT: 36, // u32
  IO_DATA_OFFSET: 40, // u64, offset of the data from the start of the mapping
  MMIO_PHYS_ADDR: 32, // u64
  MMIO_DATA: 40, // u8[8]
  MMIO_LEN: 48, // u32
  MMIO_IS_WRITE: 52, // u8
  FAIL_ENTRY_REASON: 32, // u64 hardware_entry_failure_reason
  FAIL_ENTRY_CPU: 40, // u32
  INTERNAL_SUBERROR: 32, // u32
  INTERNAL_NDATA: 36, // u32
  INTERNAL_DATA: 40, // u64[16]
  KVM_VALID_REGS: 288, // u64
  KVM_DIRTY_REGS: 296, // u64
  /** `union { struct kvm_sync_regs regs; char padding[2048]; } s`: regs first, then sregs. */
  SYNC_REGS: 304,
  SYNC_SREGS: 304 + KVM_REGS_SIZE,
} as const;

/** `struct kvm_userspace_memory_region` field offsets. */
export const KVM_MEMORY_REGION = {
  SLOT: 0, // u32
  FLAGS: 4, // u32
  GUEST_PHYS_ADDR: 8, // u64
  MEMORY_SIZE: 16, // u64
  USERSPACE_ADDR: 24, // u64
} as const;

/** `struct kvm_cpuid_entry2` field offsets (all u32). */
export const KVM_CPUID_ENTRY2 = {
  FUNCTION: 0,
  INDEX: 4,
  FLAGS: 8,
  EAX: 12,
  EBX: 16,
  ECX: 20,
  EDX: 24,
} as const;

/** `kvm_run.internal.suberror` values, for fault details. */
export const KVM_INTERNAL_ERROR = {
  EMULATION: 1,
  SIMUL_EX: 2,
  DELIVERY_EV: 3,
  UNEXPECTED_EXIT_REASON: 4,
} as const;

/** Human names of exit reasons, for 'unknown-exit' fault details. */
export function exitReasonName(reason: number): string {
  for (const [name, value] of Object.entries(KVM_EXIT)) if (value === reason) return `KVM_EXIT_${name}`;
  return `exit reason ${reason}`;
}
