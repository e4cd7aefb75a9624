import { mkdtempSync } from 'node:fs';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export const root = resolve(import.meta.dirname, '../../..');

// Every denali run has a control socket: keep the tests' sockets in a private directory of
// their own, whatever XDG_RUNTIME_DIR the machine has (children inherit it).
process.env.DENALI_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'denali-test-rt-'));
export const denaliBin = join(root, 'bin/denali');

/** Run `bin/denali` with args; never throws on a non-zero exit. */
export function denali(args: string[], opts: { cwd?: string; input?: string; timeout?: number } = {}): ResultPromise<{ reject: false }> {
  return execa(denaliBin, args, {
    cwd: opts.cwd ?? root,
    input: opts.input ?? '',
    reject: false,
    timeout: opts.timeout ?? 60_000,
    env: { DENALI_DEBUG: '' },
  }) as ResultPromise<{ reject: false }>;
}

/** Write a one-file C service (denali.json + main.c) into a fresh temp dir; returns its path. */
export async function cService(name: string, source: string, extra: Record<string, unknown> = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `denali-${name}-`));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'denali.json'), JSON.stringify({ name, sources: ['main.c'], memory: '4M', ...extra }));
  await writeFile(join(dir, 'main.c'), source);
  return dir;
}


/** A service that prints `tick N` every 200 ms forever (idles between ticks): for long-running VMs. */
export const TICKER_C = `#include <stdio.h>
#include <time.h>
int main(void) { for (unsigned i = 0;; i++) { printf("tick %u\\n", i); usleep(200000); } }`;

/** A service that spins forever without idling (CPU-bound). */
export const SPINNER_C = `#include <stdio.h>
int main(void) { volatile unsigned x = 0; printf("spinning\\n"); for (;;) x++; }`;

/** Build a one-file C service into `<dir>/<name>.dni`; returns the image path. */
export async function cImage(name: string, source: string, dir: string): Promise<string> {
  const { buildService } = await import('@denali/ilwaco-sdk');
  const svc = await cService(name, source);
  return (await buildService(svc, { out: join(dir, `${name}.dni`), quiet: true })).imagePath;
}

export { freePort } from '../bench/free-port.js';
