/**
 * A small, strict ELF32 reader: just enough to turn a statically linked i386 executable
 * (as produced with `lib/ilwaco.ld`) into Denali image segments.
 *
 * Reference: System V ABI, "ELF header" and "Program header" (ELF32, little-endian, EM_386).
 * Only PT_LOAD program headers are used; sections are ignored. Anything that would need a
 * dynamic loader (PT_INTERP, PT_DYNAMIC) or thread-local storage (PT_TLS) is rejected.
 */
import type { SegmentFlags, SegmentInput } from '@denali/image-format';
import { ElfError } from './errors.js';

/** A parsed executable: entry point and loadable segments in program-header order. */
export interface ElfExecutable {
  /** e_entry: guest address of the first instruction. */
  entry: number;
  /** PT_LOAD segments with a non-zero memory size; `data` holds p_filesz bytes (a copy). */
  segments: SegmentInput[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const PT_TLS = 7;
const PF_X = 1;
const PF_W = 2;
const PF_R = 4;
const EHDR_SIZE = 52;
const PHDR_SIZE = 32;

/**
 * Parse `bytes` as an ELF32 little-endian i386 ET_EXEC file.
 * @throws ElfError naming the first rule broken (bad magic, class, byte order, type, machine,
 *   program headers outside the file, a segment whose bytes lie outside the file or whose
 *   file size exceeds its memory size, a dynamic/TLS executable, or a segment not readable).
 */
export function parseElf32(bytes: Uint8Array): ElfExecutable {
  if (bytes.length < EHDR_SIZE) throw new ElfError(`file is ${bytes.length} bytes, too short for an ELF header`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) {
    throw new ElfError('not an ELF file (bad magic)');
  }
  if (bytes[4] !== 1) throw new ElfError(`not ELF32 (EI_CLASS ${bytes[4]}); compile with -m32`);
  if (bytes[5] !== 1) throw new ElfError(`not little-endian (EI_DATA ${bytes[5]})`);
  if (bytes[6] !== 1) throw new ElfError(`unknown ELF version ${bytes[6]}`);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const type = u16(16);
  if (type !== 2) throw new ElfError(`not an executable (e_type ${type}; expected ET_EXEC, link with -static -no-pie)`);
  const machine = u16(18);
  if (machine !== 3) throw new ElfError(`not an i386 executable (e_machine ${machine})`);
  if (u32(20) !== 1) throw new ElfError(`unknown ELF version ${u32(20)}`);
  const entry = u32(24);
  const phoff = u32(28);
  const phentsize = u16(42);
  const phnum = u16(44);
  if (phnum === 0) throw new ElfError('no program headers');
  if (phentsize !== PHDR_SIZE) throw new ElfError(`program header size ${phentsize}, expected ${PHDR_SIZE}`);
  if (phoff + phnum * PHDR_SIZE > bytes.length) throw new ElfError('program header table extends past the end of the file');

  const segments: SegmentInput[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * PHDR_SIZE;
    const pType = u32(o);
    if (pType === PT_INTERP || pType === PT_DYNAMIC) {
      throw new ElfError(`program header ${i} is ${pType === PT_INTERP ? 'PT_INTERP' : 'PT_DYNAMIC'}: dynamically linked executables are not supported`);
    }
    if (pType === PT_TLS) throw new ElfError(`program header ${i} is PT_TLS: thread-local storage is not supported`);
    if (pType !== PT_LOAD) continue;
    const offset = u32(o + 4);
    const vaddr = u32(o + 8);
    const filesz = u32(o + 16);
    const memsz = u32(o + 20);
    const pflags = u32(o + 24);
    if (filesz > memsz) throw new ElfError(`segment ${i}: file size ${filesz} exceeds memory size ${memsz}`);
    if (offset + filesz > bytes.length) throw new ElfError(`segment ${i}: bytes ${offset}..${offset + filesz} lie outside the file`);
    if (vaddr + memsz > 0x1_0000_0000) throw new ElfError(`segment ${i}: ends beyond 4 GiB`);
    if (memsz === 0) continue;
    if ((pflags & PF_R) === 0) throw new ElfError(`segment ${i} at 0x${vaddr.toString(16)} is not readable (flags ${pflags})`);
    const flags = ('r' + (pflags & PF_W ? 'w' : '') + (pflags & PF_X ? 'x' : '')) as SegmentFlags;
    segments.push({ loadAddress: vaddr, memorySize: memsz, flags, data: bytes.slice(offset, offset + filesz) });
  }
  if (segments.length === 0) throw new ElfError('no loadable (PT_LOAD) segments');
  return { entry, segments };
}
