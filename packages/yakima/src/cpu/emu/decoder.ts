import type { GuestMemory } from '../../boot/guest-memory.js';
import type { FaultCause } from '../vcpu.js';
import { fault } from './fault.js';
import { Instr, type OpSpec } from './instr.js';
import { TABLE } from './table.js';

/**
 * Instruction decoder generated from the instruction table (Intel SDM vol. 2, chapter 2:
 * prefixes, opcode, ModRM, SIB, displacement, immediate). Decoding happens once per basic
 * block; the cost here does not matter for speed, only the records it produces.
 */

/** Mandatory-prefix classes of the two-byte map. */
const PFX_NONE = 0;
const PFX_66 = 1;
const PFX_F3 = 2;
const PFX_F2 = 3;

function pfxClass(p: number): number {
  return p === 0x66 ? PFX_66 : p === 0xf3 ? PFX_F3 : p === 0xf2 ? PFX_F2 : PFX_NONE;
}

/** Candidate entries per (map, prefix class, opcode byte): key = map << 10 | class << 8 | byte. */
const candidates: OpSpec[][] = [];
/** Two-byte opcodes whose meaning depends on 66/F2/F3 (SSE): the prefix is mandatory, not a size override. */
const prefixed = new Uint8Array(256);
/** Entries that need ModRM, per map << 8 | byte (all candidates of an opcode agree). */
const hasModrm = new Uint8Array(512);

for (const s of TABLE) {
  const map = s.op >> 8 === 0x0f ? 1 : 0;
  const count = s.plusR ? 8 : 1;
  for (let r = 0; r < count; r++) {
    const byte = (s.op & 0xff) + r;
    const key = (map << 10) | (pfxClass(s.pfx) << 8) | byte;
    (candidates[key] ??= []).push(s);
    if (map === 1 && s.pfx !== 0) prefixed[byte] = 1;
    if (s.modrm) hasModrm[(map << 8) | byte] = 1;
  }
}

function pick(list: OpSpec[] | undefined, mod: number, reg: number, rm: number): OpSpec | undefined {
  if (list === undefined) return undefined;
  for (const s of list) {
    if (s.ext >= 0 && s.ext !== reg) continue;
    if (s.form === 'reg' && mod !== 3) continue;
    if (s.form === 'mem' && mod === 3) continue;
    if (s.rmExact >= 0 && (mod !== 3 || s.rmExact !== rm)) continue;
    return s;
  }
  return undefined;
}

function raiseRecorded(_c: unknown, i: Instr): void {
  fault(i.faultCause, i.faultDetail, i.faultCause === 'memory' ? i.faultAddress : undefined);
}

function faultRecord(addr: number, len: number, cause: FaultCause, detail: string, address = 0): Instr {
  const i = new Instr(raiseRecorded);
  i.addr = addr;
  i.len = len;
  i.next = addr + len;
  i.term = true;
  i.faultCause = cause;
  i.faultDetail = detail;
  i.faultAddress = address;
  return i;
}

class FetchFault {
  constructor(readonly address: number) {}
}

function hex(n: number): string {
  return '0x' + (n >>> 0).toString(16);
}

/**
 * Decode the instruction at guest address `addr`. Never throws: undefined, deprecated and
 * unfetchable instructions decode to records that fault when executed.
 */
export function decodeInstr(mem: GuestMemory, addr: number): Instr {
  const u8 = mem.u8;
  const size = mem.size;
  let pc = addr;
  const fetch = (): number => {
    if (pc < 0x1000 || pc >= size) throw new FetchFault(pc);
    return u8[pc++];
  };
  try {
    return decode(addr, fetch, () => pc - addr);
  } catch (e) {
    if (e instanceof FetchFault) {
      return faultRecord(addr, 1, 'memory', `instruction fetch at ${hex(e.address)}`, e.address);
    }
    throw e;
  }
}

function decode(addr: number, fetch: () => number, length: () => number): Instr {
  let opsize16 = false;
  let addr16 = false;
  let rep = 0;
  let seg = 0;
  let lock = false;
  let b: number;
  for (;;) {
    b = fetch();
    if (length() > 15) return faultRecord(addr, 15, 'general-protection', 'instruction longer than 15 bytes');
    if (b === 0x66) { opsize16 = true; continue; }
    if (b === 0x67) { addr16 = true; continue; }
    if (b === 0xf2 || b === 0xf3) { rep = b; continue; }
    if (b === 0xf0) { lock = true; continue; }
    if (b === 0x2e || b === 0x36 || b === 0x3e || b === 0x26 || b === 0x64 || b === 0x65) { seg = b; continue; }
    break;
  }
  let map = 0;
  if (b === 0x0f) {
    map = 1;
    b = fetch();
    if (b === 0x38 || b === 0x3a) {
      return faultRecord(addr, length(), 'invalid-opcode', `three-byte opcode 0f ${b.toString(16)} (not in i686+SSE2)`);
    }
  }
  let cls = PFX_NONE;
  if (map === 1 && prefixed[b]) {
    cls = rep === 0xf3 ? PFX_F3 : rep === 0xf2 ? PFX_F2 : opsize16 ? PFX_66 : PFX_NONE;
  }
  const list = candidates[(map << 10) | (cls << 8) | b];
  const i = new Instr(raiseRecorded);
  i.addr = addr;
  i.seg = seg;
  i.lock = lock;
  let mod = 3;
  let reg = 0;
  let rm = 0;
  if (hasModrm[(map << 8) | b]) {
    const m = fetch();
    mod = m >> 6;
    reg = (m >> 3) & 7;
    rm = m & 7;
  }
  const spec = pick(list, mod, reg, rm);
  const opname = (map ? '0f ' : '') + b.toString(16).padStart(2, '0');
  if (spec === undefined) {
    // Consume the addressing bytes so the record's length is plausible for the fault report.
    return faultRecord(addr, length(), 'invalid-opcode', `undefined opcode ${opname}${hasModrm[(map << 8) | b] ? ` /${reg}` : ''}`);
  }
  if (addr16) return faultRecord(addr, length(), 'invalid-opcode', '16-bit addressing (0x67 prefix) is not supported');
  i.spec = spec;
  i.exec = spec.exec;
  i.sub = spec.sub;
  i.term = spec.term;
  i.opcode = (map << 8) | b;
  i.rep = rep;
  switch (spec.size) {
    case 'b': i.opsize = 1; break;
    case 'w': i.opsize = 2; break;
    case 'v': i.opsize = opsize16 && cls === PFX_NONE ? 2 : 4; break;
    case 'q': i.opsize = 8; break;
    case 'x': i.opsize = 16; break;
    default: i.opsize = 4;
  }
  if (spec.plusR) {
    reg = b & 7;
    i.reg = reg;
    i.rm = reg;
  }
  if (spec.modrm) {
    i.reg = reg;
    i.rm = rm;
    if (mod !== 3) {
      i.mem = true;
      decodeAddress(i, mod, rm, fetch);
    }
  }
  switch (spec.imm) {
    case 'ib': i.imm = fetch(); break;
    case 'ibs': {
      const v = (fetch() << 24) >> 24;
      i.imm = i.opsize === 1 ? v & 0xff : i.opsize === 2 ? v & 0xffff : v;
      break;
    }
    case 'iw': i.imm = fetch() | (fetch() << 8); break;
    case 'iz':
      if (i.opsize === 2) i.imm = fetch() | (fetch() << 8);
      else if (i.opsize === 1) i.imm = fetch();
      else i.imm = fetch() | (fetch() << 8) | (fetch() << 16) | (fetch() << 24);
      break;
    case 'iwib':
      i.imm = fetch() | (fetch() << 8);
      i.imm2 = fetch();
      break;
    case 'rel8': {
      const v = (fetch() << 24) >> 24;
      i.imm = v; // turned into the target below
      break;
    }
    case 'relz':
      if (opsize16) i.imm = ((fetch() | (fetch() << 8)) << 16) >> 16;
      else i.imm = fetch() | (fetch() << 8) | (fetch() << 16) | (fetch() << 24);
      break;
    case 'moffs':
      i.mem = true;
      i.eaKind = 0;
      i.disp = fetch() | (fetch() << 8) | (fetch() << 16) | (fetch() << 24);
      break;
    case 'ptr':
      for (let k = opsize16 ? 4 : 6; k > 0; k--) fetch();
      break;
    case 'none':
      break;
  }
  i.len = length();
  i.next = addr + i.len;
  if (spec.imm === 'rel8' || spec.imm === 'relz') {
    const t = (i.next + i.imm) | 0;
    // A 0x66 prefix on a near branch truncates EIP to 16 bits (SDM vol. 2, JMP/Jcc/CALL).
    i.imm = opsize16 ? t & 0xffff : t;
  }
  if (seg === 0x2e && i.mem && writesMemoryOperand(spec)) {
    // CS is an execute/read code segment: writing through it is #GP on the processor (and so on KVM).
    return faultRecord(addr, i.len, 'general-protection', `${spec.mnemonic} writes memory through a CS segment override (code segments are read-only)`);
  }
  if (lock && !(spec.lockable && i.mem)) {
    return faultRecord(addr, i.len, 'invalid-opcode', `lock prefix on ${spec.mnemonic}${i.mem ? '' : ' with a register destination'}`);
  }
  if (spec.fast !== undefined) {
    const f = spec.fast(i);
    if (f !== undefined) i.exec = f;
  }
  return i;
}

/** ModRM/SIB/displacement decoding for 32-bit addressing (SDM vol. 2, tables 2-2 and 2-3). */
function decodeAddress(i: Instr, mod: number, rm: number, fetch: () => number): void {
  let base = -1;
  let index = -1;
  let scale = 0;
  if (rm === 4) {
    const sib = fetch();
    scale = sib >> 6;
    index = (sib >> 3) & 7;
    if (index === 4) index = -1;
    base = sib & 7;
    if (base === 5 && mod === 0) base = -1;
  } else if (rm === 5 && mod === 0) {
    base = -1;
  } else {
    base = rm;
  }
  let disp = 0;
  if (mod === 1) disp = (fetch() << 24) >> 24;
  else if (mod === 2 || base === -1) disp = fetch() | (fetch() << 8) | (fetch() << 16) | (fetch() << 24);
  i.disp = disp | 0;
  i.scale = scale;
  i.base = base < 0 ? 0 : base;
  i.index = index < 0 ? 0 : index;
  i.eaKind = base >= 0 ? (index >= 0 ? 2 : 1) : index >= 0 ? 3 : 0;
}

/** Mnemonics whose memory operand (ModRM or moffs) is a destination, besides the ALU and mov forms below. */
const WRITES_MEMORY = new Set([
  'xchg', 'pop', 'rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar', 'not', 'neg', 'inc', 'dec', 'bts', 'btr', 'btc',
  'shld', 'shrd', 'cmpxchg', 'cmpxchg8b', 'xadd', 'movnti', 'movntps', 'movntpd', 'movntdq', 'stmxcsr',
  'fst', 'fstp', 'fist', 'fistp', 'fisttp', 'fnstcw', 'fnstsw',
]);
/** SSE store forms (opcode after 0F) that write their r/m operand. */
const SSE_STORES = new Set([0x0f11, 0x0f13, 0x0f17, 0x0f29, 0x0f7f, 0x0fd6]);

/** Does the instruction write its ModRM/moffs memory operand? (Found by the differential tester: a CS override on such a write must fault.) */
function writesMemoryOperand(spec: OpSpec): boolean {
  const op = spec.op, m = spec.mnemonic;
  if (op < 0x40 && (op & 7) <= 1) return m !== 'cmp';
  if (op >= 0x80 && op <= 0x83) return m !== 'cmp';
  if (m === 'mov') return op === 0x88 || op === 0x89 || op === 0xc6 || op === 0xc7 || op === 0xa2 || op === 0xa3;
  if (m.startsWith('set')) return true;
  if (SSE_STORES.has(op)) return true;
  if (op === 0x0f7e) return spec.pfx === 0x66; // movd r/m32, xmm (F3 0F 7E is a load)
  return WRITES_MEMORY.has(m);
}
