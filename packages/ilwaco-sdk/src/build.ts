/**
 * `buildService`: compile a service and the Ilwaco library, link them with `lib/ilwaco.ld`,
 * and write a Denali image (`.dni`). The library is built once per (sources, compiler,
 * flags) into `build/<hash>/` and reused.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { execa } from 'execa';
import { manifestFromInput, writeImageFile } from '@denali/image-format';
import type { ImageInput, Manifest } from '@denali/image-format';
import { assetsAssembly, collectAssets, packAssetFiles } from './assets.js';
import { loadServiceConfig } from './config.js';
import type { ServiceConfig } from './config.js';
import { parseElf32 } from './elf.js';
import { BuildError, ElfError } from './errors.js';
import { C_FLAGS, LIB_FLAGS, sdkPaths } from './paths.js';

/** Options of {@link buildService}. */
export interface BuildOptions {
  /** Output image path; default `<name>.dni` in the current working directory. */
  out?: string;
  /** C compiler; default `process.env.CC`, then `gcc`. clang is supported on a best-effort basis. */
  cc?: string;
  /** Do not copy compiler warnings to stderr. */
  quiet?: boolean;
  /** Directory for intermediate files (objects, the linked ELF); default the OS temp directory. */
  tempDir?: string;
}

/** What {@link buildService} produced. */
export interface BuildResult {
  /** Absolute path of the written `.dni` image. */
  imagePath: string;
  /** Size of the image file in bytes. */
  imageBytes: number;
  /** The image's manifest, as `readImage` will report it. */
  manifest: Manifest;
  /** The packed assets (denali.json `assets`): paths in blob order and total file bytes. */
  assets: { paths: string[]; bytes: number };
}

/** A C compiler as probed once per process. */
interface Toolchain {
  cc: string;
  isClang: boolean;
  /** First line of `cc --version` (part of the library cache key). */
  version: string;
  /** Compile flags including include paths and target. */
  cflags: string[];
  /** Link flags before the objects. */
  ldflags: string[];
}

const toolchains = new Map<string, Promise<Toolchain>>();

function isEnoent(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

function noCompiler(cc: string): BuildError {
  return new BuildError(`no C compiler found (looked for '${cc}'): install gcc (e.g. \`apt-get install gcc\`) or set CC`);
}

async function probeToolchain(cc: string): Promise<Toolchain> {
  let version: string;
  try {
    const r = await execa(cc, ['--version'], { reject: false });
    if (r.failed && r.exitCode === undefined) throw noCompiler(cc);
    version = r.stdout.split('\n')[0] ?? '';
  } catch (e) {
    if (e instanceof BuildError) throw e;
    if (isEnoent(e)) throw noCompiler(cc);
    throw new BuildError(`cannot run C compiler '${cc}': ${(e as Error).message.split('\n')[0]}`, { cause: e });
  }
  const isClang = /clang/i.test(version);
  const paths = sdkPaths();
  let builtinInclude: string;
  if (isClang) {
    const r = await execa(cc, ['-print-resource-dir'], { reject: false });
    builtinInclude = join(r.stdout.trim(), 'include');
  } else {
    const r = await execa(cc, ['-m32', '-print-file-name=include'], { reject: false });
    builtinInclude = r.stdout.trim();
  }
  const target = isClang ? ['--target=i686-unknown-none-elf'] : [];
  return {
    cc,
    isClang,
    version,
    cflags: [...target, ...C_FLAGS, '-isystem', paths.includeDir, '-isystem', builtinInclude],
    ldflags: [
      ...target,
      '-m32',
      '-nostdlib',
      '-static',
      '-no-pie',
      ...(isClang ? ['-fuse-ld=lld'] : []),
      '-Wl,--build-id=none',
      '-Wl,--gc-sections',
      '-Wl,-z,noexecstack',
      '-T',
      paths.linkerScript,
    ],
  };
}

function toolchain(cc: string): Promise<Toolchain> {
  let t = toolchains.get(cc);
  if (!t) {
    t = probeToolchain(cc);
    toolchains.set(cc, t);
    t.catch(() => toolchains.delete(cc));
  }
  return t;
}

/** Run the compiler; failures become a BuildError carrying its stderr unchanged. */
async function runCc(tc: Toolchain, args: string[], what: string, quiet: boolean): Promise<void> {
  let r;
  try {
    r = await execa(tc.cc, args, { reject: false, stdin: 'ignore' });
  } catch (e) {
    if (isEnoent(e)) throw noCompiler(tc.cc);
    throw e;
  }
  if (r.failed) {
    if (isEnoent(r.cause)) throw noCompiler(tc.cc);
    const stderr = r.stderr || r.stdout || r.message;
    throw new BuildError(`${what} failed:\n${stderr}`);
  }
  if (!quiet && r.stderr) process.stderr.write(r.stderr.endsWith('\n') ? r.stderr : `${r.stderr}\n`);
}

/** Run `fn` over `items` with at most `limit` running at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
}

function listFiles(dir: string, re: RegExp): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => re.test(f))
    .sort();
}

/** The built library: `crt0.o` (linked first, defines `_start`) and `libilwaco.a`. */
export interface SdkLibrary {
  crt0: string;
  archive: string;
}

const libraryBuilds = new Map<string, Promise<SdkLibrary>>();

/**
 * Build (or find in the cache) the Ilwaco library for compiler `cc`.
 * The cache key hashes every file under `lib/` and `include/`, the compiler's identity and
 * the flags, so editing the SDK or switching compilers rebuilds it.
 */
export async function buildSdkLibrary(cc: string, quiet = true): Promise<SdkLibrary> {
  const tc = await toolchain(cc);
  const paths = sdkPaths();
  const hash = createHash('sha256');
  hash.update(JSON.stringify([tc.cc, tc.version, tc.cflags, LIB_FLAGS]));
  for (const [dir, files] of [
    [paths.libDir, listFiles(paths.libDir, /\.(c|S|h|ld)$/)],
    [paths.includeDir, listFiles(paths.includeDir, /\.h$/)],
  ] as const) {
    for (const f of files) {
      hash.update(`\0${f}\0`);
      hash.update(readFileSync(join(dir, f)));
    }
  }
  const key = hash.digest('hex').slice(0, 16);
  const outDir = join(paths.buildDir, key);
  const lib: SdkLibrary = { crt0: join(outDir, 'crt0.o'), archive: join(outDir, 'libilwaco.a') };
  if (existsSync(lib.archive) && existsSync(lib.crt0)) return lib;
  let pending = libraryBuilds.get(key);
  if (!pending) {
    pending = compileLibrary(tc, outDir, lib, quiet);
    libraryBuilds.set(key, pending);
    pending.catch(() => libraryBuilds.delete(key));
  }
  return pending;
}

async function compileLibrary(tc: Toolchain, outDir: string, lib: SdkLibrary, quiet: boolean): Promise<SdkLibrary> {
  const paths = sdkPaths();
  await mkdir(paths.buildDir, { recursive: true });
  const work = await mkdtemp(join(paths.buildDir, 'tmp-'));
  try {
    const sources = listFiles(paths.libDir, /^[^/]*\.(c|S)$/);
    await pool(sources, Math.max(2, cpus().length), async (src) => {
      const obj = join(work, `${src.replace(/\.(c|S)$/, '')}.o`);
      await runCc(tc, [...tc.cflags, ...LIB_FLAGS, '-c', join(paths.libDir, src), '-o', obj], `compiling SDK ${src}`, quiet);
    });
    const members = sources.filter((s) => s !== 'crt0.S').map((s) => join(work, `${s.replace(/\.(c|S)$/, '')}.o`));
    try {
      await execa('ar', ['rcs', join(work, 'libilwaco.a'), ...members]);
    } catch (e) {
      throw new BuildError(`ar failed: ${(e as { stderr?: string }).stderr || (e as Error).message}`, { cause: e });
    }
    for (const m of members) await rm(m);
    try {
      await rename(work, outDir);
    } catch (e) {
      // Another process finished the same build first: use its result.
      if (!(existsSync(lib.archive) && existsSync(lib.crt0))) throw e;
    }
    return lib;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Build the image input for an already-validated config (exported for tools and tests). */
export async function compileAndLink(
  config: ServiceConfig,
  cc: string,
  quiet: boolean,
  tempDir: string = tmpdir(),
): Promise<{ input: ImageInput; elf: Uint8Array; assets: { paths: string[]; bytes: number } }> {
  const tc = await toolchain(cc);
  const lib = await buildSdkLibrary(cc, quiet);
  // Walk the assets first so an oversized or escaping tree fails before compiling.
  const assetFiles = config.assets === undefined ? [] : collectAssets(config.assets);
  const work = await mkdtemp(join(tempDir, 'ilwaco-build-'));
  try {
    const objects = config.sources.map((s, i) => join(work, `${i}-${basename(s).replace(/\.[^.]*$/, '')}.o`));
    await pool(config.sources, Math.max(2, cpus().length), async (src, i) => {
      await runCc(tc, [...tc.cflags, ...config.cflags, '-c', src, '-o', objects[i]!], `compiling ${basename(src)}`, quiet);
    });
    if (config.assets !== undefined) {
      // The blob goes into .rodata.ilwaco_assets via .incbin (src/assets.ts); lib/assets.c finds it.
      const blobPath = join(work, 'assets.blob');
      const asmPath = join(work, 'assets.S');
      await writeFile(blobPath, packAssetFiles(assetFiles));
      await writeFile(asmPath, assetsAssembly(blobPath));
      objects.push(join(work, 'assets.o'));
      await runCc(tc, [...tc.cflags, '-c', asmPath, '-o', objects[objects.length - 1]!], 'assembling assets', quiet);
    }
    const elfPath = join(work, `${config.name}.elf`);
    await runCc(tc, [...tc.ldflags, lib.crt0, ...objects, lib.archive, '-o', elfPath], `linking ${config.name}`, quiet);
    const elf = new Uint8Array(await readFile(elfPath));
    let exe;
    try {
      exe = parseElf32(elf);
    } catch (e) {
      if (e instanceof ElfError) throw new BuildError(`linked executable is unusable: ${e.message}`, { cause: e });
      throw e;
    }
    const input: ImageInput = {
      name: config.name,
      entryPoint: exe.entry,
      memorySize: config.memory,
      stackSize: config.stack,
      args: config.args,
      segments: exe.segments,
    };
    return { input, elf, assets: { paths: assetFiles.map((f) => f.path), bytes: assetFiles.reduce((n, f) => n + f.size, 0) } };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Build the service in `serviceDir` into a Denali image.
 *
 * Reads and validates `<serviceDir>/denali.json` (see `config.ts`), compiles its sources
 * with the Denali C ABI flags against the SDK headers, links them with `crt0.o` and
 * `libilwaco.a` using `lib/ilwaco.ld`, turns the ELF's PT_LOAD segments into image segments
 * and writes the image with `writeImageFile`. The `assets` directory, if any, is packed into
 * a blob (src/assets.ts) linked into the read-only segment for `ilwaco/assets.h`.
 *
 * @throws BuildError for a bad denali.json or missing source (one line), an assets tree that
 *   is too large or has a symlink leading outside it (one line), a compiler or linker
 *   error (the message holds the compiler's stderr unchanged), a missing compiler (one line:
 *   "no C compiler found ..."), or an image the format rejects.
 */
export async function buildService(serviceDir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const config = loadServiceConfig(serviceDir);
  const cc = opts.cc ?? process.env.CC ?? 'gcc';
  const { input, assets } = await compileAndLink(config, cc, opts.quiet ?? false, opts.tempDir);
  const imagePath = resolve(opts.out ?? `${config.name}.dni`);
  let bytes: Uint8Array;
  let manifest: Manifest;
  try {
    manifest = manifestFromInput(input);
    bytes = await writeImageFile(imagePath, input);
  } catch (e) {
    throw new BuildError(`cannot write image for ${config.name}: ${(e as Error).message}`, { cause: e });
  }
  return { imagePath, imageBytes: bytes.length, manifest, assets };
}
