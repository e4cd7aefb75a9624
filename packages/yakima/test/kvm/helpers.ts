/** Shared helpers of the KVM backend tests: raw machine-code images and booting them on KVM memory. */
import type { DenaliImage } from '@denali/image-format';
import { createBootImage, type BootImage } from '../../src/boot/boot-image.js';
import { allocateGuestMemory } from '../../src/cpu/kvm/kvm-memory.js';
import { probeKvm } from '../../src/cpu/kvm/probe.js';

const probe = probeKvm();
/** True when KVM can run VMs here; otherwise the tests that need it skip and print why. */
export const kvmUsable = probe.usable;
if (!probe.usable) console.log(`KVM tests skipped: ${probe.reason}`);
else if (probe.note) console.log(`KVM note: ${probe.note}`);

export { rawImage } from '../images.js';

/** The boot image of `image` built directly in KVM (mmap'd) guest memory. */
export function bootOnKvm(image: DenaliImage, vmId = 1): BootImage {
  return createBootImage(image, { vmId, allocateMemory: allocateGuestMemory });
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
