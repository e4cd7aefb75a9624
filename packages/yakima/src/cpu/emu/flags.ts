/**
 * EFLAGS bit positions and the lazy-flags vocabulary (Intel SDM vol. 1, section 3.4.3).
 *
 * Arithmetic instructions do not compute CF/PF/AF/ZF/SF/OF when they execute. They record the
 * kind of operation, its operands and result (see `EmuCpu.lop`, `la`, `lb`, `lr`, `lsz`), and
 * the flags are derived only when something reads them (a jcc, setcc, pushf, getRegs...).
 */

export const CF = 0x0001;
export const PF = 0x0004;
export const AF = 0x0010;
export const ZF = 0x0040;
export const SF = 0x0080;
export const TF = 0x0100;
export const IF = 0x0200;
export const DF = 0x0400;
export const OF = 0x0800;

/** The six arithmetic status flags. */
export const ARITH = CF | PF | AF | ZF | SF | OF;
/** Flags a guest may change with popf/sahf in Denali (arithmetic flags and DF). */
export const GUEST_WRITABLE = ARITH | DF;
/** EFLAGS bit 1 always reads as 1. */
export const FIXED1 = 0x0002;

/** Lazy operation kinds: how CF/OF/AF derive from the recorded operands. */
export const enum LazyOp {
  /** a + b (+ carry-in): add, adc, inc, xadd. */
  ADD = 0,
  /** a - b (- borrow-in): sub, sbb, cmp, dec, neg (a = 0), cmpxchg, cmps, scas. */
  SUB = 1,
  /** Result-only: CF = OF = AF = 0 (and, or, xor, test); also used for ZF/SF/PF of shifts. */
  LOGIC = 2,
}

/** Value mask per operand size in bytes (index 1, 2, 4). */
export const SIZE_MASK = new Int32Array([0, 0xff, 0xffff, 0, -1]);
/** Sign bit per operand size in bytes (index 1, 2, 4). */
export const SIZE_SIGN = new Int32Array([0, 0x80, 0x8000, 0, -0x80000000]);

/** PF value (0 or `PF`) for each low result byte: set when the number of 1 bits is even. */
export const PARITY = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) {
    let n = 0;
    for (let b = i; b; b >>= 1) n += b & 1;
    t[i] = n & 1 ? 0 : PF;
  }
  return t;
})();

/** Condition codes in the order of the low nibble of jcc/setcc/cmovcc (SDM vol. 1, appendix B). */
export const CC_NAMES = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'] as const;

/** Human readable list of flag names set in `mask`, for messages. */
export function flagNames(mask: number): string {
  const names: string[] = [];
  const all: [number, string][] = [[CF, 'CF'], [PF, 'PF'], [AF, 'AF'], [ZF, 'ZF'], [SF, 'SF'], [OF, 'OF'], [DF, 'DF']];
  for (const [bit, name] of all) if (mask & bit) names.push(name);
  return names.join('|') || 'none';
}
