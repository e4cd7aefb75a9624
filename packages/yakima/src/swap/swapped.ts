/**
 * Placeholders a swapped-out VM holds instead of its guest memory and vCPU: shared, stateless
 * objects (so a swapped VM costs no per-VM memory for them) whose every use throws a clear
 * `SwapError` rather than touching unmapped host memory.
 */
import { GuestMemory } from '../boot/guest-memory.js';
import type { Vcpu, VcpuExit, VcpuRegs } from '../cpu/vcpu.js';
import { SwapError } from './swap-error.js';

const out = (): never => {
  throw new SwapError('the VM is swapped out: its memory and vCPU are in the swap area until a virtual interrupt swaps it in');
};

const placeholders = new Map<number, GuestMemory>();

/** The placeholder memory of a swapped-out VM of `size` bytes (`size` and the checks work; contents throw). */
export function swappedMemory(size: number): GuestMemory {
  let m = placeholders.get(size);
  if (!m) {
    m = Object.create(GuestMemory.prototype) as GuestMemory;
    Object.defineProperties(m, {
      size: { value: size },
      buffer: { get: out },
      u8: { get: out },
      dv: { get: out },
    });
    placeholders.set(size, m);
  }
  return m;
}

/** The placeholder vCPU of every swapped-out VM. */
export const SWAPPED_VCPU: Vcpu = Object.freeze({
  run: (): VcpuExit => out(),
  getRegs: (): VcpuRegs => out(),
  setRegs: (): void => out(),
  instructionsRetired: 0,
});

/** True when `vcpu` is the swapped-out placeholder. */
export function isSwappedVcpu(vcpu: Vcpu): boolean {
  return vcpu === SWAPPED_VCPU;
}
