/**
 * A Linux i386 build of an Ilwaco service for `pnpm bench:emu`: the service's C sources,
 * compiled with exactly the flags an image build uses (`C_FLAGS`) and linked with the same
 * `libilwaco.a`, with `i386/linux-shim.c` standing in for crt0 and the console driver. The
 * result runs natively (gcc -m32, no 32-bit glibc needed) and under `qemu-i386`, executing
 * the same guest code as the emulator: same string routines, printf, strtol.
 *
 * Scope: compute services that return from main and print to stdout (no malloc, threads or
 * exit(); those reach Denali hypercalls).
 */
import { mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { C_FLAGS, buildSdkLibrary, loadServiceConfig, sdkPaths } from '@denali/ilwaco-sdk';

const SHIM = resolve(import.meta.dirname, 'i386', 'linux-shim.c');

/**
 * Build `serviceDir` into `<outDir>/<name>-i386` (a static ELF32 executable); returns its path.
 * @param cc C compiler able to emit -m32 code (gcc or clang); default `process.env.CC ?? 'gcc'`.
 * @throws Error carrying the compiler's stderr when compiling or linking fails.
 */
export async function buildNativeI386(serviceDir: string, outDir: string, cc = process.env.CC ?? 'gcc'): Promise<string> {
  const config = loadServiceConfig(serviceDir);
  await mkdir(outDir, { recursive: true });
  const lib = await buildSdkLibrary(cc);
  const builtin = (await execa(cc, ['-m32', '-print-file-name=include'])).stdout.trim();
  const cflags = [...C_FLAGS, ...config.cflags, '-isystem', sdkPaths().includeDir, '-isystem', builtin];
  const objs: string[] = [];
  for (const src of [...config.sources, SHIM]) {
    const obj = join(outDir, `${config.name}-${objs.length}-${basename(src).replace(/\.[cS]$/, '')}.o`);
    const r = await execa(cc, [...cflags, '-c', resolve(serviceDir, src), '-o', obj], { reject: false, stdin: 'ignore' });
    if (r.failed) throw new Error(`i386 build of ${src} failed:\n${r.stderr || r.message}`);
    objs.push(obj);
  }
  const exe = join(outDir, `${config.name}-i386`);
  const r = await execa(cc, ['-m32', '-nostdlib', '-static', '-no-pie', '-Wl,--gc-sections', '-o', exe, ...objs, lib.archive], {
    reject: false,
    stdin: 'ignore',
  });
  if (r.failed) throw new Error(`i386 link of ${config.name} failed:\n${r.stderr || r.message}`);
  return exe;
}
