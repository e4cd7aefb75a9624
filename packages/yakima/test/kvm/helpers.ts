/** Shared helpers of the KVM backend tests: raw machine-code images and booting them on KVM memory. */
import { ABI_VERSION, ARCH_ID, FORMAT_VERSION, LAYOUT, type DenaliImage } from '@denali/image-format';
import { createBootImage, type BootImage } from '../../src/boot/boot-image.js';
import { allocateGuestMemory } from '../../src/cpu/kvm/kvm-memory.js';
import { probeKvm } from '../../src/cpu/kvm/probe.js';

const probe = probeKvm();
/** True when KVM can run VMs here; otherwise the tests that need it skip and print why. */
export const kvmUsable = probe.usable;
if (!probe.usable) console.log(`KVM tests skipped: ${probe.reason}`);
else if (probe.note) console.log(`KVM note: ${probe.note}`);

/** An image of raw machine code at 1 MiB (one rwx segment). */
export function rawImage(name: string, code: number[] | Uint8Array, memorySize = 2 << 20, entryPoint: number = LAYOUT.IMAGE_BASE): DenaliImage {
  const data = new Uint8Array(Math.max(0x1000, code.length));
  data.set(code);
  return {
    manifest: {
      formatVersion: FORMAT_VERSION,
      name,
      architecture: ARCH_ID,
      abiVersion: ABI_VERSION,
      entryPoint,
      memorySize,
      stackSize: 0x10000,
      args: [],
      segments: [{ file: 'segments/0.bin', loadAddress: LAYOUT.IMAGE_BASE, fileSize: data.length, memorySize: data.length, flags: 'rwx', sha256: '' }],
    },
    segments: [data],
  };
}

/**
 * The boot image of `image` in KVM (mmap'd) guest memory. Until `createBootImage` takes the
 * memory to fill, the boot image is built as usual and copied over.
 */
export function bootOnKvm(image: DenaliImage, vmId = 1): BootImage {
  const boot = createBootImage(image, { vmId });
  const memory = allocateGuestMemory(boot.memory.size);
  memory.u8.set(boot.memory.u8);
  return { ...boot, memory };
}

export const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** mov eax, imm32 */
export const movEax = (v: number): number[] => [0xb8, ...le32(v)];
/** mov dx, imm16 */
export const movDx = (v: number): number[] => [0x66, 0xba, v & 0xff, v >> 8];
export const OUT_DX_EAX = 0xef;
export const HLT = 0xf4;
export const SPIN = [0xeb, 0xfe]; // jmp $

/** mov eax, 0x100100; mov dx, 0x502; out dx, eax; hlt — with a CONSOLE_WRITE block at 0x100100 and the text at 0x100200. */
export function helloCode(text: string): number[] {
  const code = [...movEax(0x100100), ...movDx(0x502), OUT_DX_EAX, HLT];
  const out = new Array<number>(0x300).fill(0);
  out.splice(0, code.length, ...code);
  out.splice(0x100, 16, ...le32(0x100200), ...le32(text.length), ...le32(0), ...le32(0));
  out.splice(0x200, text.length, ...Buffer.from(text));
  return out;
}
