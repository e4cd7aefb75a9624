/**
 * Differential test of the guest's printf engine (lib/printf.c) against glibc: printf.c is
 * compiled for the host with its entry points renamed, linked into test/native/printf-fuzz.c,
 * and both format the same random doubles and integers.
 */
import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sdkPaths } from '../src/index.js';
import { scratchDir } from './helpers.js';

describe('lib/printf.c compiled for the host', () => {
  it('formats like glibc (f/e/g up to 17 significant digits, integers with every flag)', async () => {
    const dir = await scratchDir();
    const { includeDir, libDir } = sdkPaths();
    const gccInc = (await execa('gcc', ['-print-file-name=include'])).stdout.trim();
    const obj = join(dir, 'il_printf.o');
    const rename = ['snprintf', 'vsnprintf', 'sprintf', 'vsprintf'].map((f) => `-D${f}=il_${f}`);
    await execa('gcc', ['-O2', '-c', '-ffreestanding', '-fno-builtin', '-nostdinc', '-isystem', includeDir, '-isystem', gccInc, ...rename, join(libDir, 'printf.c'), '-o', obj]);
    const exe = join(dir, 'printf-fuzz');
    await execa('gcc', ['-O2', '-w', join(import.meta.dirname, 'native', 'printf-fuzz.c'), obj, '-lm', '-o', exe]);
    const r = await execa(exe, ['4000'], { reject: false });
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(r.exitCode).toBe(0);
  });
});
