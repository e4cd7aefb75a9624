/**
 * The Yakima-owned "diagnostic page": one read-only page mapped into every KVM guest far above
 * its memory (guest-physical `DIAG_BASE`, outside the documented [0, size) map). It holds the
 * GDT, a TSS and an IDT whose 32 exception handlers each report their vector to Yakima with
 * `out DIAG_PORT, eax` — so a #DE, #UD, #GP ... in the guest stops the VM with the same fault
 * cause the emulator reports, instead of an anonymous triple fault.
 *
 * Layout of the page: IDT at +0x000 (32 interrupt gates), GDT at +0x100, TSS at +0x200,
 * handler stubs at +0x400 (16 bytes each).
 */
import type { FaultCause } from '../vcpu.js';
import { libc, LINUX, sysError } from './libc.js';

/** Guest-physical address of the diagnostic page (above the 1 GiB maximum guest memory). */
export const DIAG_BASE = 0xffe00000;
/** Size of the diagnostic slot. */
export const DIAG_SIZE = 0x1000;
/** The I/O port the exception stubs write their vector to (outside the hypercall ports). */
export const DIAG_PORT = 0x4f0;

export const DIAG_IDT = DIAG_BASE + 0x000;
export const DIAG_IDT_LIMIT = 32 * 8 - 1;
export const DIAG_GDT = DIAG_BASE + 0x100;
export const DIAG_GDT_LIMIT = 4 * 8 - 1;
export const DIAG_TSS = DIAG_BASE + 0x200;
export const DIAG_TSS_LIMIT = 0x67;
export const DIAG_STUBS = DIAG_BASE + 0x400;
const STUB_SIZE = 16;

/** GDT selectors. */
export const SEL_CODE = 0x08;
export const SEL_DATA = 0x10;
export const SEL_TSS = 0x18;

/** Vectors that push an error code (Intel SDM vol. 3, table 6-1). */
const HAS_ERROR_CODE = new Set([8, 10, 11, 12, 13, 14, 17, 21]);

/** The page's bytes (page offset 0 = DIAG_BASE). */
export function buildDiagPage(): Uint8Array {
  const page = new Uint8Array(DIAG_SIZE);
  const dv = new DataView(page.buffer);
  // GDT: null; flat 32-bit code (type 0xb: execute/read, accessed — pre-set so the CPU never
  // writes the read-only page); flat data (type 3: read/write, accessed); 32-bit busy TSS.
  dv.setBigUint64(0x100 + SEL_CODE, 0x00cf9b000000ffffn, true);
  dv.setBigUint64(0x100 + SEL_DATA, 0x00cf93000000ffffn, true);
  const tss = BigInt(DIAG_TSS);
  const tssDesc =
    BigInt(DIAG_TSS_LIMIT) |
    ((tss & 0xffffffn) << 16n) |
    (0x8bn << 40n) | // present, DPL 0, type 0xb (busy 32-bit TSS)
    ((tss >> 24n) << 56n);
  dv.setBigUint64(0x100 + SEL_TSS, tssDesc, true);
  // TSS: all zero except the I/O map base, set past the limit (no I/O bitmap).
  dv.setUint16(0x200 + 0x66, DIAG_TSS_LIMIT + 1, true);
  for (let v = 0; v < 32; v++) {
    const stub = DIAG_STUBS + v * STUB_SIZE;
    // IDT gate: 32-bit interrupt gate (type 0xe), present, DPL 0, CS = SEL_CODE.
    dv.setUint32(v * 8, (stub & 0xffff) | (SEL_CODE << 16), true);
    dv.setUint32(v * 8 + 4, ((stub & 0xffff0000) | 0x8e00) >>> 0, true);
    const code = [
      0xb8, v, 0, 0, 0, // mov eax, v
      0x66, 0xba, DIAG_PORT & 0xff, DIAG_PORT >> 8, // mov dx, DIAG_PORT
      0xef, // out dx, eax
      0xf4, // hlt (never reached: Yakima stops the VM at the out)
      0xeb, 0xfe, // jmp $
    ];
    page.set(code, 0x400 + v * STUB_SIZE);
  }
  return page;
}

/** True when `eip` (after the stub's out completed) lies in the stubs: the report is genuine. */
export function isDiagStubEip(eip: number): boolean {
  return eip >= DIAG_STUBS && eip < DIAG_STUBS + 32 * STUB_SIZE;
}

/** Fault cause and detail for an exception vector, like the emulator's classification. */
export function classifyVector(vector: number, errorCode: number | undefined): { cause: FaultCause; detail: string } {
  const ec = errorCode === undefined ? '' : ` (error code 0x${(errorCode >>> 0).toString(16)})`;
  switch (vector) {
    case 0:
      return { cause: 'divide-error', detail: 'divide error (#DE)' };
    case 6:
      return { cause: 'invalid-opcode', detail: 'invalid opcode (#UD)' };
    case 7:
      return { cause: 'invalid-opcode', detail: 'device not available (#NM)' };
    case 5:
      return { cause: 'general-protection', detail: 'bound range exceeded (#BR)' };
    case 8:
      return { cause: 'triple-fault', detail: 'double fault (#DF)' };
    case 12:
      return { cause: 'memory', detail: `stack-segment fault (#SS)${ec}` };
    case 13:
      return { cause: 'general-protection', detail: `general protection (#GP)${ec}` };
    case 16:
      return { cause: 'general-protection', detail: 'x87 floating-point error (#MF)' };
    case 17:
      return { cause: 'general-protection', detail: 'alignment check (#AC)' };
    case 19:
      return { cause: 'general-protection', detail: 'SIMD floating-point exception (#XM)' };
    case 1:
      return { cause: 'general-protection', detail: 'debug exception (#DB)' };
    case 3:
      return { cause: 'deprecated-instruction', detail: 'int3 is deprecated in Denali' };
    case 4:
      return { cause: 'deprecated-instruction', detail: 'into is deprecated in Denali' };
    default:
      return { cause: 'general-protection', detail: `exception vector ${vector}${ec}` };
  }
}

export function vectorHasErrorCode(vector: number): boolean {
  return HAS_ERROR_CODE.has(vector);
}

let hostPage: bigint | undefined;

/** Host address of the process-wide diagnostic page (allocated and filled once). */
export function diagHostPage(): bigint {
  if (hostPage !== undefined) return hostPage;
  const c = libc();
  const p = c.mmap(null, DIAG_SIZE, LINUX.PROT_READ | LINUX.PROT_WRITE, LINUX.MAP_PRIVATE | LINUX.MAP_ANONYMOUS, -1, 0);
  if (p === 0xffffffffffffffffn || p === 0n) throw sysError('mmap of the diagnostic page', c.errno());
  new Uint8Array(c.view(p, DIAG_SIZE)).set(buildDiagPage());
  hostPage = p;
  return p;
}
