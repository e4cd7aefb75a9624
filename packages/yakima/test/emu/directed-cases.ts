/**
 * Directed instruction sequences checked against the host CPU with the same harness as the
 * table-driven tests: the x87 subset gcc emits, control transfers, flag-register access.
 */
import { AF, ARITH, DF, OF } from '../../src/cpu/emu/flags.js';
import { Rng, edge32, moderateF64, specialF32, specialF64 } from './gen.js';
import { REC, type OracleCase } from './harness.js';

const A = `REC+${REC.BUF + 16}`;
const B = `REC+${REC.BUF + 24}`;
const R = `REC+${REC.BUF + 32}`;
const CW = `REC+${REC.BUF + 56}`;
/** Set the x87 precision control to double (the emulator's documented model) for arithmetic. */
const PC53 = [`fnstcw ${CW}`, `andw $0xfcff, ${CW}`, `orw $0x0200, ${CW}`, `fldcw ${CW}`];
const RC = (rc: number) => [`fnstcw ${CW}`, `andw $0xf3ff, ${CW}`, `orw $${rc << 10}, ${CW}`, `fldcw ${CW}`];
const RESTORE_CW = [`movw $0x37f, ${CW}`, `fldcw ${CW}`];

/** x87 templates; A and B hold operands (double unless the template says otherwise). */
export const X87: [string, string[], 'f64' | 'f64m' | 'f32' | 'i64' | 'i32' | 'i16'][] = [
  ['fld/fstp m64', [`fldl ${A}`, `fstpl ${R}`], 'f64'],
  ['fld/fstp m32', [`flds ${A}`, `fstps ${R}`], 'f32'],
  ['fld m32 -> fstp m64', [`flds ${A}`, `fstpl ${R}`], 'f32'],
  ['fld m64 -> fstp m32 (rounding, NaN narrowing)', [`fldl ${A}`, `fstps ${R}`], 'f64'],
  ['fst m64 then fstp st(0)', [`fldl ${A}`, `fstl ${R}`, 'fstp %st(0)'], 'f64'],
  ['fild/fistp m64 exact round trip', [`fildll ${A}`, `fistpll ${R}`], 'i64'],
  ['fild m64 -> double', [`fildll ${A}`, `fstpl ${R}`], 'i64'],
  ['uint64 -> double idiom (fild + fadd 2^64)', [`fildll ${A}`, `movl $0x5f800000, ${R}+12`, `fadds ${R}+12`, `fstpl ${R}`], 'i64'],
  ['fild m32 / m16', [`fildl ${A}`, `fstpl ${R}`, `filds ${B}`, `fstpl ${R}+8`], 'i32'],
  ['fistp m64 round-to-nearest-even', [`fldl ${A}`, `fistpll ${R}`], 'f64'],
  ['fistp m32 / fist m16', [`fldl ${A}`, `fistl ${R}+8`, `fistpl ${R}`, `fldl ${B}`, `fists ${R}+12`, 'fstp %st(0)'], 'f64'],
  ['fistp with RC = truncate (the gcc double -> int64 idiom)', [...RC(3), `fldl ${A}`, `fistpll ${R}`, ...RESTORE_CW], 'f64'],
  ['fistp with RC = down / up', [...RC(1), `fldl ${A}`, `fistpl ${R}`, ...RC(2), `fldl ${A}`, `fistpl ${R}+4`, ...RESTORE_CW], 'f64'],
  ['fisttp m64 / m32 / m16', [`fldl ${A}`, `fisttpll ${R}`, `fldl ${B}`, `fisttpl ${R}+8`, `fldl ${A}`, `fisttps ${R}+12`], 'f64'],
  ['fldz/fld1/fxch', ['fldz', 'fld1', 'fxch %st(1)', `fstpl ${R}`, `fstpl ${R}+8`], 'f64'],
  ['fchs/fabs', [`fldl ${A}`, 'fchs', `fstl ${R}`, 'fabs', `fstpl ${R}+8`], 'f64'],
  ['fucomip/fcomip flags', [`fldl ${B}`, `fldl ${A}`, 'fucomip %st(1), %st', 'fstp %st(0)'], 'f64'],
  ['fucomi + explicit pops', [`fldl ${B}`, `fldl ${A}`, 'fcomi %st(1), %st', 'fstp %st(0)', 'fstp %st(0)'], 'f64'],
  ['fucompp + fnstsw (C3/C2/C0)', [`fldl ${B}`, `fldl ${A}`, 'fucompp', 'fnstsw %ax', 'and $0x4500, %eax'], 'f64'],
  ['fcom m64 + fnstsw', [`fldl ${A}`, `fcoml ${B}`, 'fnstsw %ax', 'and $0x4500, %eax', 'fstp %st(0)'], 'f64'],
  ['ftst / fxam', [`fldl ${A}`, 'ftst', 'fnstsw %ax', 'and $0x4500, %eax', 'mov %eax, %ebx', 'fxam', 'fnstsw %ax', 'and $0x4700, %eax', 'fstp %st(0)'], 'f64'],
  ['fadd/fsub/fmul/fdiv m64 (double precision control)', [...PC53, `fldl ${A}`, `faddl ${B}`, `fstpl ${R}`, `fldl ${A}`, `fsubl ${B}`, `fstpl ${R}+8`, `fldl ${A}`, `fmull ${B}`, `fstpl ${R}+16`, `fldl ${A}`, `fdivl ${B}`, `fstpl ${R}+24`, ...RESTORE_CW], 'f64m'],
  ['fsubr/fdivr and st(i) forms', [...PC53, `fldl ${A}`, `fldl ${B}`, 'fsubr %st(1), %st', `fstpl ${R}`, `fldl ${B}`, 'fdivr %st(1), %st', `fstpl ${R}+8`, `fldl ${B}`, 'fsub %st, %st(1)', `fstpl ${R}+16`, `fstpl ${R}+24`, ...RESTORE_CW], 'f64m'],
  ['faddp/fmulp/fsubp/fdivp/fsubrp/fdivrp', [...PC53, `fldl ${A}`, `fldl ${B}`, 'faddp', `fldl ${B}`, 'fmulp', `fldl ${B}`, 'fsubp', `fldl ${B}`, 'fsubrp', `fldl ${B}`, 'fdivp', `fldl ${B}`, 'fdivrp', `fstpl ${R}`, ...RESTORE_CW], 'f64m'],
  ['fadd m32 / fiadd m32', [...PC53, `fldl ${A}`, `fadds ${B}`, `fiaddl ${B}`, `fstpl ${R}`, ...RESTORE_CW], 'f64m'],
  ['fsqrt / frndint', [...PC53, `fldl ${A}`, 'fabs', 'fsqrt', `fstpl ${R}`, `fldl ${B}`, 'frndint', `fstpl ${R}+8`, ...RESTORE_CW], 'f64m'],
  ['fstp m80 / fld m80', [`fldl ${A}`, `fstpt ${R}`, `fldt ${R}`, `fstpl ${R}+16`], 'f64'],
  ['fcmovb/fcmove/fcmovnbe/fcmovu', [`fldl ${B}`, `fldl ${A}`, 'fcmovb %st(1), %st', 'fcmovne %st(1), %st', 'fcmovnbe %st(1), %st', 'fcmovu %st(1), %st', `fstpl ${R}`, 'fstp %st(0)'], 'f64'],
];

export const CONTROL: [string, string[]][] = [
  ['call rel32 + pop', ['call 1f', 'inc %ebp', '1: pop %eax']],
  ['call through a register', ['mov $1f, %ebx', 'call *%ebx', 'inc %ebp', '1: pop %ecx']],
  ['call through memory', [`movl $1f, ${A}`, `call *${A}`, 'inc %ebp', '1: pop %edx']],
  ['jmp through a register and memory', ['mov $1f, %eax', 'jmp *%eax', 'inc %ebp', `1: movl $2f, ${A}`, `jmp *${A}`, 'inc %ebp', '2:']],
  ['push/ret', ['push $1f', 'ret', 'inc %ebp', '1:']],
  ['ret imm16', ['sub $8, %esp', 'push $1f', 'ret $8', 'inc %ebp', '1:']],
  ['jmp rel8 / rel32', ['jmp 1f', 'inc %ebp', '1: jmp 2f', '.fill 200, 1, 0x45', '2:']],
  ['nested call/ret through a tiny function', ['call 2f', 'jmp 3f', '2: add $5, %eax', 'ret', '3:']],
  ['pushf/popf round trip with DF and CF', ['stc', 'std', 'pushf', 'pop %eax', 'and $0xcd5, %eax', 'push $0x8c3', 'popf', 'cld', 'pushf', 'pop %ebx']],
  ['lahf/sahf', ['lahf', 'mov %ah, %bl', 'mov $0xd5, %ah', 'sahf', 'lahf']],
  ['cmpxchg8b success then failure', [`mov %eax, ${A}`, `mov %edx, ${A}+4`, `cmpxchg8b ${A}`, 'setz %bl', `cmpxchg8b ${A}`, 'setz %bh']],
  ['loop counting down', ['mov $5, %ecx', 'xor %eax, %eax', '1: add %ecx, %eax', 'loop 1b']],
  ['xlat', [`mov $${'REC'}+${REC.BUF}, %ebx`, 'and $0x3f, %eax', 'xlat']],
];


const CCS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];
const WRITERS = ['cmp %ebx, %eax', 'sub %ebx, %eax', 'test %ebx, %eax', 'and %ebx, %eax', 'add %ebx, %eax', 'cmp $0x80000000, %eax', 'xor %ebx, %eax', 'or %ebx, %eax', 'shl $3, %eax', 'inc %eax'];
/** A flag writer, unrelated instructions, then jcc/setcc/cmovcc: exercises the compiler's cmp+jcc fusion and dead-flag elimination. */
export const FUSION: [string, string[]][] = WRITERS.flatMap((w) =>
  CCS.filter((cc) => !(w.startsWith('shl') && ['o', 'no', 'l', 'ge', 'le', 'g'].includes(cc))) // OF is undefined after shl by 3
    .map((cc): [string, string[]] => [`${w} + j${cc}`, ['add %edx, %ecx', w, 'mov %eax, %esi', `j${cc} 1f`, 'inc %ebp', `1: set${cc} %dl`, `cmov${cc} %ebx, %edi`]]),
);

/** The x87 cases (seeded). */
export function x87Cases(): OracleCase[] {
    const rng = new Rng(0x87);
    const cases: OracleCase[] = [];
    for (const [name, lines, kind] of X87) {
      for (let k = 0; k < 24; k++) {
        const buf = new Uint8Array(64).map(() => rng.int(256));
        const operand = (): number[] => {
          switch (kind) {
            case 'f64': return specialF64(rng);
            case 'f64m': return moderateF64(rng);
            case 'f32': return [...specialF32(rng), ...specialF32(rng)];
            case 'i64': {
              const hi = rng.pick([0, 0xffffffff, 0x7fffffff, 0x80000000, 0x00200000, 0xffe00000, rng.u32()]);
              return Array.from(new Uint8Array(new Uint32Array([rng.u32(), hi]).buffer));
            }
            default: return Array.from(new Uint8Array(new Uint32Array([edge32(rng), edge32(rng)]).buffer));
          }
        };
        buf.set(operand(), 16);
        buf.set(operand(), 24);
        cases.push({
          name: `${name} #${k}`,
          code: lines.map((asm) => ({ asm })),
          regs: Array.from({ length: 8 }, () => edge32(rng)),
          eflags: 0x202 | (rng.u32() & ARITH),
          xmm: null,
          buf,
          buf2: new Uint8Array(64),
          flagMask: ARITH | DF,
        });
      }
    }
  return cases;
}

/** The control-transfer and flag-register cases (seeded). */
export function controlCases(): OracleCase[] {
  const rng = new Rng(0xc0de);
  const cases: OracleCase[] = [];
  for (const [name, lines] of [...CONTROL, ...FUSION]) {
    for (let k = 0; k < 8; k++) {
      const regs: (number | string)[] = Array.from({ length: 8 }, () => edge32(rng));
      if (k % 2 === 0) regs[3] = regs[0]; // equal operands: the boundary of every condition
      if (k % 4 === 1) regs[0] = 0x80000000;
      cases.push({
        name: `${name} #${k}`,
        code: lines.map((asm) => ({ asm })),
        regs,
        eflags: 0x202 | (rng.u32() & ARITH),
        xmm: null,
        buf: new Uint8Array(64).map(() => rng.int(256)),
        buf2: new Uint8Array(64),
        flagMask: name.startsWith('shl') ? (ARITH | DF) & ~(OF | AF) : ARITH | DF,
      });
    }
  }
  return cases;
}

/** Remaining entries: x87 housekeeping, hints and nops, moves gcc rarely emits. */
export const MISC: [string, string[]][] = [
  ['fld constants', ['fldpi', `fstpl ${R}`, 'fldl2e', `fstpl ${R}+8`, 'fldln2', `fstpl ${R}+16`, 'fldlg2', `fstpl ${R}+24`]],
  ['fldl2t', ['fldl2t', `fstpl ${R}`]],
  ['fnop/fwait/ffree/fninit/fnclex', ['fnop', 'fwait', 'fld1', 'ffree %st(0)', 'fld1', 'fstp %st(0)', 'fninit', 'fnclex', 'fldz', `fstpl ${R}`]],
  ['fcom/fcomp/fucom/fucomp st(i) and fcomp m32/m64, fcompp', [`fldl ${A}`, `fldl ${B}`, 'fcom %st(1)', 'fnstsw %ax', 'and $0x4500, %eax', 'mov %eax, %ebx', 'fucom %st(1)', 'fnstsw %ax', 'and $0x4500, %eax', 'mov %eax, %ecx', 'fcomp %st(1)', 'fldl ' + B, 'fucomp %st(1)', `fcomps ${A}`, `fldl ${B}`, `fcompl ${A}`, `fcoms ${A}`, 'fldl ' + B, 'fcompp', 'fnstsw %ax', 'and $0x4500, %eax', 'fstp %st(0)']],
  ['fld st(i), fucomi, fcomip, fst m32, fistp m16', [`fldl ${A}`, 'fld %st(0)', 'fucomi %st(1), %st', 'setp %al', 'setz %ah', 'fcomip %st(1), %st', 'setc %bl', `fsts ${R}`, `fistps ${R}+4`]],
  ['fst st(i) / fnstsw m16 / fisub etc.', [...PC53, `fldl ${A}`, 'fld1', 'fst %st(1)', `fstpl ${R}`, `fstpl ${R}+8`, 'fldz', `fnstsw ${R}+16`, 'andw $0x4500, ' + R + '+16', `fisubl ${B}`, `fimull ${B}`, `fisubrl ${B}`, `fidivl ${B}`, `fidivrl ${B}`, `fisubs ${B}`, `fiadds ${B}`, `fimuls ${B}`, `fisubrs ${B}`, `fidivs ${B}`, `fidivrs ${B}`, `fstpl ${R}+24`, ...RESTORE_CW]],
  ['fmul/fdiv/fsub m32 and st(i) forms', [...PC53, `fldl ${A}`, `fmuls ${B}`, `fdivs ${B}`, `fsubs ${B}`, `fsubrs ${B}`, `fdivrs ${B}`, 'fld1', 'fadd %st(1), %st', 'fmul %st(1), %st', 'fdiv %st(1), %st', 'fdivr %st(1), %st', 'fsub %st(1), %st', 'fadd %st, %st(1)', 'fmul %st, %st(1)', 'fdiv %st, %st(1)', 'fdivr %st, %st(1)', 'fsubr %st, %st(1)', `fsubrl ${B}`, `fdivrl ${B}`, `fstpl ${R}`, `fstpl ${R}+8`, ...RESTORE_CW]],
  ['fcmov variants', [`fldl ${B}`, `fldl ${A}`, 'fcmove %st(1), %st', 'fcmovbe %st(1), %st', 'fcmovnb %st(1), %st', 'fcmovnu %st(1), %st', `fstpl ${R}`, 'fstp %st(0)']],
  ['nops and hints', ['nopl (%eax)', 'nopw 0(%eax,%eax,1)', `prefetchnta ${A}`, `prefetcht0 ${A}`, `prefetcht1 ${A}`, `prefetcht2 ${A}`, 'pause']],
  ['movnti', [`movnti %eax, ${A}`]],
  ['hint-nop 0f 19-0f 1e', ['.byte 0x0f, 0x19, 0xc0', '.byte 0x0f, 0x1a, 0xc0', '.byte 0x0f, 0x1b, 0xc0', '.byte 0x0f, 0x1c, 0xc0', '.byte 0x0f, 0x1d, 0xc0', '.byte 0x0f, 0x1e, 0xc0']],
  ['push/pop r/m and imm', [`pushl ${A}`, 'push $0x12345678', 'push $-3', `popl ${A}`, 'pop %eax', 'pop %ebx']],
];

/** The MISC cases (seeded). */
export function miscCases(): OracleCase[] {
  const rng = new Rng(0x3157);
  const cases: OracleCase[] = [];
  for (const [name, lines] of MISC) {
    for (let k = 0; k < 8; k++) {
      const buf = new Uint8Array(64).map(() => rng.int(256));
      buf.set(moderateF64(rng), 16);
      buf.set(moderateF64(rng), 24);
      cases.push({
        name: `${name} #${k}`,
        code: lines.map((asm) => ({ asm })),
        regs: Array.from({ length: 8 }, () => edge32(rng)),
        eflags: 0x202 | (rng.u32() & ARITH),
        xmm: null,
        buf,
        buf2: new Uint8Array(64),
        flagMask: ARITH | DF,
      });
    }
  }
  return cases;
}
