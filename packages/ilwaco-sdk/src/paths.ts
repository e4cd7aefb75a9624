/**
 * Where the SDK's files live, and the C flags every guest translation unit gets.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { C_ABI_FLAGS } from '@denali/image-format';

/** Root of the `@denali/ilwaco-sdk` package. */
export const SDK_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Locations of the SDK's C side. */
export interface SdkPaths {
  /** Directory to pass as `-isystem`: libc headers, `denali/abi.h`, `ilwaco/*.h`. */
  includeDir: string;
  /** Library sources (`*.c`, `*.S`) and the linker script. */
  libDir: string;
  /** `lib/ilwaco.ld`: image at 1 MiB, r-x / r-- / rw- page-aligned PT_LOAD segments. */
  linkerScript: string;
  /** Cache of built libraries: `build/<hash>/{libilwaco.a,crt0.o}`. */
  buildDir: string;
}

/** The SDK's include dir, lib dir, linker script and library cache dir (absolute paths). */
export function sdkPaths(): SdkPaths {
  return {
    includeDir: join(SDK_ROOT, 'include'),
    libDir: join(SDK_ROOT, 'lib'),
    linkerScript: join(SDK_ROOT, 'lib', 'ilwaco.ld'),
    buildDir: join(SDK_ROOT, 'build'),
  };
}

/**
 * Compiler flags for Ilwaco code apart from the include paths: the Denali C ABI
 * (`C_ABI_FLAGS` from abi.ts), `-nostdinc` (the SDK's headers replace libc's), `-O2`, and
 * per-function sections so the linker can drop unused code.
 */
export const C_FLAGS: readonly string[] = [
  ...C_ABI_FLAGS,
  '-nostdinc',
  '-O2',
  '-fno-tree-vectorize',
  '-mno-stv',
  '-ffunction-sections',
  '-fdata-sections',
];

/** Extra flags for the SDK library itself (keeps gcc from turning memset loops into memset calls). */
export const LIB_FLAGS: readonly string[] = ['-Wall', '-fno-tree-loop-distribute-patterns'];
