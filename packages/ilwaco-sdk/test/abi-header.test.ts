import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CONSOLE_ARGS, HYPERCALL, IRQ, LAYOUT, VREG_RO, VREG_RW } from '@denali/image-format';
import { ABI_HEADER_PATH, generateAbiHeader } from '../scripts/gen-abi-header.js';
import { sdkPaths } from '../src/index.js';
import { freshDir } from './helpers.js';

describe('include/denali/abi.h', () => {
  it('is exactly what gen-abi-header.ts produces from abi.ts (run `pnpm gen:abi` if this fails)', () => {
    expect(readFileSync(ABI_HEADER_PATH, 'utf8')).toBe(generateAbiHeader());
  });

  it('defines every constant with the DENALI_ prefix and the values of abi.ts', () => {
    const h = generateAbiHeader();
    const def = (name: string) => {
      const m = new RegExp(`^#define ${name}\\s+(\\S+)$`, 'm').exec(h);
      expect(m, name).not.toBeNull();
      return Number(m![1]);
    };
    expect(def('DENALI_VREG_RO_BASE')).toBe(LAYOUT.VREG_RO_BASE);
    expect(def('DENALI_VREG_RW_BASE')).toBe(LAYOUT.VREG_RW_BASE);
    expect(def('DENALI_HYPERCALL_IDLE')).toBe(HYPERCALL.IDLE);
    expect(def('DENALI_IRQ_TIMER')).toBe(IRQ.TIMER);
    expect(def('DENALI_CONSOLE_ARGS_DONE')).toBe(CONSOLE_ARGS.DONE);
    expect(def('DENALI_VREG_RO_BOOTARGS_LEN')).toBe(VREG_RO.BOOTARGS_LEN);
    expect(def('DENALI_VREG_RW_WALLCLOCK')).toBe(VREG_RW.WALLCLOCK);
    expect(def('DENALI_TICK_RATE')).toBe(1_000_000);
    expect(h).toContain('struct denali_console_args {');
    // Every table member of abi.ts is there (new ABI additions appear without editing the generator).
    for (const [table, members] of Object.entries({ VREG_RO, VREG_RW, IRQ, HYPERCALL, CONSOLE_ARGS })) {
      for (const [k, v] of Object.entries(members)) expect(def(`DENALI_${table}_${k}`)).toBe(v);
    }
    expect(h).toContain('_Static_assert(offsetof(struct denali_idle_args, timeout_hi) == DENALI_IDLE_ARGS_TIMEOUT_HI');
  });

  it('compiles for the guest (its _Static_asserts hold) and from assembly', async () => {
    const dir = await freshDir('abi-h-');
    const inc = sdkPaths().includeDir;
    const gccInc = (await execa('gcc', ['-m32', '-print-file-name=include'])).stdout.trim();
    await writeFile(join(dir, 'a.c'), '#include <denali/abi.h>\nint x = DENALI_CONSOLE_ARGS_SIZE;\n');
    await writeFile(join(dir, 'a.S'), '#include <denali/abi.h>\n movl $DENALI_VREG_RW_BASE + DENALI_VREG_RW_PENDING, %eax\n');
    const flags = ['-m32', '-ffreestanding', '-nostdinc', '-isystem', inc, '-isystem', gccInc, '-c'];
    await execa('gcc', [...flags, join(dir, 'a.c'), '-o', join(dir, 'a.o')]);
    await execa('gcc', [...flags, join(dir, 'a.S'), '-o', join(dir, 'b.o')]);
  });
});
