import { LAYOUT, TICK_RATE, VREG_RW } from '@denali/image-format';
import type { GuestMemory } from '../boot/guest-memory.js';

/** Host monotonic time in ticks (µs, `TICK_RATE` per second). */
export function hostTicks(): number {
  return Math.floor(performance.now() * (TICK_RATE / 1000));
}

/**
 * The virtual clock (paper 3.1.1): instead of one interrupt per timer tick, the VM reads the
 * ticks since its boot from a virtual register that Yakima refreshes on every VM entry.
 */
export class ClockDevice {
  /** Host ticks at VM boot. */
  readonly bootTicks = hostTicks();

  /** Ticks since this VM booted. */
  now(): number {
    return hostTicks() - this.bootTicks;
  }

  /** Write CLOCK (ticks since boot) and WALLCLOCK (µs since the epoch) into the RW virtual registers. */
  publish(mem: GuestMemory): void {
    const base = LAYOUT.VREG_RW_BASE;
    writeU64(mem, base + VREG_RW.CLOCK, this.now());
    writeU64(mem, base + VREG_RW.WALLCLOCK, Math.floor((performance.timeOrigin + performance.now()) * 1000));
  }
}

function writeU64(mem: GuestMemory, addr: number, v: number): void {
  mem.dv.setUint32(addr, v % 0x1_0000_0000, true);
  mem.dv.setUint32(addr + 4, Math.floor(v / 0x1_0000_0000), true);
}
