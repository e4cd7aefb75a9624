import type { FaultCause } from '../vcpu.js';
import type { EmuCpu } from './cpu.js';

/**
 * Executes one decoded instruction. Handlers read operands through the record, update the
 * CPU, and raise faults by throwing a `CpuFault` (never anything else).
 */
export type Handler = (c: EmuCpu, i: Instr) => void;

/** Operand size class of a table entry. */
export type OpSize =
  | 'b' // byte
  | 'w' // word, always 16-bit
  | 'd' // dword, always 32-bit
  | 'v' // 16 or 32 bits by the 0x66 prefix
  | 'q' // 64-bit memory operand
  | 'x' // 128-bit XMM operand
  | 'f' // x87 operand (size given by the entry)
  | 'none';

/** Immediate operand kinds that follow ModRM/SIB/displacement. */
export type ImmKind =
  | 'none'
  | 'ib' // 8-bit, zero-extended
  | 'ibs' // 8-bit, sign-extended to the operand size
  | 'iw' // 16-bit
  | 'iz' // 16 or 32 bits by operand size (sign-extends for 'v' ops)
  | 'iwib' // enter: imm16 then imm8
  | 'rel8' // 8-bit relative branch target
  | 'relz' // 16/32-bit relative branch target
  | 'moffs' // 32-bit absolute address (mov A0-A3)
  | 'ptr'; // far pointer (only in deprecated instructions)

/**
 * One entry of the instruction table (`table.ts`): everything the decoder, the interpreter,
 * the tests, and a future block compiler need to know about an opcode.
 */
export interface OpSpec {
  /** Mnemonic as in the Intel SDM vol. 2 (lowercase). */
  mnemonic: string;
  /** Opcode after prefixes: 0x00-0xff one-byte, 0x0f00-0x0fff two-byte. */
  op: number;
  /** Mandatory SSE prefix selecting this entry (0x66, 0xf3, 0xf2), 0 for none. */
  pfx: number;
  /** ModRM.reg opcode extension (/digit), or -1. */
  ext: number;
  /** Restricts ModRM.mod: 'reg' (mod = 3 only), 'mem' (mod != 3 only) or 'any'. */
  form: 'reg' | 'mem' | 'any';
  /** For x87 register forms that use all of ModRM (e.g. D9 E8 fld1): the exact ModRM.rm, else -1. */
  rmExact: number;
  /** The instruction has a ModRM byte. */
  modrm: boolean;
  /** The low 3 opcode bits name a register (40+r, B8+r, 0F C8+r ...): the entry covers op..op+7. */
  plusR: boolean;
  size: OpSize;
  imm: ImmKind;
  /** Flags the instruction writes with defined values (SDM "Flags Affected"). */
  flagsOut: number;
  /** Flags the SDM leaves undefined after the instruction. */
  flagsUndef: number;
  /** Flags the instruction reads. */
  flagsIn: number;
  /** LOCK is allowed (with a memory destination). */
  lockable: boolean;
  /** Ends a basic block (changes EIP, exits to the VMM, or may fault by design). */
  term: boolean;
  /** Op-specific selector copied into `Instr.sub` (ALU operation, condition code, shift kind...). */
  sub: number;
  /** Generic executor. */
  exec: Handler;
  /** Optional: a faster executor for a given decoded form (e.g. 32-bit register-only). */
  fast?: (i: Instr) => Handler | undefined;
  /** How the oracle tests exercise the entry (see test/emu/oracle.test.ts). */
  test: TestKind;
}

/**
 * Test strategy tags. 'oracle' entries are compared against the host CPU with random
 * operands; the others are covered by named directed tests (listed in the coverage test).
 */
export type TestKind = 'oracle' | 'directed' | 'fault' | 'x87' | 'sse';

/** A decoded instruction: the unit the block cache stores and the interpreter runs. */
export class Instr {
  /** Guest address of the first byte (including prefixes). */
  addr = 0;
  /** Length in bytes (1..15). */
  len = 0;
  /** addr + len: the fall-through EIP. */
  next = 0;
  /** Position inside its decoded block (number of instructions before it in that block). */
  idx = 0;
  exec: Handler;
  spec: OpSpec | null = null;
  /** Opcode (as in OpSpec.op, plus the register for plusR entries). */
  opcode = 0;
  /** Operand size in bytes: 1, 2 or 4 for integer operations. */
  opsize = 4;
  /** The ModRM operand is memory. */
  mem = false;
  /** ModRM.reg (or the register of plusR opcodes). */
  reg = 0;
  /** ModRM.rm when it names a register. */
  rm = 0;
  /** Effective address form: 0 disp, 1 base+disp, 2 base+index*scale+disp, 3 index*scale+disp. */
  eaKind = 0;
  base = 0;
  index = 0;
  /** log2 of the SIB scale. */
  scale = 0;
  /** Displacement, int32. */
  disp = 0;
  /** First immediate (masked/sign-extended per the entry's ImmKind), or the branch target. */
  imm = 0;
  /** Second immediate (enter's nesting level). */
  imm2 = 0;
  /** Copy of OpSpec.sub. */
  sub = 0;
  /** Repeat prefix: 0, 0xf3 (rep/repe) or 0xf2 (repne). */
  rep = 0;
  /** Segment override prefix byte, 0 for none (all segments are flat; recorded for tools). */
  seg = 0;
  lock = false;
  term = false;
  /** For records that fault when executed (invalid/deprecated opcodes, fetch faults). */
  faultCause: FaultCause = 'invalid-opcode';
  faultDetail = '';
  faultAddress = 0;

  constructor(exec: Handler) {
    this.exec = exec;
  }
}
