/**
 * x87 FPU register state (Intel SDM vol. 1, chapter 8). The eight data registers are kept
 * as IEEE doubles, not 80-bit extended values: the documented limitation is that x87
 * arithmetic rounds to double precision at every step (gcc with -mfpmath=sse only uses the
 * x87 to return float/double values and to convert int64 <-> double, which is exact here).
 */
export class X87 {
  /** Physical registers R0-R7; st(i) is R[(top + i) & 7]. */
  readonly r = new Float64Array(8);
  /**
   * Exact integer shadow of each register (null when none): set by fild and kept through
   * moves, fchs/fabs and integer-valued fadd/fsub (rounded to the x87's 64-bit significand),
   * so int64 -> x87 -> int64 round trips and uint64 -> double conversions are exact even
   * though `r` holds doubles.
   */
  readonly ex: (bigint | null)[] = [null, null, null, null, null, null, null, null];
  /** Bit patterns of `r` (two u32 words per register, little-endian) for sign/NaN bit work. */
  readonly ru32 = new Uint32Array(this.r.buffer);
  /** TOP field of the status word (0-7). */
  top = 0;
  /** Bit i set when physical register i is empty. */
  empty = 0xff;
  /** Control word: all exceptions masked, round to nearest, 64-bit precision (FNINIT value). */
  cw = 0x037f;
  /** Status word condition and exception bits (TOP is kept in `top`). */
  sw = 0;

  reset(): void {
    this.top = 0;
    this.empty = 0xff;
    this.ex.fill(null);
    this.cw = 0x037f;
    this.sw = 0;
  }

  /** Physical index of st(i). */
  phys(i: number): number {
    return (this.top + i) & 7;
  }

  /** Status word with TOP merged in. */
  statusWord(): number {
    return (this.sw & ~0x3800) | (this.top << 11);
  }
}
