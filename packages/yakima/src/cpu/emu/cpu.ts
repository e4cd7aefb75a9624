import type { GuestMemory } from '../../boot/guest-memory.js';
import type { FaultCause, Vcpu, VcpuExit, VcpuRegs, VcpuState } from '../vcpu.js';
import { BlockCache, type SharedCode } from './block-cache.js';
import { COMPILE_AFTER, compileBlock } from './compiler.js';
import { CpuFault, fault } from './fault.js';
import { ARITH, AF, CF, FIXED1, LazyOp, OF, PARITY, PF, SF, SIZE_MASK, SIZE_SIGN, ZF } from './flags.js';
import type { Instr } from './instr.js';
import { restoreEmuState, saveEmuState } from './snapshot.js';
import { STOP_EXIT, STOP_SMC, STOP_YIELD } from './stop.js';
import { X87 } from './x87-state.js';

/** First readable guest address (page 0 is never mapped). */
const READ_BASE = 0x1000;
/** First writable guest address (page 1 is read-only). */
const WRITE_BASE = 0x2000;

const QUANTUM: VcpuExit = Object.freeze({ kind: 'quantum' }) as VcpuExit;

/**
 * The bundled x86 emulator: a para-virtualized 32-bit flat protected-mode CPU (Denali paper
 * 3.1) that runs anywhere Node runs. Instructions are decoded once per basic block
 * (`BlockCache`), executed by per-entry handlers from the instruction table (`table.ts`), and
 * condition flags are computed lazily (`flags.ts`).
 *
 * Fields are public so that the handler modules (`alu.ts`, `sse.ts`, ...) can reach them
 * without indirection; they are not part of the `Vcpu` API.
 */
export class EmuCpu implements Vcpu {
  // Not readonly: `rebind` moves a swapped-out VM's vCPU onto another VM's memory.
  mem: GuestMemory;
  /** Guest memory size in bytes. */
  readonly size: number;
  u8: Uint8Array;
  /** Aliases guest memory for aligned 32-bit accesses (index = address >> 2). */
  m32: Int32Array;
  dv: DataView;
  // Largest valid start address minus the region base, per access size (one unsigned compare).
  readonly rmax1: number;
  readonly rmax2: number;
  readonly rmax4: number;
  readonly rmax8: number;
  readonly rmax16: number;
  readonly wmax1: number;
  readonly wmax2: number;
  readonly wmax4: number;
  readonly wmax8: number;
  readonly wmax16: number;

  /** General registers as int32 (convert with >>> 0 for unsigned views). */
  readonly regs = new Int32Array(8);
  /** Byte view of `regs`: AL=0, AH=1, CL=4 ... (see `r8index`). */
  readonly r8: Uint8Array;
  /** Halfword view of `regs`: AX = r16[0], CX = r16[2] ... */
  readonly r16: Uint16Array;
  /** EIP as int32. */
  eip = 0;

  /** Materialized EFLAGS bits; the arithmetic bits in `lazy` are stale and derive from lop/la/lb/lr. */
  flags = FIXED1;
  /** Which of the six arithmetic flags must be computed from the lazy record. */
  lazy = 0;
  lop: LazyOp = LazyOp.LOGIC;
  la = 0;
  lb = 0;
  lr = 0;
  /** Operand size in bytes of the lazy record. */
  lsz = 4;
  /** Carry-in (adc/sbb) of the lazy record, 0 or 1. */
  lcin = 0;

  /** XMM0-7: 128 bytes, aliased as float64/float32/int32/byte lanes. */
  readonly xmmBuf = new ArrayBuffer(144); // XMM0-7 plus a scratch register (index 8) for memory operands
  readonly xf64 = new Float64Array(this.xmmBuf);
  readonly xf32 = new Float32Array(this.xmmBuf);
  readonly xi32 = new Int32Array(this.xmmBuf);
  readonly xu8 = new Uint8Array(this.xmmBuf);
  readonly xu16 = new Uint16Array(this.xmmBuf);
  readonly xi16 = new Int16Array(this.xmmBuf);
  readonly xi8 = new Int8Array(this.xmmBuf);
  mxcsr = 0x1f80;
  /** The x87 FPU (st registers as doubles). */
  readonly fpu = new X87();

  /** Index in its block of the instruction a compiled block faulted on or stopped after. */
  fk = 0;
  /**
   * Executions of a block before it is compiled to JavaScript (compiler.ts). 0 never compiles
   * (pure interpreter); tests use 1 (compile everything) and 0 to cover both engines.
   */
  compileAfter = COMPILE_AFTER;
  /** Instructions retired since creation, excluding the block being executed. */
  retired = 0;
  /** Non-zero when the current block must be left after the current instruction. */
  stop = 0;
  pendingExit: VcpuExit | null = null;
  readonly cache: BlockCache;
  /** Per 4 KiB page: non-zero when the page holds decoded code (alias of cache.codePages). */
  readonly codePages: Uint8Array;

  /**
   * @param mem the VM's guest memory; the CPU starts with all registers 0 and EFLAGS = 0x2.
   * @param shared decoded blocks shared with the other VMs of `mem`'s template (`SharedCode`,
   *   `codeShareOf` in memory/template.ts); without it the CPU keeps every block to itself.
   */
  constructor(mem: GuestMemory, shared: SharedCode | null = null) {
    this.mem = mem;
    this.size = mem.size;
    this.u8 = mem.u8;
    this.m32 = new Int32Array(mem.buffer);
    this.dv = mem.dv;
    const s = mem.size;
    this.rmax1 = s - READ_BASE - 1;
    this.rmax2 = s - READ_BASE - 2;
    this.rmax4 = s - READ_BASE - 4;
    this.rmax8 = s - READ_BASE - 8;
    this.rmax16 = s - READ_BASE - 16;
    this.wmax1 = s - WRITE_BASE - 1;
    this.wmax2 = s - WRITE_BASE - 2;
    this.wmax4 = s - WRITE_BASE - 4;
    this.wmax8 = s - WRITE_BASE - 8;
    this.wmax16 = s - WRITE_BASE - 16;
    this.r8 = new Uint8Array(this.regs.buffer);
    this.r16 = new Uint16Array(this.regs.buffer);
    this.cache = new BlockCache(mem, shared);
    this.codePages = this.cache.codePages;
  }

  /**
   * Run over another guest memory of the same size (`BlockCache.rebind`). Swap-in uses it to
   * give a VM a swapped-out VM's vCPU instead of a new one, whose tables would be garbage again
   * at its next swap-out. The architectural state is whatever `restoreState` loads next.
   * `sharedPages`: pages known to hold the shared code's bytes (see `BlockCache.rebind`).
   * @throws RangeError when a size differs.
   */
  rebind(mem: GuestMemory, shared: SharedCode | null, sharedPages?: Iterable<number>): void {
    this.cache.rebind(mem, shared, sharedPages);
    this.mem = mem;
    this.u8 = mem.u8;
    this.m32 = new Int32Array(mem.buffer);
    this.dv = mem.dv;
    this.stop = 0;
    this.fk = 0;
    this.pendingExit = null;
  }

  get instructionsRetired(): number {
    return this.retired;
  }

  // ---------------------------------------------------------------- run loop

  /**
   * Run until an exit or until at least `maxInstructions` instructions retired. The budget is
   * checked between basic blocks, so a quantum may overshoot by up to one block (at most
   * `MAX_BLOCK_INSTRS` instructions); a long `rep` string instruction yields by itself.
   */
  run(maxInstructions: number): VcpuExit {
    if (!(maxInstructions > 0)) return QUANTUM;
    const target = this.retired + maxInstructions;
    const cache = this.cache;
    this.pendingExit = null;
    this.stop = 0;
    while (this.retired < target) {
      let block;
      try {
        block = cache.lookup(this.eip);
      } catch (e) {
        // Only an emulator bug gets here (the decoder turns every guest problem into a record).
        return this.faultAt(e, this.eip, 0);
      }
      const ins = block.instrs;
      const n = ins.length;
      // Blocks are shared by every vCPU (block-cache.ts), so `hits` counts all of them and a
      // block may arrive compiled; compileAfter 0 (interpreter only) ignores the compiled form.
      let fn = block.fn;
      if (fn === null) {
        if (++block.hits >= this.compileAfter && this.compileAfter > 0) {
          try {
            fn = block.fn = compileBlock(this, block);
          } catch {
            fn = null; // a compiler bug must not stop the guest: keep interpreting this block
            block.hits = Number.MIN_SAFE_INTEGER; // and do not retry on every execution
          }
        }
      } else if (this.compileAfter === 0) fn = null;
      this.eip = block.endEip;
      let k = 0;
      if (fn !== null) {
        let done: number;
        try {
          done = fn(this, target - this.retired);
        } catch (e) {
          return this.faultExit(e, ins[this.fk]);
        }
        if (this.stop !== 0) {
          k = this.fk;
          this.retired += done - (k + 1); // earlier loop iterations; the stop path adds k + 1
        } else {
          this.retired += done;
          continue;
        }
      } else {
        try {
          for (; k < n; k++) {
            const i = ins[k];
            i.exec(this, i);
            if (this.stop !== 0) break;
          }
        } catch (e) {
          return this.faultExit(e, ins[k]);
        }
      }
      if (this.stop !== 0) {
        const i = ins[k];
        // A paused rep instruction has set EIP back to itself.
        if (!i.term && (this.stop & STOP_YIELD) === 0) this.eip = i.next;
        this.retired += k + 1;
        const yielded = (this.stop & STOP_YIELD) !== 0;
        this.stop = 0;
        const ex = this.pendingExit;
        if (ex !== null) {
          this.pendingExit = null;
          return ex;
        }
        if (yielded) return QUANTUM;
      } else {
        this.retired += n;
      }
    }
    return QUANTUM;
  }

  private faultExit(e: unknown, i: Instr): VcpuExit {
    return this.faultAt(e, i.addr, i.idx);
  }

  /** Stop at the instruction at `eip`, `retiredInBlock` instructions into its block. */
  private faultAt(e: unknown, eip: number, retiredInBlock: number): VcpuExit {
    if (!(e instanceof CpuFault)) {
      // A bug in the emulator must still not take down the VMM: report it as a fault of this VM.
      const detail = `emulator internal error: ${e instanceof Error ? e.message : String(e)}`;
      e = new CpuFault('unknown-exit', detail);
    }
    const f = e as CpuFault;
    this.retired += retiredInBlock;
    this.eip = eip;
    this.stop = 0;
    this.pendingExit = null;
    const ex: VcpuExit = { kind: 'fault', cause: f.cause, detail: f.detail, eip: eip >>> 0, bytes: this.bytesAt(eip) };
    if (f.address !== undefined) ex.address = f.address >>> 0;
    return ex;
  }

  /** Up to 15 instruction bytes at `addr` (fewer where readable memory ends). */
  bytesAt(addr: number): Uint8Array {
    const a = addr >>> 0;
    if (a < READ_BASE || a >= this.size) return new Uint8Array(0);
    return this.u8.slice(a, Math.min(a + 15, this.size));
  }

  /** Leave the block after this instruction and return `exit` from `run`. */
  exitWith(exit: VcpuExit): void {
    this.pendingExit = exit;
    this.stop |= STOP_EXIT;
  }

  // ---------------------------------------------------------------- registers

  getRegs(): VcpuRegs {
    const gpr: number[] = [];
    for (let r = 0; r < 8; r++) gpr.push(this.regs[r] >>> 0);
    return { gpr, eip: this.eip >>> 0, eflags: this.getFlags() >>> 0 };
  }

  /** Accepts all eight registers, EIP and EFLAGS (bits other than the arithmetic flags and DF are kept as given but have no effect). */
  setRegs(r: VcpuRegs): void {
    for (let k = 0; k < 8; k++) this.regs[k] = r.gpr[k] | 0;
    this.eip = r.eip | 0;
    this.setFlags(r.eflags);
  }

  /** The whole architectural state (snapshot.ts). */
  saveState(): VcpuState {
    return saveEmuState(this);
  }

  /** Load a `saveState` result (snapshot.ts). @throws Error for a malformed or non-emulator state. */
  restoreState(state: VcpuState): void {
    restoreEmuState(this, state);
  }

  /** Byte-register index into `r8` for the ModRM 8-bit register number (AL CL DL BL AH CH DH BH). */
  static r8index(r: number): number {
    return ((r & 3) << 2) | (r >> 2);
  }

  getReg(r: number, size: number): number {
    if (size === 4) return this.regs[r];
    if (size === 2) return this.r16[r << 1];
    return this.r8[((r & 3) << 2) | (r >> 2)];
  }

  setReg(r: number, size: number, v: number): void {
    if (size === 4) this.regs[r] = v;
    else if (size === 2) this.r16[r << 1] = v;
    else this.r8[((r & 3) << 2) | (r >> 2)] = v;
  }

  // ---------------------------------------------------------------- memory

  /** Effective address of the ModRM memory operand, int32 (segment bases are all 0). */
  ea(i: Instr): number {
    switch (i.eaKind) {
      case 1:
        return (this.regs[i.base] + i.disp) | 0;
      case 2:
        return (this.regs[i.base] + (this.regs[i.index] << i.scale) + i.disp) | 0;
      case 3:
        return ((this.regs[i.index] << i.scale) + i.disp) | 0;
      default:
        return i.disp;
    }
  }

  memFault(a: number, n: number, what: 'read' | 'write'): never {
    return fault('memory', `${what} of ${n} bytes at 0x${(a >>> 0).toString(16)}`, a >>> 0);
  }

  rd8(a: number): number {
    if ((a - READ_BASE) >>> 0 > this.rmax1) this.memFault(a, 1, 'read');
    return this.u8[a];
  }

  rd16(a: number): number {
    if ((a - READ_BASE) >>> 0 > this.rmax2) this.memFault(a, 2, 'read');
    return this.u8[a] | (this.u8[a + 1] << 8);
  }

  rd32(a: number): number {
    if ((a - READ_BASE) >>> 0 > this.rmax4) this.memFault(a, 4, 'read');
    // One DataView access (unaligned ones included) is faster in V8 than an alignment test and an Int32Array index.
    return this.dv.getInt32(a, true);
  }

  /** Read by operand size (1, 2, 4): bytes/words unsigned, dwords int32. */
  rd(a: number, size: number): number {
    if (size === 4) return this.rd32(a);
    if (size === 2) return this.rd16(a);
    return this.rd8(a);
  }

  /** Check that `n` bytes at `a` are readable (for multi-part operands checked before any effect). */
  checkRead(a: number, n: number): void {
    if ((a - READ_BASE) >>> 0 > this.size - READ_BASE - n) this.memFault(a, n, 'read');
  }

  /** Check that `n` bytes at `a` are writable. */
  checkWrite(a: number, n: number): void {
    if ((a - WRITE_BASE) >>> 0 > this.size - WRITE_BASE - n) this.memFault(a, n, 'write');
  }

  /** A write hit a page with decoded code: drop stale blocks, leave the current block. */
  codeWrite(a: number, n: number): void {
    if (this.cache.write(a, n)) this.stop |= STOP_SMC;
  }

  wr8(a: number, v: number): void {
    if ((a - WRITE_BASE) >>> 0 > this.wmax1) this.memFault(a, 1, 'write');
    if (this.codePages[a >>> 12] !== 0) this.codeWrite(a, 1);
    this.u8[a] = v;
  }

  wr16(a: number, v: number): void {
    if ((a - WRITE_BASE) >>> 0 > this.wmax2) this.memFault(a, 2, 'write');
    if (this.codePages[a >>> 12] !== 0) this.codeWrite(a, 2);
    this.u8[a] = v;
    this.u8[a + 1] = v >> 8;
  }

  wr32(a: number, v: number): void {
    if ((a - WRITE_BASE) >>> 0 > this.wmax4) this.memFault(a, 4, 'write');
    if (this.codePages[a >>> 12] !== 0) this.codeWrite(a, 4);
    this.dv.setInt32(a, v, true);
  }

  wr(a: number, size: number, v: number): void {
    if (size === 4) this.wr32(a, v);
    else if (size === 2) this.wr16(a, v);
    else this.wr8(a, v);
  }

  /** Read the ModRM operand (register or memory) at the instruction's operand size. */
  rdE(i: Instr): number {
    if (i.mem) return this.rd(this.ea(i), i.opsize);
    return this.getReg(i.rm, i.opsize);
  }

  // ---------------------------------------------------------------- stack

  push32(v: number): void {
    const sp = (this.regs[4] - 4) | 0;
    this.wr32(sp, v);
    this.regs[4] = sp;
  }

  pop32(): number {
    const sp = this.regs[4];
    const v = this.rd32(sp);
    this.regs[4] = sp + 4;
    return v;
  }

  /** push with the operand size (2 or 4 bytes). */
  pushSz(v: number, size: number): void {
    if (size === 4) return this.push32(v);
    const sp = (this.regs[4] - 2) | 0;
    this.wr16(sp, v);
    this.regs[4] = sp;
  }

  popSz(size: number): number {
    if (size === 4) return this.pop32();
    const sp = this.regs[4];
    const v = this.rd16(sp);
    this.regs[4] = sp + 2;
    return v;
  }

  // ---------------------------------------------------------------- flags

  /** Record an add/sub result for lazy flags. a, b, r are raw (masked on use). */
  setArith(op: LazyOp, a: number, b: number, r: number, size: number, cin: number): void {
    this.lazy = ARITH;
    this.lop = op;
    this.la = a;
    this.lb = b;
    this.lr = r;
    this.lsz = size;
    this.lcin = cin;
  }

  /** Record a logical result: CF = OF = AF = 0, ZF/SF/PF from r. */
  setLogic(r: number, size: number): void {
    this.lazy = ARITH;
    this.lop = LazyOp.LOGIC;
    this.lr = r;
    this.lsz = size;
  }

  /**
   * Set the flags in `mask` to `bits` now, and take ZF/SF/PF lazily from result `r` (shifts,
   * multiplies). Every arithmetic flag not in `mask` must be ZF/SF/PF.
   */
  setEagerAndResult(mask: number, bits: number, r: number, size: number): void {
    this.flags = (this.flags & ~mask) | bits;
    this.lazy = ZF | SF | PF;
    this.lop = LazyOp.LOGIC;
    this.lr = r;
    this.lsz = size;
  }

  /** Make the flags in `mask` exact in `flags` (remove them from the lazy set). */
  materialize(mask: number): void {
    const l = this.lazy & mask;
    if (l === 0) return;
    let f = this.flags & ~l;
    if (l & CF) f |= this.getCF();
    if (l & PF) f |= this.getPF();
    if (l & AF) f |= this.getAF();
    if (l & ZF) f |= this.getZF() << 6;
    if (l & SF) f |= this.getSF() << 7;
    if (l & OF) f |= this.getOF() << 11;
    this.flags = f;
    this.lazy &= ~l;
  }

  /** Full EFLAGS value with every lazy flag computed. */
  getFlags(): number {
    this.materialize(ARITH);
    return this.flags;
  }

  /** Load EFLAGS (e.g. from setRegs/popf/sahf): arithmetic flags and DF, bit 1 forced. */
  setFlags(v: number): void {
    this.flags = (v | FIXED1) & ~0x8028; // bits 3, 5 and 15 are reserved (read as 0)
    this.lazy = 0;
  }

  /** Replace only the flags in `mask` with `v`'s bits (popf/sahf keep the rest). */
  writeFlags(v: number, mask: number): void {
    this.materialize(ARITH);
    this.flags = (this.flags & ~mask) | (v & mask);
  }

  getCF(): number {
    if ((this.lazy & CF) === 0) return this.flags & CF;
    const m = SIZE_MASK[this.lsz];
    switch (this.lop) {
      case LazyOp.ADD: {
        const r = (this.lr & m) >>> 0;
        const a = (this.la & m) >>> 0;
        return (this.lcin ? r <= a : r < a) ? 1 : 0;
      }
      case LazyOp.SUB: {
        const a = (this.la & m) >>> 0;
        const b = (this.lb & m) >>> 0;
        return (this.lcin ? a <= b : a < b) ? 1 : 0;
      }
      default:
        return 0;
    }
  }

  getZF(): number {
    if ((this.lazy & ZF) === 0) return (this.flags >> 6) & 1;
    return (this.lr & SIZE_MASK[this.lsz]) === 0 ? 1 : 0;
  }

  getSF(): number {
    if ((this.lazy & SF) === 0) return (this.flags >> 7) & 1;
    return (this.lr & SIZE_SIGN[this.lsz]) !== 0 ? 1 : 0;
  }

  getOF(): number {
    if ((this.lazy & OF) === 0) return (this.flags >> 11) & 1;
    const s = SIZE_SIGN[this.lsz];
    switch (this.lop) {
      case LazyOp.ADD:
        return ((this.la ^ this.lr) & (this.lb ^ this.lr) & s) !== 0 ? 1 : 0;
      case LazyOp.SUB:
        return ((this.la ^ this.lb) & (this.la ^ this.lr) & s) !== 0 ? 1 : 0;
      default:
        return 0;
    }
  }

  /** PF as the bit value (0 or 4). */
  getPF(): number {
    if ((this.lazy & PF) === 0) return this.flags & PF;
    return PARITY[this.lr & 0xff];
  }

  /** AF as the bit value (0 or 0x10). */
  getAF(): number {
    if ((this.lazy & AF) === 0) return this.flags & AF;
    if (this.lop === LazyOp.LOGIC) return 0;
    return (this.la ^ this.lb ^ this.lr) & AF;
  }

  getDF(): number {
    return (this.flags >> 10) & 1;
  }

  /** Evaluate condition code `cc` (low nibble of jcc/setcc/cmovcc; SDM vol. 1 appendix B). */
  cond(cc: number): boolean {
    // Fast paths for the overwhelmingly common cmp/sub/test/and + jcc pairs on dwords.
    if (this.lazy === ARITH && this.lsz === 4) {
      if (this.lop === LazyOp.SUB && this.lcin === 0) {
        const a = this.la | 0;
        const b = this.lb | 0;
        switch (cc) {
          case 2: return a >>> 0 < b >>> 0;
          case 3: return a >>> 0 >= b >>> 0;
          case 4: return a === b;
          case 5: return a !== b;
          case 6: return a >>> 0 <= b >>> 0;
          case 7: return a >>> 0 > b >>> 0;
          case 12: return a < b;
          case 13: return a >= b;
          case 14: return a <= b;
          case 15: return a > b;
        }
      } else if (this.lop === LazyOp.LOGIC) {
        const r = this.lr | 0;
        switch (cc) {
          case 4: return r === 0;
          case 5: return r !== 0;
          case 8: case 12: return r < 0;
          case 9: case 13: return r >= 0;
          case 14: return r <= 0;
          case 15: return r > 0;
        }
      }
    }
    let t: boolean;
    switch (cc >> 1) {
      case 0: t = this.getOF() !== 0; break;
      case 1: t = this.getCF() !== 0; break;
      case 2: t = this.getZF() !== 0; break;
      case 3: t = this.getCF() !== 0 || this.getZF() !== 0; break;
      case 4: t = this.getSF() !== 0; break;
      case 5: t = this.getPF() !== 0; break;
      case 6: t = this.getSF() !== this.getOF(); break;
      default: t = this.getZF() !== 0 || this.getSF() !== this.getOF(); break;
    }
    return (cc & 1) === 0 ? t : !t;
  }

  /**
   * Tell the CPU that something other than the guest (the VMM: hypercall results, device
   * buffers, a reloaded image) wrote guest memory `[addr, addr+len)`, so decoded or compiled
   * code from those bytes is dropped. Writes made by guest instructions are tracked already.
   */
  invalidateCode(addr: number, len: number): void {
    if (len > 0) this.cache.write(addr >>> 0, len);
  }

  /** Drop every decoded and compiled block (e.g. after loading a new image into the VM). */
  flushCodeCache(): void {
    this.cache.clear();
  }

  /** Raise a fault of this instruction. */
  fault(cause: FaultCause, detail: string): never {
    return fault(cause, detail);
  }
}
