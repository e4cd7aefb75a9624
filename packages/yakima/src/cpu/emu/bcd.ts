import type { EmuCpu } from './cpu.js';
import { fault } from './fault.js';
import { AF, ARITH, CF } from './flags.js';
import type { Instr } from './instr.js';

/**
 * Decimal-arithmetic adjustments aaa, aas, daa, das, aam, aad (Intel SDM vol. 2A). gcc never
 * emits them, but they are legal 32-bit user instructions and run natively under KVM, so the
 * emulator implements them too. sub: 0 aaa, 1 aas, 2 daa, 3 das, 4 aam, 5 aad.
 */
export function bcd(c: EmuCpu, i: Instr): void {
  const al = c.r8[0];
  const af = c.getAF() !== 0;
  const cf = c.getCF() !== 0;
  c.materialize(ARITH);
  switch (i.sub) {
    case 0:
    case 1: { // aaa / aas
      if ((al & 0x0f) > 9 || af) {
        if (i.sub === 0) c.r16[0] = c.r16[0] + 0x106;
        else {
          c.r16[0] = c.r16[0] - 6;
          c.r8[1] = c.r8[1] - 1;
        }
        c.r8[0] &= 0x0f;
        c.setEagerAndResult(CF | AF, CF | AF, c.r8[0], 1);
      } else {
        c.r8[0] &= 0x0f;
        c.setEagerAndResult(CF | AF, 0, c.r8[0], 1);
      }
      return;
    }
    case 2:
    case 3: { // daa / das
      let v = al;
      let ncf = 0;
      let naf = 0;
      if ((al & 0x0f) > 9 || af) {
        const t = i.sub === 2 ? v + 6 : v - 6;
        ncf = cf || t > 0xff || t < 0 ? CF : 0;
        v = t & 0xff;
        naf = AF;
      }
      if (al > 0x99 || cf) {
        v = (i.sub === 2 ? v + 0x60 : v - 0x60) & 0xff;
        ncf = CF;
      } else if (i.sub === 2) ncf = 0;
      c.r8[0] = v;
      c.setEagerAndResult(CF | AF, ncf | naf, v, 1);
      return;
    }
    case 4: { // aam imm8
      if (i.imm === 0) fault('divide-error', 'aam with a zero base');
      c.r8[1] = Math.floor(al / i.imm);
      c.r8[0] = al % i.imm;
      c.setEagerAndResult(CF | AF, 0, c.r8[0], 1);
      return;
    }
    default: { // aad imm8
      const v = (al + c.r8[1] * i.imm) & 0xff;
      c.r8[0] = v;
      c.r8[1] = 0;
      c.setEagerAndResult(CF | AF, 0, v, 1);
    }
  }
}
