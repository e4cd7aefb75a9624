/**
 * Builds the tender (tender/*.c) with the system C compiler on first use and caches the binary
 * under `packages/yakima/build/tender-<hash>`, keyed by the sources, the compiler's identity
 * and the flags (like the SDK's library cache): editing the tender or switching compilers
 * rebuilds it. The build is synchronous (about 0.2 s, once) because VMs are created
 * synchronously.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const SOURCE_DIR = join(HERE, 'tender');
const CACHE_DIR = resolve(HERE, '..', '..', '..', 'build');

/**
 * Flags: position-independent (the binary must load above 4 GiB, away from the guest's
 * window), no stack protector / CET / vector registers in our code (the signal handler runs
 * with guest-controlled FS/GS and must not touch TLS or libc).
 */
export const TENDER_CFLAGS: readonly string[] = [
  '-O2',
  '-Wall',
  '-fpie',
  '-fno-stack-protector',
  '-fcf-protection=none',
  '-fno-builtin',
  '-mgeneral-regs-only',
];

/**
 * Linked statically where the C library allows (no dynamic loader at each VM's start: boot
 * time), else as an ordinary PIE.
 */
const LINK_CHOICES: readonly (readonly string[])[] = [['-static-pie'], ['-pie']];

/** The tender could not be built (no compiler, or it failed); the message says which. */
export class TenderBuildError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TenderBuildError';
  }
}

let built: string | undefined;

/**
 * Path of the tender binary, building it first if the cache has none for these sources.
 * @param cc C compiler (default `$CC` or `gcc`).
 * @throws TenderBuildError when the compiler is missing or the build fails.
 */
export function tenderBinary(cc = process.env.CC || 'gcc'): string {
  if (built) return built;
  let version: string;
  try {
    version = execFileSync(cc, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).split('\n')[0]!;
  } catch (e) {
    throw new TenderBuildError(`the process backend needs a C compiler to build its tender: '${cc}' was not found or failed (install gcc)`, { cause: e });
  }
  const sources = readdirSync(SOURCE_DIR).filter((f) => /\.[ch]$/.test(f)).sort();
  const hash = createHash('sha256');
  hash.update(JSON.stringify([cc, version, TENDER_CFLAGS, LINK_CHOICES]));
  for (const f of sources) {
    hash.update(`\0${f}\0`);
    hash.update(readFileSync(join(SOURCE_DIR, f)));
  }
  const out = join(CACHE_DIR, `tender-${hash.digest('hex').slice(0, 16)}`);
  if (!existsSync(out)) {
    mkdirSync(CACHE_DIR, { recursive: true });
    const tmp = `${out}.tmp-${process.pid}`;
    const inputs = sources.filter((f) => f.endsWith('.c')).map((f) => join(SOURCE_DIR, f));
    let failure: unknown;
    for (const link of LINK_CHOICES) {
      try {
        execFileSync(cc, [...TENDER_CFLAGS, ...link, '-o', tmp, ...inputs], { stdio: ['ignore', 'pipe', 'pipe'] });
        renameSync(tmp, out); // atomic: a concurrent build by another process is harmless
        failure = undefined;
        break;
      } catch (e) {
        rmSync(tmp, { force: true });
        failure ??= e;
      }
    }
    if (failure !== undefined) {
      const err = (failure as { stderr?: Buffer }).stderr?.toString().trim();
      throw new TenderBuildError(`building the process backend's tender failed: ${err || (failure as Error).message}`, { cause: failure });
    }
  }
  built = out;
  return out;
}
