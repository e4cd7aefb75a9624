/** Raw machine-code images and waits shared by the swap tests. */
import { HYPERCALL, HYPERCALL_PORT_BASE, IDLE_FOREVER } from '@denali/image-format';
import { libc } from '../../src/cpu/kvm/libc.js';

export { rawImage } from '../images.js';

export const le32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const movEax = (v: number): number[] => [0xb8, ...le32(v)];
const movDx = (v: number): number[] => [0x66, 0xba, v & 0xff, v >> 8];
const OUT_DX_EAX = 0xef;
const HLT = 0xf4;

/** Address of the IDLE argument block inside the images below (timeout: forever). */
const IDLE_ARGS_AT = 0x100800;

/** `mov dword [addr], v` */
export const store32 = (addr: number, v: number): number[] => [0xc7, 0x05, ...le32(addr), ...le32(v)];

/**
 * An image whose code runs `body`, then IDLE (forever, or `timeoutTicks` µs) and `hlt` once woken.
 * The IDLE argument block is at 0x100800.
 */
export function idleThenHalt(body: number[], timeoutTicks?: number): number[] {
  const code = [...body, ...movEax(IDLE_ARGS_AT), ...movDx(HYPERCALL_PORT_BASE + HYPERCALL.IDLE), OUT_DX_EAX, HLT];
  const out = new Array<number>(0x1000).fill(0);
  out.splice(0, code.length, ...code);
  const timeout = timeoutTicks === undefined ? [...le32(IDLE_FOREVER), ...le32(IDLE_FOREVER)] : [...le32(timeoutTicks), ...le32(0)];
  out.splice(IDLE_ARGS_AT - 0x100000, 8, ...timeout);
  return out;
}

/** Integer state: distinct values in every general register, lazy arithmetic flags, DF set, memory written. */
export const INTEGER_BODY = [
  0xbb, ...le32(0x9abcdef0), // mov ebx, imm
  0xb9, ...le32(0x11111111), // mov ecx, imm
  0xbe, ...le32(0xf2222222), // mov esi, imm
  0xbf, ...le32(0x33333333), // mov edi, imm
  0xbd, ...le32(0x44444444), // mov ebp, imm
  0x01, 0xde, // add esi, ebx (carry out: CF, OF from the lazy record)
  0xfd, // std
  ...store32(0x300000, 0xdeadbeef), // a private non-zero page
  ...store32(0x280000, 0), // a page written with zeros: private, but nothing to save
];

/** SSE and x87 state on top of the integer state (emulator only: kvm_pvm has no SSE here). */
export const FPU_BODY = [
  0xb8, ...le32(0x12345678), // mov eax, imm
  0x66, 0x0f, 0x6e, 0xc0, // movd xmm0, eax
  0x66, 0x0f, 0x6e, 0xdb, // movd xmm3, ebx
  0x66, 0x0f, 0x70, 0xdb, 0x1b, // pshufd xmm3, xmm3, 0x1b
  0xd9, 0xeb, // fldpi
  0xd9, 0xe8, // fld1
  0xde, 0xc1, // faddp
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve once `cond()` holds; reject naming `what` after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(2);
  }
}

/**
 * Runs `body`, IDLEs (forever), then exits with the VM id read from its read-only virtual
 * registers at that moment: a clone exits with its own id only if it reads the registers
 * after it was cloned. The EXIT argument block is at 0x100900.
 */
export function idleThenExitWithVmId(body: number[]): number[] {
  const code = [
    ...body,
    ...movEax(IDLE_ARGS_AT),
    ...movDx(HYPERCALL_PORT_BASE + HYPERCALL.IDLE),
    OUT_DX_EAX,
    0xa1, ...le32(0x1000 + 0x10), // mov eax, [VREG_RO.VM_ID]
    0xa3, ...le32(0x100900), // mov [0x100900], eax
    ...movEax(0x100900),
    ...movDx(HYPERCALL_PORT_BASE + HYPERCALL.EXIT),
    OUT_DX_EAX,
    HLT,
  ];
  const out = new Array<number>(0x1000).fill(0);
  out.splice(0, code.length, ...code);
  out.splice(IDLE_ARGS_AT - 0x100000, 8, ...le32(IDLE_FOREVER), ...le32(IDLE_FOREVER));
  return out;
}

/** True where guest memory can be host mappings (Linux with koffi's libc): memory-file and pagemap tests skip elsewhere. */
export const nativeMemoryUsable = ((): boolean => {
  try {
    libc();
    return process.platform === 'linux';
  } catch {
    return false;
  }
})();
