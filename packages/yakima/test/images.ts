import { ABI_VERSION, ARCH_ID, FORMAT_VERSION, LAYOUT, type DenaliImage } from '@denali/image-format';

/**
 * An image of raw machine code loaded at 1 MiB as one rwx segment (at least 4 KiB), for VMM
 * tests that need no compiler. `entryPoint` defaults to the start of the code.
 */
export function rawImage(
  name: string,
  code: ArrayLike<number>,
  memorySize = 2 << 20,
  entryPoint: number = LAYOUT.IMAGE_BASE,
): DenaliImage {
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
