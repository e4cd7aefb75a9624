/**
 * End-to-end tests of the C side: the examples and fixtures run natively under hostrun
 * (ptrace; see test/hostrun/hostrun.c), which emulates the Denali hypercalls and virtual
 * registers. Skipped, visibly, where the machine does not allow tracing a 32-bit process.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXAMPLES, FIXTURES, buildElf, getHostRun, hostStats, runElf } from './helpers.js';
import type { HostRun } from './helpers.js';

const hr: HostRun | string = await getHostRun();
const unavailable = typeof hr === 'string';
if (unavailable) console.warn(`hostrun tests skipped: ${hr}`);

function runner(): HostRun {
  if (typeof hr === 'string') throw new Error(hr);
  return hr;
}

async function runService(dir: string, input?: string, quantumUs?: number) {
  const { path, config } = await buildElf(dir);
  return runElf(runner(), path, [config.name, ...config.args], { memory: config.memory, stack: config.stack, input, quantumUs });
}

describe.skipIf(unavailable)('examples under hostrun', () => {
  it.each(['hello', 'threads', 'sha256'])('examples/%s prints expected-output.txt and exits 0', async (name) => {
    const r = await runService(join(EXAMPLES, name));
    expect(r.stdout).toBe(readFileSync(join(EXAMPLES, name, 'expected-output.txt'), 'utf8'));
    expect(r.exitCode).toBe(0);
  });

  it('examples/threads idles instead of spinning', async () => {
    const r = await runService(join(EXAMPLES, 'threads'));
    const s = hostStats(r.stderr);
    // ~60 ms of sleeping, spent inside a bounded number of IDLE hypercalls (a spinning
    // scheduler would make thousands); absolute bounds, loose enough for a busy machine.
    expect(s.idle_calls).toBeGreaterThan(10);
    expect(s.idle_calls).toBeLessThan(300);
    expect(s.idle_us).toBeGreaterThan(30_000);
    expect(s.hypercalls).toBeLessThan(1000);
  });

  it('examples/sdk-tests passes every libc and thread check', async () => {
    const r = await runService(join(EXAMPLES, 'sdk-tests'));
    expect(r.stdout).toBe(readFileSync(join(EXAMPLES, 'sdk-tests', 'expected-output.txt'), 'utf8'));
    expect(r.stdout).toMatch(/^sdk-tests: \d+ passed, 0 failed$/m);
    expect(r.exitCode).toBe(0);
  });
});

describe.skipIf(unavailable)('asynchronous upcalls at arbitrary instructions (quantum exits every 100 µs)', () => {
  it.each(['sdk-tests', 'threads'])('examples/%s is unaffected', async (name) => {
    const r = await runService(join(EXAMPLES, name), undefined, 100);
    expect(r.stdout).toBe(readFileSync(join(EXAMPLES, name, 'expected-output.txt'), 'utf8'));
    expect(r.exitCode).toBe(0);
  });

  it('examples/sha256 over 8 MiB computes the same digest as node:crypto', async () => {
    const kib = 8192;
    const data = Buffer.alloc(kib * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >>> 10)) & 255;
    const want = createHash('sha256').update(data).digest('hex');
    const { path } = await buildElf(join(EXAMPLES, 'sha256'));
    const r = await runElf(runner(), path, ['sha256', String(kib)], { memory: 4 << 20, quantumUs: 100 });
    expect(r.stdout).toContain(`sha256(${kib} KiB pattern) = ${want}\n`);
    expect(r.exitCode).toBe(0);
    expect(hostStats(r.stderr).upcalls).toBeGreaterThan(10);
  });
});

describe.skipIf(unavailable)('runtime behaviour under hostrun', () => {
  it('reports a deadlock and exits 125 instead of idling forever', async () => {
    const r = await runService(join(FIXTURES, 'deadlock'));
    expect(r.stdout).toBe('about to deadlock\nilwaco: deadlock: 2 threads blocked forever with nothing to wake them\n');
    expect(r.exitCode).toBe(125);
  });

  it('detects a thread stack overflow when the thread switches out', async () => {
    const r = await runService(join(FIXTURES, 'overflow'));
    expect(r.stdout).toBe('joining\nilwaco: thread 1 overflowed its stack (give thread_create a larger stack size)\n');
    expect(r.exitCode).toBe(134);
  });

  it('runs atexit handlers, flushes stdout, and exits with main thread_exit value after the last thread', async () => {
    const r = await runService(join(FIXTURES, 'atexit'));
    expect(r.stdout).toBe('to stderr\nworker done after main exited\natexit second registered, runs first\nbye (no newline)');
    expect(r.exitCode).toBe(7);
  });

  it('getchar blocks only the calling thread; the VM idles while waiting for input', async () => {
    const { path, config } = await buildElf(join(FIXTURES, 'echo'));
    const h = runner();
    const child = spawn(h.runner, [h.stub, path, '--stats', '--mem', String(config.memory), '--', config.name]);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    await sleep(50);
    child.stdin.write('hello\n');
    await sleep(50);
    child.stdin.write('denali vm\n');
    await sleep(30);
    child.stdin.end();
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(out).toBe('HELLO\nDENALI VM\nlines: 2\nticker ran while waiting: yes\n');
    expect(code).toBe(0);
    const s = hostStats(err);
    expect(s.idle_us).toBeGreaterThan(50_000); // ~130 ms waiting for input
    expect(s.idle_calls).toBeLessThan(500); // the ticker wakes every 2 ms; no spinning
  });
});
