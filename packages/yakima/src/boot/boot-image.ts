import {
  NET_FEATURE,
  ABI_VERSION,
  LAYOUT,
  PAGE_SIZE,
  TICK_RATE,
  VREG_MAGIC,
  VREG_RO,
  type DenaliImage,
} from '@denali/image-format';
import { GuestMemory } from './guest-memory.js';
import { Reg, type VcpuRegs } from '../cpu/vcpu.js';

/** Thrown when a VM cannot be booted with the options given (too little memory, too many args). */
export class BootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootError';
  }
}

/** Per-VM facts Yakima writes into the read-only virtual registers. */
export interface BootOptions {
  /** VM id, unique within the Yakima instance. */
  vmId: number;
  /** Boot arguments after argv[0]; argv[0] is always the image's name. Default: the manifest's `args`. */
  args?: string[];
  /** Memory size in bytes; default the manifest's `memorySize`. Page multiple, large enough for the image. */
  memorySize?: number;
  /** 6-byte MAC address of the VM's NIC; default derived from the VM id (locally administered). */
  mac?: Uint8Array;
  /** IPv4 address, netmask and gateway as 32-bit numbers in host order; default 0 (no network). */
  ipv4?: { addr: number; netmask: number; gateway: number };
  /** MTU of the VM's NIC in bytes; default 0 (no NIC). */
  mtu?: number;
  /**
   * `NET_FEATURE` bits offered to the guest in `VREG_RO.NET_FEATURES`; default every feature
   * this Yakima implements when the VM has a NIC (`mtu` > 0), else 0.
   */
  netFeatures?: number;
  /** Allocates the (zeroed) guest memory, e.g. mmap'd memory KVM can map; default a fresh `GuestMemory`. */
  allocateMemory?: (size: number) => GuestMemory;
  /**
   * `allocateMemory` returns memory that already holds the image's segments (a private mapping
   * of the image's memory template): they are not copied again, so their pages stay shared.
   */
  preloaded?: boolean;
}

/** The guest-physical memory and initial CPU state of a VM, ready for any backend to run. */
export interface BootImage {
  memory: GuestMemory;
  regs: VcpuRegs;
  /** argv as passed to the guest (argv[0] first). */
  argv: string[];
  /** End of the loaded image incl. BSS, page-aligned: where the guest heap starts. */
  imageEnd: number;
  /** Bottom of the stack region: the heap must stay below it. */
  stackBottom: number;
}

const pageUp = (n: number): number => Math.ceil(n / PAGE_SIZE) * PAGE_SIZE;

/** The default MAC of VM `vmId`: 02:de:4e:xx:xx:xx (locally administered, unicast). */
export function defaultMac(vmId: number): Uint8Array {
  return Uint8Array.of(0x02, 0xde, 0x4e, (vmId >>> 16) & 0xff, (vmId >>> 8) & 0xff, vmId & 0xff);
}

/**
 * Build a VM's boot image: no BIOS and no boot loader (paper 3.1.2) — Yakima copies each
 * segment to its load address (BSS stays zero), fills the read-only virtual register page
 * (memory size, tick rate, VM id, MAC, boot arguments), sets the stack at the top of memory
 * and points EIP at the entry point. Devices need no initialization by the guest.
 *
 * @throws BootError when the memory size is not a page multiple, too small for the
 *   segments plus the stack, or the boot arguments exceed `LAYOUT.BOOTARGS_MAX` bytes.
 */
export function createBootImage(image: DenaliImage, opts: BootOptions): BootImage {
  const plan = checkBootFit(image, opts);
  const memory = opts.allocateMemory?.(plan.memorySize) ?? new GuestMemory(plan.memorySize);
  if (!opts.preloaded) image.segments.forEach((data, i) => memory.u8.set(data, image.manifest.segments[i]!.loadAddress));
  writeBootRegisters(memory, image, opts, plan);
  const gpr = new Array<number>(8).fill(0);
  gpr[Reg.ESP] = plan.memorySize >>> 0;
  return { memory, regs: { gpr, eip: image.manifest.entryPoint, eflags: 0x2 }, argv: plan.argv, imageEnd: plan.imageEnd, stackBottom: plan.stackBottom };
}

/**
 * Write the read-only virtual register page and boot arguments of a VM into `memory` again,
 * e.g. into a clone's copy of another VM's memory (its VM id, MAC and IPv4 address differ).
 * The page is read-only to the guest, so this changes nothing else. `fit` is
 * `checkBootFit(image, opts)`, when the caller has it already (clones of one VM share it).
 * @throws BootError like `createBootImage`.
 */
export function rewriteBootRegisters(memory: GuestMemory, image: DenaliImage, opts: BootOptions, fit: BootFit = checkBootFit(image, opts)): void {
  writeBootRegisters(memory, image, opts, fit);
}

/** What `checkBootFit` found: memory size, argv and its NUL-separated encoding, end of the segments, bottom of the stack (bytes, guest addresses). */
export interface BootFit {
  memorySize: number;
  imageEnd: number;
  stackBottom: number;
  argv: string[];
  encoded: Uint8Array;
}

/**
 * Check that `image` boots with `opts.memorySize` and `opts.args` (or the manifest's),
 * without allocating anything: what `createBootImage` checks first.
 * @returns the layout the boot will use (sizes in bytes, addresses).
 * @throws BootError as `createBootImage` does.
 */
export function checkBootFit(image: DenaliImage, opts: Pick<BootOptions, 'memorySize' | 'args'>): BootFit {
  const m = image.manifest;
  const memorySize = opts.memorySize ?? m.memorySize;
  if (!Number.isInteger(memorySize) || memorySize % PAGE_SIZE !== 0 || memorySize < LAYOUT.MIN_MEMORY || memorySize > LAYOUT.MAX_MEMORY) {
    throw new BootError(
      `memory size ${memorySize} bytes must be a multiple of 4 KiB between ${LAYOUT.MIN_MEMORY >> 20} MiB and ${LAYOUT.MAX_MEMORY >> 20} MiB`,
    );
  }
  let imageEnd: number = LAYOUT.IMAGE_BASE;
  for (const seg of m.segments) imageEnd = Math.max(imageEnd, pageUp(seg.loadAddress + seg.memorySize));
  const stackBottom = memorySize - m.stackSize;
  if (imageEnd > stackBottom) {
    const need = imageEnd + m.stackSize;
    throw new BootError(
      `image '${m.name}' needs at least ${Math.ceil(need / 1048576)} MiB of memory (segments end at 0x${imageEnd.toString(16)}, stack ${m.stackSize} bytes); got ${memorySize} bytes`,
    );
  }

  const argv = [m.name, ...(opts.args ?? m.args)];
  const encoded = new TextEncoder().encode(argv.map((a) => a + '\0').join(''));
  if (encoded.length > LAYOUT.BOOTARGS_MAX) {
    throw new BootError(`boot arguments take ${encoded.length} bytes; at most ${LAYOUT.BOOTARGS_MAX} fit`);
  }

  return { memorySize, imageEnd, stackBottom, argv, encoded };
}

function writeBootRegisters(memory: GuestMemory, image: DenaliImage, opts: BootOptions, plan: BootFit): void {
  const { memorySize, imageEnd, encoded, argv } = plan;
  const m = image.manifest;
  const ro = LAYOUT.VREG_RO_BASE;
  const dv = memory.dv;
  const u32 = (off: number, v: number): void => dv.setUint32(ro + off, v >>> 0, true);
  u32(VREG_RO.MAGIC, VREG_MAGIC);
  u32(VREG_RO.ABI_VERSION, ABI_VERSION);
  u32(VREG_RO.MEMORY_SIZE, memorySize);
  u32(VREG_RO.TICK_RATE, TICK_RATE);
  u32(VREG_RO.VM_ID, opts.vmId);
  memory.u8.set(opts.mac ?? defaultMac(opts.vmId), ro + VREG_RO.MAC);
  // IPv4 fields are stored in network byte order, as the guest's stack wants them.
  const be = (off: number, v: number): void => dv.setUint32(ro + off, v >>> 0, false);
  be(VREG_RO.IPV4_ADDR, opts.ipv4?.addr ?? 0);
  be(VREG_RO.IPV4_NETMASK, opts.ipv4?.netmask ?? 0);
  be(VREG_RO.IPV4_GATEWAY, opts.ipv4?.gateway ?? 0);
  u32(VREG_RO.MTU, opts.mtu ?? 0);
  u32(VREG_RO.NET_FEATURES, opts.netFeatures ?? (opts.mtu ? NET_FEATURE.CSUM : 0));
  u32(VREG_RO.IMAGE_END, imageEnd);
  u32(VREG_RO.STACK_TOP, memorySize);
  u32(VREG_RO.STACK_SIZE, m.stackSize);
  u32(VREG_RO.ARGC, argv.length);
  u32(VREG_RO.BOOTARGS_ADDR, LAYOUT.BOOTARGS_BASE);
  u32(VREG_RO.BOOTARGS_LEN, encoded.length);
  memory.u8.set(encoded, LAYOUT.BOOTARGS_BASE);
}
