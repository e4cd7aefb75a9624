/**
 * Test helpers: paths of the examples and fixtures, building an ELF without writing an
 * image, and `hostrun` (test/hostrun/): runs an Ilwaco ELF natively under ptrace so the C
 * side can be tested end to end without the Yakima emulator.
 */
import { execa } from 'execa';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';
import { compileAndLink, loadServiceConfig } from '../src/index.js';

export const REPO = resolve(import.meta.dirname, '../../..');
export const EXAMPLES = join(REPO, 'examples');
export const FIXTURES = join(import.meta.dirname, 'fixtures');
const HOSTRUN_SRC = join(import.meta.dirname, 'hostrun');

let scratch: Promise<string> | undefined;
/** A per-process scratch directory under the OS temp dir, removed when the process exits. */
export function scratchDir(): Promise<string> {
  scratch ??= mkdtemp(join(tmpdir(), 'ilwaco-test-')).then((dir) => {
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  });
  return scratch;
}

// Vitest may end a worker without an 'exit' event: also clean up after each test file.
afterAll(async () => {
  if (scratch) rmSync(await scratch, { recursive: true, force: true });
  scratch = undefined;
  hostrun = undefined;
});

/** A fresh directory inside the scratch directory. */
export async function freshDir(prefix: string): Promise<string> {
  return mkdtemp(join(await scratchDir(), prefix));
}

/** Compile and link a service directory; returns the ELF path and the image input. */
export async function buildElf(dir: string) {
  const config = loadServiceConfig(dir);
  const { elf, input } = await compileAndLink(config, 'gcc', true);
  const path = join(await scratchDir(), `${config.name}.elf`);
  await writeFile(path, elf);
  return { path, elf, input, config };
}

export interface HostRun {
  /** Absolute paths of the built runner and its 32-bit stub. */
  runner: string;
  stub: string;
}

let hostrun: Promise<HostRun | string> | undefined;
/**
 * Build hostrun and check that this machine lets it trace a 32-bit process. Resolves to a
 * reason string when it cannot (no ptrace, no 32-bit support), so tests can skip visibly.
 */
export function getHostRun(): Promise<HostRun | string> {
  hostrun ??= (async () => {
    const dir = await scratchDir();
    const runner = join(dir, 'hostrun');
    const stub = join(dir, 'hostrun-stub');
    try {
      await execa('gcc', ['-O2', '-Wall', '-o', runner, join(HOSTRUN_SRC, 'hostrun.c')]);
      await execa('gcc', ['-m32', '-nostdlib', '-static', '-no-pie', '-Wl,-Ttext=0x70000000', '-Wl,--build-id=none', '-o', stub, join(HOSTRUN_SRC, 'loader.S')]);
    } catch (e) {
      return `cannot build hostrun: ${(e as Error).message.split('\n')[0]}`;
    }
    if (!existsSync(runner) || !existsSync(stub)) return 'hostrun not built';
    const probe = await execa(runner, [stub, '--probe'], { reject: false });
    if (probe.exitCode !== 0) return `this machine does not let hostrun trace a 32-bit process: ${probe.stderr.trim()}`;
    return { runner, stub };
  })();
  return hostrun;
}

/** Run an ELF under hostrun; `input` is fed to the guest console. */
export async function runElf(
  hr: HostRun,
  elf: string,
  argv: string[],
  opts: { memory?: number; stack?: number; quantumUs?: number; input?: string; timeout?: number } = {},
) {
  const args = [hr.stub, elf, '--stats'];
  if (opts.memory) args.push('--mem', String(opts.memory));
  if (opts.stack) args.push('--stack', String(opts.stack));
  if (opts.quantumUs) args.push('--quantum', String(opts.quantumUs));
  args.push('--', ...argv);
  return execa(hr.runner, args, {
    reject: false,
    input: opts.input ?? '',
    timeout: opts.timeout ?? 20_000,
    stripFinalNewline: false,
  });
}

/** Parse hostrun's "--stats" line from stderr. */
export function hostStats(stderr: string): Record<string, number> {
  const line = stderr.split('\n').find((l) => l.startsWith('hostrun: hypercalls='));
  const out: Record<string, number> = {};
  for (const m of (line ?? '').matchAll(/(\w+)=(\d+)/g)) out[m[1]!] = Number(m[2]);
  return out;
}
