/**
 * The Linux-native build of an Ilwaco service (paper 4.2.2: the same web server "compiled
 * against a Linux library implementing Ilwaco's system call API"), used as the baseline by
 * `pnpm bench:web` and by the native httpd tests.
 *
 * The service's own C sources (from its denali.json) are compiled with the host's gcc
 * (64-bit, glibc, -O2) against real libc and socket headers, plus:
 *  - `include/ilwaco/thread.h` + `thread.c` here: Ilwaco threads over pthreads;
 *  - the SDK's `lib/assets.c` and `include/ilwaco/assets.h` unchanged, reading the same
 *    asset blob the image would carry (packed by the SDK and linked in with `.incbin`).
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { assetsAssembly, loadServiceConfig, packAssets, sdkPaths } from '@denali/ilwaco-sdk';

const HERE = resolve(import.meta.dirname);

/** Options of {@link buildNative}. */
export interface NativeBuildOptions {
  /** Directory for the objects, generated files and the executable (created if missing). */
  outDir: string;
  /** C compiler; default `process.env.CC`, then `gcc`. */
  cc?: string;
  /** Extra compiler flags, e.g. `['-fsanitize=address,undefined', '-g']`. */
  flags?: string[];
}

/**
 * Compile the service in `serviceDir` (with its denali.json `sources`, `cflags` and assets)
 * into a native Linux executable `<outDir>/<name>`; returns its absolute path.
 * @throws BuildError for a bad denali.json or assets tree; Error carrying the compiler's
 *   stderr when compiling or linking fails.
 */
export async function buildNative(serviceDir: string, opts: NativeBuildOptions): Promise<string> {
  const config = loadServiceConfig(serviceDir);
  const cc = opts.cc ?? process.env.CC ?? 'gcc';
  const out = resolve(opts.outDir);
  const inc = join(out, 'include');
  await mkdir(join(inc, 'ilwaco'), { recursive: true });
  const sdk = sdkPaths();
  // Only ilwaco/assets.h comes from the SDK: its libc headers must not shadow glibc's.
  await copyFile(join(sdk.includeDir, 'ilwaco', 'assets.h'), join(inc, 'ilwaco', 'assets.h'));
  const sources = [...config.sources, join(sdk.libDir, 'assets.c'), join(HERE, 'thread.c')];
  if (config.assets !== undefined) {
    const blob = join(out, 'assets.blob');
    await writeFile(blob, packAssets(config.assets));
    await writeFile(join(out, 'assets.S'), assetsAssembly(blob));
    sources.push(join(out, 'assets.S'));
  }
  const exe = join(out, config.name);
  const flags = ['-O2', '-Wall', '-pthread', '-I', inc, '-I', join(HERE, 'include'), ...config.cflags, ...(opts.flags ?? [])];
  const r = await execa(cc, [...flags, ...sources, '-o', exe], { reject: false, stdin: 'ignore' });
  if (r.failed) throw new Error(`native build of ${config.name} failed:\n${r.stderr || r.message}`);
  return exe;
}
