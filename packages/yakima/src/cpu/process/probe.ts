/**
 * Can the process backend run guests here? A start-up probe that runs four tiny guests in real
 * tenders: a compute loop ending in an `out` and `hlt` (32-bit LDT segments, compatibility
 * mode, the hypercall path, and a speed check: 20 million loop iterations must take well under
 * what any emulation would), a read of page 0 and a read past the end of memory (both must be
 * 'memory' faults), and `int 0x80` (seccomp must kill the process). The result is cached.
 */
import { LAYOUT } from '@denali/image-format';
import { Reg, type VcpuExit } from '../vcpu.js';
import { ProcessVcpu } from './process-vcpu.js';
import { allocateSharedGuestMemory } from '../../memory/host-memory.js';
import { tenderBinary } from './tender-build.js';

export type ProcessProbe = { usable: true; loopMs: number } | { usable: false; reason: string };

const PROBE_MEMORY = 2 * 1024 * 1024;
/** Iterations of `dec ecx; jnz` in the speed check (~10 ms natively; seconds under any emulator). */
const LOOP_ITERATIONS = 20_000_000;
/** The speed check fails above this (native is ~5-20 ms even on a busy host). */
const LOOP_LIMIT_MS = 400;
const PROBE_PORT = 0x5ff;

let cached: ProcessProbe | undefined;

/** Run the probe once per process (about 30 ms). Never throws. */
export function probeProcessBackend(): ProcessProbe {
  cached ??= runProbe();
  return cached;
}

const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

/** Boot `code` at IMAGE_BASE in a fresh tender and collect its exits (at most `max`). */
function runGuest(code: number[], max: number): { exits: VcpuExit[]; ms: number } {
  const memory = allocateSharedGuestMemory(PROBE_MEMORY);
  memory.u8.set(code, LAYOUT.IMAGE_BASE);
  const vcpu = new ProcessVcpu(memory, { answerTimeoutMs: 3000 });
  try {
    const gpr = [0, 0, 0, 0, 0, 0, 0, 0];
    gpr[Reg.ESP] = PROBE_MEMORY;
    vcpu.setRegs({ gpr, eip: LAYOUT.IMAGE_BASE, eflags: 0x202 });
    const exits: VcpuExit[] = [];
    let ms = 0;
    while (exits.length < max) {
      const t0 = performance.now();
      const e = vcpu.run(0);
      ms += performance.now() - t0;
      if (e.kind === 'quantum') continue;
      exits.push(e);
      if (e.kind !== 'io-out') break;
    }
    return { exits, ms };
  } finally {
    vcpu.destroy();
  }
}

const describe = (e: VcpuExit | undefined): string => (e === undefined ? 'nothing' : e.kind === 'fault' ? `${e.cause} fault (${e.detail})` : e.kind);

function runProbe(): ProcessProbe {
  try {
    if (process.platform !== 'linux' || process.arch !== 'x64') return { usable: false, reason: `needs Linux on x86-64 (this is ${process.platform}/${process.arch})` };
    tenderBinary();
    // mov ecx, N; L: dec ecx; jnz L; mov edx, PORT; mov eax, 0x12345678; out dx, eax; hlt
    const loop = [0xb9, ...le32(LOOP_ITERATIONS), 0x49, 0x75, 0xfd, 0xba, ...le32(PROBE_PORT), 0xb8, ...le32(0x12345678), 0xef, 0xf4];
    const run = runGuest(loop, 2);
    const [out, halt] = run.exits;
    if (out?.kind !== 'io-out' || out.port !== PROBE_PORT || out.value !== 0x12345678 || out.size !== 4) {
      return { usable: false, reason: `a 32-bit guest did not run in a sandboxed process: expected an out exit, got ${describe(out)}` };
    }
    if (halt?.kind !== 'halt') return { usable: false, reason: `expected hlt to stop the probe guest, got ${describe(halt)}` };
    const loopMs = run.ms;
    if (loopMs > LOOP_LIMIT_MS) return { usable: false, reason: `guest code is not running natively (speed check took ${loopMs.toFixed(0)} ms, limit ${LOOP_LIMIT_MS})` };
    const page0 = runGuest([0xa1, ...le32(0x10)], 1).exits[0];
    if (page0?.kind !== 'fault' || page0.cause !== 'memory') return { usable: false, reason: `a read of page 0 gave ${describe(page0)}, not a memory fault` };
    const pastEnd = runGuest([0xa1, ...le32(PROBE_MEMORY + 0x100)], 1).exits[0];
    if (pastEnd?.kind !== 'fault' || pastEnd.cause !== 'memory') return { usable: false, reason: `a read past the end of memory gave ${describe(pastEnd)}, not a memory fault` };
    const sys = runGuest([0xcd, 0x80], 1).exits[0];
    if (sys?.kind !== 'fault' || !/seccomp/.test(sys.detail)) return { usable: false, reason: `seccomp did not stop int 0x80: got ${describe(sys)}` };
    return { usable: true, loopMs };
  } catch (e) {
    return { usable: false, reason: e instanceof Error ? e.message : String(e) };
  }
}
