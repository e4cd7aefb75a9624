import { ABI_VERSION, ARCH_ID, FORMAT_VERSION, HYPERCALL, HYPERCALL_PORT_BASE, LAYOUT, type DenaliImage } from '@denali/image-format';

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

const BASE = LAYOUT.IMAGE_BASE;

/** Where `floodImage` keeps its CONSOLE_ARGS block. */
export const FLOOD_ARGS = BASE + 0x800;
const BUF = BASE + 0x1000;
/** Bytes `floodImage` asks to write per CONSOLE_WRITE (512 KiB). */
export const FLOOD_WRITE_LEN = 0x80000;

const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];

/**
 * A hostile guest: `for (;;) console_write(buf, 512 KiB)` as raw code.
 *   mov edx, 0x502 ; mov eax, FLOOD_ARGS ; out dx, eax ; jmp back to mov eax
 * The args block {BUF, LEN, DONE, EOF} sits at FLOOD_ARGS; the buffer holds `fill` bytes.
 */
export function floodImage(name: string, fill: (i: number) => number): DenaliImage {
  const size = 0x1000 + FLOOD_WRITE_LEN;
  const code = new Uint8Array(size);
  code.set([0xba, ...le32(HYPERCALL_PORT_BASE + HYPERCALL.CONSOLE_WRITE), 0xb8, ...le32(FLOOD_ARGS), 0xef, 0xeb, 0xf8]);
  code.set([...le32(BUF), ...le32(FLOOD_WRITE_LEN), 0, 0, 0, 0, 0, 0, 0, 0], 0x800);
  for (let i = 0; i < FLOOD_WRITE_LEN; i++) code[0x1000 + i] = fill(i);
  return rawImage(name, code, 4 << 20);
}

