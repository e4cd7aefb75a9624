/**
 * Test images of the differential tester. A batch of cases becomes ONE flat i386 program:
 * code at CODE_BASE, one record per case at DATA_BASE + k * REC.SIZE. For each case the code
 * loads XMM0-7 (when the case uses SSE), GPRs and EFLAGS from the record, runs the generated
 * instructions, and stores EFLAGS, GPRs, ESP and XMM0-7 back into the record. Memory operands
 * point into the record's scratch area and the stack lives in the record too, so a case's
 * whole effect is its record. The program ends with a `finish` stub that depends on where it
 * runs: `hlt` in a VM (emulator, KVM), or a Linux write(1, records) + exit for a host process.
 * The same bytes therefore run everywhere; only the stub after the last case differs.
 */

/** Where the code starts (all engines load the image here). */
export const CODE_BASE = 0x100000;
/** Where record 0 lives. Code must end before it. */
export const DATA_BASE = 0x200000;
/** Guest memory size the VM engines use. */
export const MEM_SIZE = 4 << 20;

/** Record layout (byte offsets). */
export const REC = {
  /** popal image (EDI ESI EBP - EBX EDX ECX EAX) then EFLAGS for popfl. */
  IN: 0,
  /** pushal image, EFLAGS (+32), ESP (+36). */
  OUT: 48,
  XIN: 96,
  XOUT: 224,
  /** Scratch memory for memory operands; EBX (the pointer register) holds SCRATCH + PTR_OFF. */
  SCRATCH: 352,
  SCRATCH_LEN: 512,
  /** The stack: ESP starts at STACK_TOP (pops may read up to STACK_END). */
  STACK: 864,
  STACK_TOP: 1248,
  STACK_END: 1376,
  SIZE: 1376,
} as const;

/** EBX = record + SCRATCH + PTR_OFF for the whole sequence: [ebx + disp8] reaches all of the scratch area. */
export const PTR_OFF = 128;

/** A code byte, or a 32-bit little-endian address relative to the case's record (`{ rel }`). */
export type CodePiece = number | { rel: number };

/** One case: initial state and code. `regs[4]` (ESP) is ignored: ESP starts at STACK_TOP. */
export interface CaseInput {
  /** Code pieces of the instructions under test (branches already resolved). */
  code: CodePiece[];
  /** EAX..EDI initial values; `{ rel }` = an address inside the record. */
  regs: (number | { rel: number })[];
  eflags: number;
  /** 128 bytes for XMM0-7, or null when the case does not use SSE (no XMM load/store). */
  xmm: Uint8Array | null;
  /** REC.SCRATCH_LEN bytes. */
  scratch: Uint8Array;
  /** REC.STACK_END - REC.STACK bytes. */
  stack: Uint8Array;
}

/** Final state of one case as stored in its record. */
export interface CaseOutput {
  gpr: number[];
  eflags: number;
  xmm: Uint8Array | null;
  scratch: Uint8Array;
  stack: Uint8Array;
}

export type Finish = 'hlt' | 'linux';

export interface BuiltImage {
  code: Uint8Array;
  /** Initial data area (all records). */
  data: Uint8Array;
  /** Address of case k's first instruction. */
  caseStart: number[];
  /** Address where case k's own instructions start (after the prologue) and end (epilogue). */
  bodyStart: number[];
  bodyEnd: number[];
  /** Address of the finish stub. */
  finish: number;
}

const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];

/** Record address of case k. */
export function recordAddress(k: number): number {
  return DATA_BASE + k * REC.SIZE;
}

/**
 * Build the batch image (code, initial data). `first`: index of the first case's record (a
 * sub-batch keeps its records at the addresses of the full batch; earlier records stay zero).
 */
export function buildImage(cases: CaseInput[], finish: Finish, first = 0): BuiltImage {
  const code: number[] = [];
  const caseStart: number[] = [];
  const bodyStart: number[] = [];
  const bodyEnd: number[] = [];
  const data = new Uint8Array((first + cases.length) * REC.SIZE);
  const dv = new DataView(data.buffer);
  cases.forEach((c, j) => {
    const k = first + j;
    const R = recordAddress(k);
    caseStart.push(CODE_BASE + code.length);
    // movdqu xmmj, [R + XIN + 16j]
    if (c.xmm) for (let j = 0; j < 8; j++) code.push(0xf3, 0x0f, 0x6f, 0x05 | (j << 3), ...le32(R + REC.XIN + 16 * j));
    code.push(0xbc, ...le32(R + REC.IN)); // mov esp, R+IN
    code.push(0x61, 0x9d); // popal; popfl
    code.push(0xbc, ...le32(R + REC.STACK_TOP)); // mov esp, R+STACK_TOP
    bodyStart.push(CODE_BASE + code.length);
    for (const p of c.code) {
      if (typeof p === 'number') code.push(p & 0xff);
      else code.push(...le32(R + p.rel));
    }
    bodyEnd.push(CODE_BASE + code.length);
    code.push(0x89, 0x25, ...le32(R + REC.OUT + 36)); // mov [R+OUT+36], esp
    code.push(0xbc, ...le32(R + REC.OUT + 36)); // mov esp, R+OUT+36
    code.push(0x9c, 0x60); // pushfl; pushal
    if (c.xmm) for (let j = 0; j < 8; j++) code.push(0xf3, 0x0f, 0x7f, 0x05 | (j << 3), ...le32(R + REC.XOUT + 16 * j));
    // Record contents.
    const base = k * REC.SIZE;
    const order = [7, 6, 5, 4, 3, 2, 1, 0];
    order.forEach((r, m) => {
      const v = r === 4 ? 0 : c.regs[r];
      dv.setUint32(base + REC.IN + 4 * m, typeof v === 'number' ? v >>> 0 : (R + v.rel) >>> 0, true);
    });
    dv.setUint32(base + REC.IN + 32, c.eflags >>> 0, true);
    if (c.xmm) data.set(c.xmm, base + REC.XIN);
    data.set(c.scratch, base + REC.SCRATCH);
    data.set(c.stack, base + REC.STACK);
  });
  const finishAddr = CODE_BASE + code.length;
  if (finish === 'hlt') code.push(0xf4);
  else {
    code.push(0xb8, ...le32(4)); // mov eax, 4 (write)
    code.push(0xbb, ...le32(1)); // mov ebx, 1
    code.push(0xb9, ...le32(DATA_BASE)); // mov ecx, DATA_BASE
    code.push(0xba, ...le32(data.length)); // mov edx, len
    code.push(0xcd, 0x80); // int 0x80
    code.push(0xb8, ...le32(1), 0x31, 0xdb, 0xcd, 0x80); // exit(0)
  }
  if (CODE_BASE + code.length > DATA_BASE) throw new Error(`batch code too large (${code.length} bytes)`);
  return { code: new Uint8Array(code), data, caseStart, bodyStart, bodyEnd, finish: finishAddr };
}

/** Read case k's final state from the data area. */
export function readOutput(data: Uint8Array, k: number, withXmm: boolean): CaseOutput {
  const base = k * REC.SIZE;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const gpr = new Array<number>(8);
  [7, 6, 5, 4, 3, 2, 1, 0].forEach((r, m) => (gpr[r] = dv.getUint32(base + REC.OUT + 4 * m, true)));
  gpr[4] = dv.getUint32(base + REC.OUT + 36, true);
  return {
    gpr,
    eflags: dv.getUint32(base + REC.OUT + 32, true),
    xmm: withXmm ? data.slice(base + REC.XOUT, base + REC.XOUT + 128) : null,
    scratch: data.slice(base + REC.SCRATCH, base + REC.SCRATCH + REC.SCRATCH_LEN),
    stack: data.slice(base + REC.STACK, base + REC.STACK_END),
  };
}

/**
 * A static i386 Linux ELF executable of the image (two PT_LOAD segments: code r-x at
 * CODE_BASE, data rw- at DATA_BASE). Written by hand: no assembler or linker needed.
 */
export function elfExecutable(img: BuiltImage): Uint8Array {
  const codeOff = 0x1000;
  const dataOff = codeOff + Math.ceil(img.code.length / 0x1000) * 0x1000;
  const out = new Uint8Array(dataOff + img.data.length);
  const dv = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0]); // ELF, 32-bit, little-endian, v1, SysV
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 3, true); // EM_386
  dv.setUint32(20, 1, true);
  dv.setUint32(24, CODE_BASE, true); // e_entry
  dv.setUint32(28, 52, true); // e_phoff
  dv.setUint32(32, 0, true); // e_shoff
  dv.setUint16(40, 52, true); // e_ehsize
  dv.setUint16(42, 32, true); // e_phentsize
  dv.setUint16(44, 2, true); // e_phnum
  dv.setUint16(46, 40, true); // e_shentsize
  const ph = (i: number, off: number, vaddr: number, size: number, flags: number) => {
    const p = 52 + 32 * i;
    dv.setUint32(p, 1, true); // PT_LOAD
    dv.setUint32(p + 4, off, true);
    dv.setUint32(p + 8, vaddr, true);
    dv.setUint32(p + 12, vaddr, true);
    dv.setUint32(p + 16, size, true);
    dv.setUint32(p + 20, size, true);
    dv.setUint32(p + 24, flags, true);
    dv.setUint32(p + 28, 0x1000, true);
  };
  ph(0, codeOff, CODE_BASE, img.code.length, 5);
  ph(1, dataOff, DATA_BASE, Math.max(1, img.data.length), 6);
  out.set(img.code, codeOff);
  out.set(img.data, dataOff);
  return out;
}
