import { execa } from 'execa';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readImageFile } from '@denali/image-format';
import { BuildError, buildSdkLibrary, buildService, sdkPaths } from '../src/index.js';
import { EXAMPLES, FIXTURES, freshDir } from './helpers.js';

const EXAMPLE_NAMES = ['hello', 'threads', 'sha256', 'sdk-tests'];

describe('buildService', () => {
  it.each(EXAMPLE_NAMES)('builds examples/%s into an image readImage accepts', async (name) => {
    const out = join(await freshDir('img-'), `${name}.dni`);
    const r = await buildService(join(EXAMPLES, name), { out, quiet: true });
    expect(r.imagePath).toBe(out);
    expect(r.imageBytes).toBe(statSync(out).size);
    const img = await readImageFile(out);
    expect(img.manifest).toEqual(r.manifest);
    const json = JSON.parse(readFileSync(join(EXAMPLES, name, 'denali.json'), 'utf8'));
    expect(img.manifest.name).toBe(json.name);
    expect(img.manifest.args).toEqual(json.args ?? []);
    const text = img.manifest.segments.find((s) => s.flags === 'rx')!;
    expect(img.manifest.entryPoint).toBeGreaterThanOrEqual(text.loadAddress);
    expect(img.manifest.entryPoint).toBeLessThan(text.loadAddress + text.memorySize);
    expect(img.manifest.segments.every((s) => s.loadAddress >= 0x100000)).toBe(true);
  });

  it('writes <name>.dni in the current directory by default', async () => {
    const dir = await freshDir('cwd-');
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const r = await buildService(join(EXAMPLES, 'hello'), { quiet: true });
      expect(r.imagePath).toBe(join(dir, 'hello.dni'));
      expect(existsSync(r.imagePath)).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it('reuses the cached SDK library', async () => {
    const a = await buildSdkLibrary('gcc');
    const t = Date.now();
    const b = await buildSdkLibrary('gcc');
    expect(Date.now() - t).toBeLessThan(1000);
    expect(b).toEqual(a);
    expect(a.archive.startsWith(sdkPaths().buildDir)).toBe(true);
    const members = (await execa('ar', ['t', a.archive])).stdout.split('\n');
    expect(members).toEqual(expect.arrayContaining(['printf.o', 'malloc.o', 'thread.o', 'switch.o', 'divdi3.o']));
    expect(members).not.toContain('crt0.o');
  });

  it('passes the compiler error through unchanged', async () => {
    const err = await buildService(join(FIXTURES, 'broken'), { out: join(await freshDir('x-'), 'never.dni'), quiet: true }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildError);
    // Reproduce gcc's message directly and compare.
    const direct = await execa('gcc', ['-fsyntax-only', join(FIXTURES, 'broken', 'broken.c')], { reject: false });
    const line = direct.stderr.split('\n').find((l) => l.includes('undeclared_variable'))!;
    expect(err.message).toMatch(/^compiling broken.c failed:\n/);
    expect(err.message).toContain(line);
  });

  it('explains a missing compiler in one line', async () => {
    const err = await buildService(join(EXAMPLES, 'hello'), { cc: 'no-such-cc-xyz', quiet: true }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toBe(
      "no C compiler found (looked for 'no-such-cc-xyz'): install gcc (e.g. `apt-get install gcc`) or set CC",
    );
  });

  it('uses $CC when no cc option is given', async () => {
    const saved = process.env.CC;
    process.env.CC = 'also-no-such-cc';
    try {
      const err = await buildService(join(EXAMPLES, 'hello'), { quiet: true }).catch((e) => e);
      expect(err.message).toMatch(/looked for 'also-no-such-cc'/);
    } finally {
      if (saved === undefined) delete process.env.CC;
      else process.env.CC = saved;
    }
  });

  it('reports a bad denali.json before compiling', async () => {
    const err = await buildService(join(FIXTURES, 'nonexistent')).catch((e) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toMatch(/service directory not found/);
  });
});
