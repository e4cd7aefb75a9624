/** Choosing and preparing an oracle (the KVM and process ones are loaded lazily: they need koffi, /dev/kvm or the tender). */
import type { OpSpec } from '../emu/instr.js';
import { caseInput, generatorEntries, makeStep, type DiffCase } from './gen.js';
import { KvmOracle, NativeOracle, ProcessOracle, type Oracle } from './oracle.js';
import { Rng } from './rng.js';

/** Instructions kvm-pvm runs but computes differently from the hardware (known oracle limitations). */
export const KVM_PVM_WRONG = new Set(['aam', 'aad']);

export type OracleChoice = 'auto' | 'native' | 'kvm' | 'process';

export interface OpenedOracle {
  oracle: Oracle;
  /** The table entries this oracle can check. */
  entries: OpSpec[];
  /** Whether SSE instructions (and XMM state) are generated. */
  sse: boolean;
  /** What was chosen and why, and what is left out. */
  notes: string[];
}

/**
 * `auto`: KVM when it runs guests natively (hardware virtualization), otherwise the host CPU
 * in a 32-bit process. `process`: Yakima's process backend (its start-up probe must pass).
 * Returns a reason string when the requested oracle is unavailable.
 */
export async function openOracle(choice: OracleChoice): Promise<OpenedOracle | string> {
  const notes: string[] = [];
  if (choice === 'process') return openProcessOracle();
  let kvmProbe: { usable: true; native: boolean; note?: string } | { usable: false; reason: string } | undefined;
  if (choice !== 'native') {
    try {
      const { probeKvm } = await import('../kvm/probe.js');
      kvmProbe = probeKvm();
    } catch (e) {
      kvmProbe = { usable: false, reason: `cannot load the KVM backend: ${(e as Error).message}` };
    }
  }
  const useKvm = choice === 'kvm' || (choice === 'auto' && kvmProbe?.usable === true && kvmProbe.native);
  if (!useKvm) {
    if (choice === 'auto') notes.push(kvmProbe?.usable ? 'KVM is usable but not native here (kvm-pvm): using the host CPU oracle' : `KVM not usable (${kvmProbe && !kvmProbe.usable ? kvmProbe.reason : '?'}): using the host CPU oracle`);
    const why = NativeOracle.unavailable();
    if (why) return `native oracle unavailable: ${why}`;
    return { oracle: new NativeOracle(), entries: generatorEntries(true), sse: true, notes };
  }
  if (!kvmProbe || !kvmProbe.usable) return `KVM oracle unavailable: ${kvmProbe && !kvmProbe.usable ? kvmProbe.reason : 'probe failed'}`;
  const kvm = await import('../kvm/index.js');
  const oracle = new KvmOracle({ allocateGuestMemory: kvm.allocateGuestMemory, newVcpu: (m) => new kvm.KvmVcpu(m), native: kvmProbe.native });
  const sse = kvmProbe.native;
  if (!sse) notes.push("kvm-pvm: SSE instructions are not generated (the kernel's emulator lacks SSE arithmetic)");
  let all = generatorEntries(sse);
  if (!kvmProbe.native) {
    // Verified against the host CPU (fuzz:cpu --oracle kvm reports them as oracle limitations):
    // kvm-pvm's emulator computes SF/ZF/PF of aam/aad from the wrong operand width.
    all = all.filter((s) => !KVM_PVM_WRONG.has(s.mnemonic));
    notes.push(`kvm-pvm: left out because its emulator gets them wrong (verified on the host CPU): ${[...KVM_PVM_WRONG].join(', ')}`);
  }
  const { entries, excluded } = kvmEntries(oracle, all);
  if (excluded.length) notes.push(`left out because this KVM cannot run them (unknown-exit): ${excluded.join(', ')}`);
  return { oracle, entries, sse, notes };
}

/** Probe every entry with a few single-instruction cases; entries the oracle reports unsupported are left out. */
export function kvmEntries(oracle: Oracle, all: OpSpec[]): { entries: OpSpec[]; excluded: string[] } {
  const r = new Rng(0x6b766d);
  const cases: DiffCase[] = [];
  const owner: number[] = [];
  all.forEach((s, i) => {
    for (let k = 0; k < 3; k++) {
      cases.push({ steps: [makeStep(s, r)], regs: [1, 2, 3, 0, 0, 5, 6, 7], eflags: 0x202, xmm: null, scratch: new Array(512).fill(0x11), stack: new Array(512).fill(0) });
      owner.push(i);
    }
  });
  const bad = new Set<number>();
  const res = oracle.run(cases.map((c) => caseInput(c).input));
  res.forEach((x, k) => { if (!x.ok && x.unsupported) bad.add(owner[k]!); });
  const excluded = [...bad].map((i) => `${all[i]!.mnemonic}${all[i]!.op > 0xff ? ' 0f' + (all[i]!.op & 0xff).toString(16) : ' ' + all[i]!.op.toString(16)}`);
  return { entries: all.filter((_, i) => !bad.has(i)), excluded: [...new Set(excluded)] };
}

/** The process-backend oracle: every table entry, with SSE (the host processor runs the code). */
async function openProcessOracle(): Promise<OpenedOracle | string> {
  let proc: typeof import('../process/index.js');
  try {
    proc = await import('../process/index.js');
  } catch (e) {
    return `process oracle unavailable: cannot load the process backend: ${(e as Error).message}`;
  }
  const probe = proc.probeProcessBackend();
  if (!probe.usable) return `process oracle unavailable: ${probe.reason}`;
  const oracle = new ProcessOracle({ allocateGuestMemory: proc.allocateSharedGuestMemory, newVcpu: (m) => new proc.ProcessVcpu(m) });
  return { oracle, entries: generatorEntries(true), sse: true, notes: [] };
}
