import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { ElfError, parseElf32 } from '../src/index.js';
import { EXAMPLES, buildElf } from './helpers.js';

let elf: Uint8Array;
let elfPath: string;

beforeAll(async () => {
  const built = await buildElf(join(EXAMPLES, 'hello'));
  elf = built.elf;
  elfPath = built.path;
});

function patched(edit: (dv: DataView, bytes: Uint8Array) => void): Uint8Array {
  const copy = elf.slice();
  edit(new DataView(copy.buffer), copy);
  return copy;
}

describe('parseElf32 on a gcc-linked Ilwaco executable', () => {
  it('finds the r-x, r-- and rw- segments at 1 MiB and the entry point', async () => {
    const exe = parseElf32(elf);
    expect(exe.segments.map((s) => s.flags)).toEqual(['rx', 'r', 'rw']);
    expect(exe.segments[0]!.loadAddress).toBe(0x100000);
    for (const s of exe.segments) {
      expect(s.loadAddress % 0x1000).toBe(0);
      expect(s.data.length).toBeLessThanOrEqual(s.memorySize);
    }
    const text = exe.segments[0]!;
    expect(exe.entry).toBeGreaterThanOrEqual(text.loadAddress);
    expect(exe.entry).toBeLessThan(text.loadAddress + text.memorySize);
    // Cross-check with binutils: entry point and the symbol _start.
    const { stdout } = await execa('readelf', ['-h', elfPath]);
    expect(stdout).toMatch(new RegExp(`Entry point address:\\s+0x${exe.entry.toString(16)}`));
    const nm = await execa('nm', [elfPath]);
    expect(nm.stdout).toMatch(new RegExp(`^0*${exe.entry.toString(16)} T _start$`, 'm'));
    // bss: the data segment is larger in memory than in the file.
    expect(exe.segments[2]!.memorySize).toBeGreaterThan(exe.segments[2]!.data.length);
  });

  it('leaves no undefined symbols, notes or unwind tables in the executable', async () => {
    const { stdout } = await execa('nm', ['-u', elfPath]);
    expect(stdout.trim()).toBe('');
    const sections = (await execa('readelf', ['-S', '-W', elfPath])).stdout;
    expect(sections).not.toMatch(/\.eh_frame|\.note\.gnu|\.comment\s+PROGBITS.*\bA\b/);
    const phdrs = (await execa('readelf', ['-l', '-W', elfPath])).stdout;
    expect(phdrs.match(/^\s+LOAD/gm)).toHaveLength(3);
  });

  it('rejects files that are not static ELF32 i386 executables', () => {
    const bad = (bytes: Uint8Array, re: RegExp) => {
      expect(() => parseElf32(bytes)).toThrow(ElfError);
      expect(() => parseElf32(bytes)).toThrow(re);
    };
    bad(elf.slice(0, 20), /too short/);
    bad(patched((_, b) => (b[0] = 0)), /bad magic/);
    bad(patched((_, b) => (b[4] = 2)), /not ELF32/);
    bad(patched((_, b) => (b[5] = 2)), /little-endian/);
    bad(patched((dv) => dv.setUint16(16, 3, true)), /not an executable/);
    bad(patched((dv) => dv.setUint16(18, 62, true)), /not an i386/);
    bad(patched((dv) => dv.setUint32(28, elf.length - 10, true)), /program header table extends past/);
    const phoff = new DataView(elf.buffer, elf.byteOffset).getUint32(28, true);
    bad(patched((dv) => dv.setUint32(phoff + 16, 0xfffffff, true)), /file size .* exceeds memory size|outside the file/);
    bad(patched((dv) => dv.setUint32(phoff + 4, elf.length, true)), /outside the file/);
    bad(patched((dv) => dv.setUint32(phoff, 3, true)), /PT_INTERP/);
    bad(patched((dv) => dv.setUint32(phoff + 24, 1, true)), /not readable/);
    bad(patched((dv) => dv.setUint16(44, 0, true)), /no program headers/);
  });
});
