/**
 * Save and restore the emulator's whole architectural state (swap-out/in and cloning): the
 * general registers, EIP, EFLAGS exactly as held (the lazy-flags record included, so no flag
 * is recomputed differently), XMM0-7 and MXCSR, and the x87 registers with their exact
 * integer shadows, TOP, tag (empty) bits, control and status words, plus the retired count.
 * Decoded and compiled blocks are not state: a restored CPU rebuilds them on demand.
 */
import type { VcpuState } from '../vcpu.js';
import type { EmuCpu } from './cpu.js';

const MAGIC = 0x454d5531; // "EMU1"
/**
 * Fixed part: magic and 8 registers (u32), then 15 scalars as float64 (kept exactly as the
 * CPU holds them, signed or not), XMM0-7 (128 bytes), x87 R0-R7 (64 bytes).
 */
const SCALARS = 15;
const FIXED = 4 * 9 + 8 * SCALARS + 128 + 64;

/** Serialize `cpu`'s state. Call only between runs (not inside `run`). */
export function saveEmuState(cpu: EmuCpu): VcpuState {
  const f = cpu.fpu;
  const shadows = f.ex.map((e) => (e === null ? '' : e.toString(16)));
  const text = new TextEncoder().encode(shadows.join(','));
  const bytes = new Uint8Array(FIXED + 4 + text.length);
  const dv = new DataView(bytes.buffer);
  let o = 0;
  const u32 = (v: number): void => {
    dv.setUint32(o, v >>> 0, true);
    o += 4;
  };
  u32(MAGIC);
  for (let r = 0; r < 8; r++) u32(cpu.regs[r]!);
  for (const v of [cpu.eip, cpu.flags, cpu.lazy, cpu.lop, cpu.la, cpu.lb, cpu.lr, cpu.lsz, cpu.lcin, cpu.mxcsr, f.top, f.empty, f.cw, f.sw, cpu.retired]) {
    dv.setFloat64(o, v, true);
    o += 8;
  }
  bytes.set(cpu.xu8.subarray(0, 128), o);
  o += 128;
  bytes.set(new Uint8Array(f.r.buffer, f.r.byteOffset, 64), o);
  o += 64;
  u32(text.length);
  bytes.set(text, o);
  return { backend: 'emu', bytes };
}

/**
 * Load a state from `saveEmuState` into `cpu` (a fresh CPU over the VM's restored memory).
 * @throws Error when the state is another backend's or malformed.
 */
export function restoreEmuState(cpu: EmuCpu, state: VcpuState): void {
  const bytes = state.bytes;
  if (state.backend !== 'emu' || bytes.length < FIXED + 4) throw new Error(`not an emulator vCPU state (backend '${state.backend}', ${bytes.length} bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const u32 = (): number => {
    const v = dv.getUint32(o, true);
    o += 4;
    return v;
  };
  if (u32() !== MAGIC) throw new Error('emulator vCPU state has a bad magic number');
  for (let r = 0; r < 8; r++) cpu.regs[r] = u32();
  const f64 = (): number => {
    const v = dv.getFloat64(o, true);
    o += 8;
    return v;
  };
  cpu.eip = f64();
  cpu.flags = f64();
  cpu.lazy = f64();
  cpu.lop = f64();
  cpu.la = f64();
  cpu.lb = f64();
  cpu.lr = f64();
  cpu.lsz = f64();
  cpu.lcin = f64();
  cpu.mxcsr = f64();
  const f = cpu.fpu;
  f.top = f64();
  f.empty = f64();
  f.cw = f64();
  f.sw = f64();
  cpu.retired = f64();
  cpu.xu8.set(bytes.subarray(o, o + 128));
  o += 128;
  new Uint8Array(f.r.buffer, f.r.byteOffset, 64).set(bytes.subarray(o, o + 64));
  o += 64;
  const len = u32();
  if (o + len > bytes.length) throw new Error('emulator vCPU state is truncated');
  const shadows = new TextDecoder().decode(bytes.subarray(o, o + len)).split(',');
  if (shadows.length !== 8) throw new Error('emulator vCPU state has a malformed x87 shadow list');
  shadows.forEach((s, i) => {
    f.ex[i] = s === '' ? null : s.startsWith('-') ? -BigInt('0x' + s.slice(1)) : BigInt('0x' + s);
  });
}
