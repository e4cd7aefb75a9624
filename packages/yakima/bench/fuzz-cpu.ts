/**
 * Differential fuzzer of the emulator against a reference x86 (see src/cpu/difftest).
 *
 *   pnpm fuzz:cpu --seconds N [--seed S] [--oracle auto|native|kvm|process] [--batch B] [--max-steps L]
 *
 * Oracle `auto` is KVM when it runs guests natively (hardware virtualization), else the host
 * CPU in a 32-bit process; `process` is Yakima's process backend (the processor itself, entered
 * through the tender). Prints progress; every divergence is shrunk, printed as a
 * reproducer and written to packages/yakima/test/difftest/regressions/ (replayed by
 * test/difftest/regressions.test.ts). With the KVM oracle a divergence is checked against
 * the host CPU too: if the host agrees with the emulator it is a limitation of the KVM
 * oracle (kvm-pvm's instruction emulator), reported but not written as a regression. With the
 * process oracle the same check tells a defect of the process backend (the host CPU agrees with
 * the emulator, the tender's run does not) from one of the emulator.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkBatch, formatReproducer, generateBatch, makeRegression, mixSeed, NativeOracle, openOracle, shrink, compareOutputs, caseInput, type OracleChoice,
} from '../src/cpu/difftest/index.js';

const argv = process.argv.slice(2);
const opt = (name: string, def: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
};
const seconds = Number(opt('seconds', '60'));
const seed = Number(opt('seed', String(Date.now() % 0x7fffffff))) >>> 0;
const choice = opt('oracle', 'auto') as OracleChoice;
const maxSteps = Number(opt('max-steps', '20'));
const outDir = opt('out', join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'difftest', 'regressions'));

const opened = await openOracle(choice);
if (typeof opened === 'string') {
  console.log(opened);
  process.exit(2);
}
const { oracle, entries, sse, notes } = opened;
const batch = Number(opt('batch', oracle.name === 'kvm' ? '40' : '250'));
console.log(`fuzz:cpu  oracle: ${oracle.description}; seed 0x${seed.toString(16)}; ${seconds} s; ${entries.length} table entries${sse ? ' (with SSE)' : ' (no SSE)'}; batches of ${batch}, 1-${maxSteps} steps`);
for (const n of notes) console.log(`  note: ${n}`);

// A second opinion for KVM and process-backend divergences.
const native = oracle.name !== 'native' && NativeOracle.unavailable() === null ? new NativeOracle() : null;
const limitation = oracle.name === 'kvm' ? 'KVM oracle limitation' : 'process backend defect';

const t0 = performance.now();
let total = 0, batches = 0, unsupported = 0, found = 0, oracleLimits = 0;
let lastReport = t0;
const seen = new Set<string>();
while ((performance.now() - t0) / 1000 < seconds) {
  const bseed = mixSeed(seed, batches);
  const cases = generateBatch(bseed, batch, entries, { sse, maxSteps });
  const res = checkBatch(cases, oracle);
  batches++;
  total += cases.length;
  unsupported += res.unsupported;
  for (const f of res.findings) {
    const small = shrink(cases[f.index]!, oracle);
    const reg = makeRegression(small, oracle, bseed);
    if (!reg) continue;
    const key = reg.steps.map((s) => s.replace(/\(.*\)/, '')).join(';') + reg.diffs.map((d) => d.split(':')[0]).join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    if (native) {
      const n = native.run([caseInput(small).input])[0]!;
      const k = oracle.run([caseInput(small).input])[0]!;
      if (n.ok && k.ok && compareOutputs(n.out, k.out, reg.flagMask).length > 0) {
        const e = checkBatch([small], native).findings.length === 0;
        if (e) {
          oracleLimits++;
          console.log(`\n--- ${limitation} (the host CPU agrees with the emulator): ${reg.steps.join('; ')}\n    ${reg.diffs.join('\n    ')}`);
          continue;
        }
      }
    }
    found++;
    console.log('\n' + formatReproducer(reg));
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `${reg.name.replace(/[^a-z0-9.-]+/gi, '_')}.json`);
    writeFileSync(file, JSON.stringify(reg, null, 1) + '\n');
    console.log(`written ${file}`);
  }
  const now = performance.now();
  if (now - lastReport > 5000) {
    lastReport = now;
    const s = (now - t0) / 1000;
    console.log(`[${s.toFixed(0)} s] ${total} sequences (${(total / s).toFixed(0)}/s), ${found} divergences${oracleLimits ? `, ${oracleLimits} oracle limitations` : ''}${unsupported ? `, ${unsupported} cases the oracle could not run` : ''}`);
  }
}
const s = (performance.now() - t0) / 1000;
console.log(`done: ${total} sequences in ${batches} batches, ${(s / 60).toFixed(1)} min (${(total / s).toFixed(0)}/s), seed 0x${seed.toString(16)}, oracle ${oracle.name}: ${found} divergences${oracleLimits ? `, ${oracleLimits} ${limitation}s` : ''}${unsupported ? `, ${unsupported} unsupported cases` : ''}`);
oracle.close();
native?.close();
process.exit(found ? 1 : 0);
