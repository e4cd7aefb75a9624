/**
 * Micro benchmark of the bundled emulator: a gcc -O2 SHA-256 loop loaded directly into
 * GuestMemory, run with a 1M-instruction quantum; prints MIPS (millions of guest
 * instructions retired per second of wall time).
 *
 *   npx tsx packages/yakima/bench/emu-core.ts [rounds] [--interpreter]
 *
 * `--interpreter` disables the block compiler (for comparison).
 */
import { createHash } from 'node:crypto';
import { GuestMemory } from '../src/boot/guest-memory.js';
import { EmuCpu } from '../src/cpu/emu/index.js';
import { LOAD_ADDR, buildGuest } from '../test/emu/helpers.js';

const args = process.argv.slice(2);
const interpreterOnly = args.includes('--interpreter');
const rounds = Number(args.find((a) => !a.startsWith('--')) ?? 400);
const img = buildGuest(['crt0.S', 'rt.c', 'sha256.c', 'bench-sha.c'], ['-O2']);

function runOnce(n: number): { instrs: number; ms: number; result: number } {
  const mem = new GuestMemory(8 * 1024 * 1024);
  mem.u8.set(img.bin, LOAD_ADDR);
  mem.writeU32(img.symbols.get('rounds')!, n);
  const cpu = new EmuCpu(mem);
  if (interpreterOnly) cpu.compileAfter = 0;
  cpu.setRegs({ gpr: [0, 0, 0, 0, mem.size - 16, 0, 0, 0], eip: LOAD_ADDR, eflags: 2 });
  const t0 = performance.now();
  for (;;) {
    const e = cpu.run(1_000_000);
    if (e.kind === 'quantum') continue;
    if (e.kind !== 'halt') throw new Error(`guest stopped: ${JSON.stringify(e)}`);
    break;
  }
  const ms = performance.now() - t0;
  const digest = Buffer.from(mem.view(img.symbols.get('digest')!, 32)).toString('hex');
  if (digest !== expectedDigest(n)) throw new Error(`wrong digest after ${n} rounds: ${digest}`);
  return { instrs: cpu.instructionsRetired, ms, result: cpu.getRegs().gpr[3] };
}

/** The same computation as bench-sha.c, with node's SHA-256. */
function expectedDigest(n: number): string {
  const data = Buffer.alloc(4096);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  let d = Buffer.alloc(32);
  for (let r = 0; r < n; r++) {
    d = createHash('sha256').update(data).digest();
    data[0] ^= d[0];
  }
  return d.toString('hex');
}

runOnce(8); // warm up the JIT
const best = [runOnce(rounds), runOnce(rounds), runOnce(rounds)].sort((a, b) => a.ms - b.ms)[0];
const mips = best.instrs / best.ms / 1000;
console.log(`${interpreterOnly ? 'interpreter only: ' : ''}sha256 x${rounds} over 4 KiB: ${best.instrs} instructions in ${best.ms.toFixed(1)} ms = ${mips.toFixed(1)} MIPS (best of 3, digest verified)`);
