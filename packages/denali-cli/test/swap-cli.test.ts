/** `denali run --memory-budget/--swap-dir`: the budget is printed, idle VMs swap, the area is removed on exit. */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { denali, denaliBin, freePort, root } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'denali-swap-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const INDEX = readFileSync(join(root, 'examples/httpd/assets/index.html'));

describe('denali run memory options', () => {
  it('prints the memory budget and swap area at start (services, or when asked)', async () => {
    const r = await denali(['run', '--backend', 'emu', '--memory-budget', '64M', '--swap-dir', dir, 'examples/hello']);
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toContain(`denali: memory budget 64.0 MiB; idle VMs swap to ${dir}/yakima-`);
    const d = await denali(['run', '--backend', 'emu', '--net', 'user', 'examples/hello']);
    expect(d.stderr).toMatch(/denali: memory budget [\d.]+ [GM]iB \(half of the available memory; --memory-budget to change\)/);
    // A batch run without a network says nothing about memory.
    const quiet = await denali(['run', '--backend', 'emu', 'examples/hello']);
    expect(quiet.stderr).toBe('');
  });

  it('rejects a bad budget with one line', async () => {
    for (const bad of ['0', 'lots', '-5M']) {
      const r = await denali(['run', '--memory-budget', bad, 'examples/hello']);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/--memory-budget/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it('swaps idle httpd VMs under a tiny budget, answers from each, and removes the swap area on exit', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const proc = execa(denaliBin, ['run', '--backend', 'emu', '--memory-budget', '1M', '--swap-dir', dir, 'examples/httpd', 'examples/httpd', '-p', `${p1}:1:80`, '-p', `${p2}:2:80`, '--', '80', '2'], {
      reject: false,
      env: { DENALI_DEBUG: '' },
    });
    let out = '';
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 90_000;
      const ok = async (p: number): Promise<Buffer | undefined> => {
        try {
          const r = await fetch(`http://127.0.0.1:${p}/index.html`, { signal: AbortSignal.timeout(5000) });
          return r.status === 200 ? Buffer.from(await r.arrayBuffer()) : undefined;
        } catch {
          return undefined;
        }
      };
      for (const p of [p1, p2, p1, p2]) {
        let body: Buffer | undefined;
        while (!(body = await ok(p))) {
          if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`no answer on ${p}: ${out}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(body.equals(INDEX)).toBe(true);
        await new Promise((r) => setTimeout(r, 100)); // let the VM idle (and be swapped out) again
      }
      expect(readdirSync(dir).length).toBe(1); // the swap area exists while running
    } finally {
      proc.kill('SIGINT');
      await proc;
    }
    expect(out).toContain('denali: memory budget 1.0 MiB');
    expect(out).not.toMatch(/cannot swap/);
    expect(readdirSync(dir)).toEqual([]);
  }, 120_000);
});
