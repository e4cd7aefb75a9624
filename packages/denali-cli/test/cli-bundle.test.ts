import { stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { denaliBin, root } from './helpers.js';

/** The esbuild bundle of the CLI (scripts/build-cli.mjs, run at install) and bin/denali's choice of it. */
describe('CLI bundle', () => {
  const bundle = join(root, 'packages/denali-cli/dist/denali.mjs');
  const run = (args: string[], env: Record<string, string> = {}) => execa(denaliBin, args, { cwd: root, reject: false, env: { DENALI_DEBUG: '1', ...env } });

  it('pnpm build:cli makes one file that bin/denali runs while it is fresh', async () => {
    const b = await execa('node', ['scripts/build-cli.mjs'], { cwd: root });
    expect(b.stdout).toMatch(/^denali CLI bundled: packages\/denali-cli\/dist\/denali\.mjs \(\d+ KiB, \d+ sources\)/);
    const direct = await execa('node', [bundle, '--version'], { cwd: root });
    expect(direct.stdout).toBe('0.1.0');
    const v = await run(['--version']);
    expect(v.stdout).toBe('0.1.0');
    expect(v.stderr).toBe('denali: running the bundle');
    // The bundle is a whole CLI: a command that boots a VM works through it.
    const r = await execa('node', [bundle, 'run', '--backend', 'emu', 'examples/hello'], { cwd: root, reject: false });
    expect(r.stdout).toContain('Hello from Denali VM hello!');
    expect(r.exitCode).toBe(0);
  });

  it('falls back to the TypeScript sources when a source is newer than the bundle, or on DENALI_FROM_SOURCE', async () => {
    const src = join(root, 'packages/denali-cli/src/version.ts');
    const before = await stat(src);
    const future = new Date(Date.now() + 3600_000);
    await utimes(src, future, future);
    try {
      const v = await run(['--version']);
      expect(v.stdout).toBe('0.1.0');
      expect(v.stderr).toMatch(/running the TypeScript sources \(the bundle is missing or stale/);
    } finally {
      await utimes(src, before.atime, before.mtime);
    }
    expect((await run(['--version'])).stderr).toBe('denali: running the bundle');
    expect((await run(['--version'], { DENALI_FROM_SOURCE: '1' })).stderr).toMatch(/TypeScript sources/);
  });
});
