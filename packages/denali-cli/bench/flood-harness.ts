/**
 * The hostile console guest of issue 7 and the measurements around it, shared by the
 * regression tests (packages/denali-cli/test/console-flood.test.ts) and `pnpm bench:flood`.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { buildService } from '@denali/ilwaco-sdk';

export const root = resolve(import.meta.dirname, '../../..');
export const DENALI = join(root, 'bin/denali');

/**
 * Build the flood guest: a 1 MiB static buffer written with `ilwaco_console_write` in a loop,
 * `mib` times (0: forever); `newlines` puts a line break every 64 bytes.
 * @returns the .dni path.
 */
export async function buildFlood(name: string, opts: { newlines: boolean; mib: number }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `denali-${name}-`));
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'denali.json'), JSON.stringify({ name, sources: ['main.c'], memory: '4M' }));
  await writeFile(
    join(dir, 'main.c'),
    `#include <ilwaco/ilwaco.h>
static char buf[1 << 20];
int main(void) {
    for (unsigned i = 0; i < sizeof buf; i++) buf[i] = ${opts.newlines ? "(i % 64 == 63) ? '\\n' : " : ''}(char)('a' + i % 26);
    for (long n = 0; ${opts.mib} == 0 || n < ${opts.mib}; n++) ilwaco_console_write(buf, sizeof buf);
    return 0;
}
`,
  );
  const r = await buildService(dir, { out: join(dir, `${name}.dni`), quiet: true });
  return r.imagePath;
}

/** Build examples/httpd once. @returns the .dni path. */
export async function buildHttpd(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'denali-httpd-'));
  return (await buildService(join(root, 'examples/httpd'), { out: join(dir, 'httpd.dni'), quiet: true })).imagePath;
}

/** Resident set size of process `pid` in bytes (Linux /proc), or 0 when gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** One HTTP GET; resolves to its latency in ms, or rejects after `timeoutMs`. */
export function timedGet(port: number, path: string, timeoutMs = 2000): Promise<number> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (r) => {
      r.resume();
      r.on('end', () => (r.statusCode === 200 ? res(performance.now() - t0) : rej(new Error(`status ${r.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', rej);
    req.end();
  });
}

/**
 * `denali run` with stdout a slow pipe: the harness reads `bytesPerTick` bytes every 10 ms
 * (or nothing, with 0) — a terminal or log shipper slower than the guest.
 */
export function startSlowPipe(args: string[], bytesPerTick: number): { proc: ResultPromise; stderr: () => string; received: () => number; stopReading: () => void } {
  const proc = execa(DENALI, ['run', ...args], { reject: false, stdin: 'ignore', buffer: false, env: { DENALI_DEBUG: '' } });
  let err = '';
  let got = 0;
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const out = proc.stdout!;
  out.pause();
  const timer = setInterval(() => {
    if (bytesPerTick <= 0) return;
    const d = out.read(bytesPerTick) as Buffer | null;
    if (d) got += d.length;
    else if (out.readableLength > 0) got += (out.read() as Buffer | null)?.length ?? 0;
  }, 10);
  const stopReading = (): void => clearInterval(timer);
  void proc.finally(stopReading);
  return { proc, stderr: () => err, received: () => got, stopReading };
}

/** Sorted-sample percentile (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** What `floodNextToHttpd` measured. */
export interface FloodResult {
  /** Latencies of the GETs after the first, ms, sorted. */
  latencies: number[];
  /** Largest RSS of the denali process seen, bytes. */
  maxRss: number;
  /** ms from SIGINT to exit. */
  stopMs: number;
  exitCode: number | undefined;
  stderr: string;
  /** Console bytes the slow reader got. */
  received: number;
}

/**
 * The flood guest next to httpd (`-p port:httpd:80`), stdout a slow pipe: wait for httpd,
 * then `requests` GETs `gapMs` apart while sampling RSS, then SIGINT and time the exit.
 * Without `flood`, httpd alone (the baseline).
 */
export async function floodNextToHttpd(flood: string | undefined, httpd: string, port: number, opts: { requests: number; gapMs: number; bytesPerTick: number; backend?: string }): Promise<FloodResult> {
  const images = flood === undefined ? [httpd] : [flood, httpd];
  const run = startSlowPipe(['--backend', opts.backend ?? 'emu', ...images, '-p', `${port}:httpd:80`], opts.bytesPerTick);
  let maxRss = 0;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssOf(run.proc.pid!))), 20);
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (run.proc.exitCode !== null) throw new Error(`denali run exited early: ${run.stderr()}`);
      if (Date.now() > deadline) throw new Error(`httpd not up within 120 s: ${run.stderr()}`);
      try {
        await timedGet(port, '/index.html', 2000);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const latencies: number[] = [];
    for (let i = 0; i < opts.requests; i++) {
      await new Promise((r) => setTimeout(r, opts.gapMs));
      latencies.push(await timedGet(port, '/index.html', 2000));
    }
    const t0 = performance.now();
    run.proc.kill('SIGINT');
    const r = await run.proc;
    const stopMs = performance.now() - t0;
    latencies.sort((a, b) => a - b);
    return { latencies, maxRss, stopMs, exitCode: r.exitCode, stderr: run.stderr(), received: run.received() };
  } finally {
    clearInterval(sampler);
    run.stopReading();
    run.proc.kill('SIGKILL');
  }
}

/**
 * Two VMs writing `mib` MiB each without a newline (prefixed console): wall time, the most
 * RSS seen, and the output (checked by the caller), stdout read as fast as possible.
 */
export async function noNewlineFlood(image: string): Promise<{ ms: number; maxRss: number; bytes: number; longestLine: number; exitCode: number | undefined }> {
  const proc = execa(DENALI, ['run', '--backend', 'emu', image, image], { reject: false, stdin: 'ignore', buffer: false });
  let maxRss = 0;
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, rssOf(proc.pid!))), 20);
  let bytes = 0;
  let longestLine = 0;
  let line = 0;
  proc.stdout!.on('data', (d: Buffer) => {
    bytes += d.length;
    let start = 0;
    for (let nl = d.indexOf(10); nl >= 0; nl = d.indexOf(10, start)) {
      longestLine = Math.max(longestLine, line + nl - start);
      line = 0;
      start = nl + 1;
    }
    line += d.length - start;
  });
  const t0 = performance.now();
  const r = await proc;
  clearInterval(sampler);
  return { ms: performance.now() - t0, maxRss, bytes, longestLine, exitCode: r.exitCode };
}
