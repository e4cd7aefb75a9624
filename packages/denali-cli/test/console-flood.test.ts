/**
 * Issue 7 regressions, through the real CLI: a guest flooding its console must not take
 * httpd, Ctrl-C or host memory with it; no-newline output stays bounded; no way of stopping
 * `denali run <service-dir>` leaves temp files behind. Numbers: `pnpm bench:flood`.
 */
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildFlood, buildHttpd, DENALI, floodNextToHttpd, noNewlineFlood, percentile } from '../bench/flood-harness.js';
import { cService, freePort } from './helpers.js';

const MiB = 1024 * 1024;
/** RSS bound promised for `denali run` with a flooding guest (SPECIFICATION.md); measured ~120 MiB. */
const RSS_BOUND = 400 * MiB;

describe('a guest flooding its console (emulator)', () => {
  let flood = '';
  let httpd = '';
  beforeAll(async () => {
    [flood, httpd] = await Promise.all([buildFlood('flood', { newlines: true, mib: 0 }), buildHttpd()]);
  }, 180_000);

  it('next to httpd with stdout a slow pipe: httpd answers within 100 ms, RSS stays bounded, Ctrl-C ends the run within 1 s', async () => {
    const r = await floodNextToHttpd(flood, httpd, await freePort(), { requests: 10, gapMs: 100, bytesPerTick: 2048 });
    // The median, so the test also holds while the rest of the suite loads both cores
    // (alone: p50 ~11 ms, p99 ~56 ms — `pnpm bench:flood`). Before the fix: no answer within 2 s.
    expect(percentile(r.latencies, 50), `latencies ${r.latencies.map((l) => l.toFixed(0)).join(' ')} ms`).toBeLessThan(100);
    expect(r.latencies.at(-1)!).toBeLessThan(1000);
    expect(r.maxRss).toBeLessThan(RSS_BOUND);
    expect(r.received).toBeGreaterThan(0); // the flood's output does reach the reader
    expect(r.stopMs).toBeLessThan(1000);
    expect(r.exitCode).toBe(130);
    expect(r.stderr).toContain('interrupted');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }, 240_000);

  it('with stdout a pipe nobody reads: memory stays bounded and SIGTERM stops the run in order', async () => {
    const proc = execa(DENALI, ['run', '--backend', 'emu', flood], { reject: false, stdin: 'ignore', buffer: false });
    proc.stdout!.pause(); // never read
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let maxRss = 0;
    const { rssOf } = await import('../bench/flood-harness.js');
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 100));
      maxRss = Math.max(maxRss, rssOf(proc.pid!));
    }
    const t0 = performance.now();
    proc.kill('SIGTERM');
    const r = await proc;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(r.exitCode).toBe(143);
    expect(err).toMatch(/terminated, stopping/);
    expect(err).toMatch(/bytes of console output not delivered/); // said once, counted
    expect(maxRss).toBeLessThan(RSS_BOUND);
  }, 60_000);

  it('two VMs writing without newlines: lines split at 4 KiB with their prefix, memory bounded, all bytes out', async () => {
    const img = await buildFlood('nonl', { newlines: false, mib: 16 });
    const r = await noNewlineFlood(img);
    expect(r.exitCode).toBe(0);
    expect(r.longestLine).toBeLessThanOrEqual(4096 + 'nonl-2 | '.length);
    // 16 MiB from each VM, plus one prefix and newline per 4 KiB line.
    expect(r.bytes).toBe(2 * 16 * MiB + 2 * ((16 * MiB) / 4096) * 'nonl | \n'.length + ((16 * MiB) / 4096) * '-2'.length);
    expect(r.maxRss).toBeLessThan(RSS_BOUND);
  }, 120_000);
});

describe('stopping during the build of a service directory leaves nothing behind', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGKILL'] as const)('%s', async (signal) => {
    const tmp = await mkdtemp(join(tmpdir(), 'denali-tmpdir-'));
    const dir = await cService('slow', `int main(void) { return 0; }\n`);
    const proc = execa(DENALI, ['run', '--backend', 'emu', dir], { reject: false, stdin: 'ignore', env: { TMPDIR: tmp } });
    // tsx keeps its compile cache (tsx-UID) in TMPDIR on purpose; anything else is ours.
    const ours = async (): Promise<string[]> => (await readdir(tmp)).filter((f) => !f.startsWith('tsx-'));
    // Wait until the build has made its temp dir, then stop.
    for (let i = 0; i < 2000 && (await ours()).length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    expect(await ours()).toEqual([expect.stringMatching(/^denali-run-/)]);
    proc.kill(signal);
    const r = await proc;
    if (signal !== 'SIGKILL') expect(r.exitCode).toBe(signal === 'SIGINT' ? 130 : 143);
    // SIGKILL: the watcher removes it as soon as the process is gone.
    let left = await ours();
    for (let i = 0; i < 40 && left.length > 0; i++) {
      await new Promise((res) => setTimeout(res, 100));
      left = await ours();
    }
    expect(left).toEqual([]);
  }, 60_000);
});
