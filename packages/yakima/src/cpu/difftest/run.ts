/**
 * The differential tester's engine: run batches of generated cases on an oracle and on the
 * emulator (interpreter and block compiler), compare registers, defined flags, XMM and
 * memory, shrink diverging cases, and turn them into reproducers and regression records.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flagNames } from '../emu/flags.js';
import type { OpSpec } from '../emu/instr.js';
import { analyze, caseInput, generateCase, type DiffCase, type GenOptions } from './gen.js';
import { buildImage, CODE_BASE, DATA_BASE, REC, type CaseOutput } from './image.js';
import { runOnEmu, type CaseResult, type EngineMode, type Oracle } from './oracle.js';
import { Rng } from './rng.js';

const REG = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const h32 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');
const hexBytes = (b: Uint8Array | number[]): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

/** Differences between a reference state and the emulator's (empty when they agree). */
export function compareOutputs(ref: CaseOutput, emu: CaseOutput, flagMask: number): string[] {
  const d: string[] = [];
  for (let r = 0; r < 8; r++) if (ref.gpr[r] !== emu.gpr[r]) d.push(`${REG[r]}: oracle ${h32(ref.gpr[r]!)} emu ${h32(emu.gpr[r]!)}`);
  const fr = ref.eflags & flagMask, fe = emu.eflags & flagMask;
  if (fr !== fe) d.push(`eflags: oracle ${h32(fr)} emu ${h32(fe)} (differ in ${flagNames(fr ^ fe)}; compared ${flagNames(flagMask)})`);
  if (ref.xmm && emu.xmm) {
    for (let j = 0; j < 8; j++) {
      const a = ref.xmm.subarray(16 * j, 16 * j + 16), b = emu.xmm.subarray(16 * j, 16 * j + 16);
      if (hexBytes(a) !== hexBytes(b)) d.push(`xmm${j}: oracle ${hexBytes(a)} emu ${hexBytes(b)}`);
    }
  }
  const bytes = (what: string, base: number, a: Uint8Array, b: Uint8Array) => {
    for (let x = 0; x < a.length; x++) {
      if (a[x] === b[x]) continue;
      const s = x & ~15;
      d.push(`${what}+0x${(base + s).toString(16)}: oracle ${hexBytes(a.subarray(s, s + 16))} emu ${hexBytes(b.subarray(s, s + 16))}`);
      x = s + 15;
    }
  };
  bytes('record', REC.SCRATCH, ref.scratch, emu.scratch);
  bytes('record', REC.STACK, ref.stack, emu.stack);
  return d;
}

/** A case on which the emulator and the oracle disagree. */
export interface Finding {
  index: number;
  mode: EngineMode;
  diffs: string[];
  oracle: CaseResult;
  emu: CaseResult;
}

function diffResult(ref: CaseResult, emu: CaseResult, flagMask: number): string[] | null {
  if (!ref.ok) return ref.unsupported ? null : emu.ok ? [`oracle stopped (${ref.error}); emulator completed`] : [];
  if (!emu.ok) return [`emulator stopped: ${emu.error}`];
  return compareOutputs(ref.out, emu.out, flagMask);
}

export interface BatchResult {
  findings: Finding[];
  /** Cases the oracle could not run (its limitation). */
  unsupported: number;
  /** Per case: the oracle result (for shrinking / verification). */
  oracle: CaseResult[];
}

/** Run cases on the oracle and on the emulator in both modes. */
export function checkBatch(cases: DiffCase[], oracle: Oracle): BatchResult {
  const prepared = cases.map(caseInput);
  const inputs = prepared.map((p) => p.input);
  const ref = oracle.run(inputs);
  const findings: Finding[] = [];
  let unsupported = 0;
  ref.forEach((r) => { if (!r.ok && r.unsupported) unsupported++; });
  for (const mode of ['interpreter', 'compiled'] as const) {
    const emu = runOnEmu(inputs, mode);
    for (let k = 0; k < cases.length; k++) {
      if (findings.some((f) => f.index === k)) continue;
      const d = diffResult(ref[k]!, emu[k]!, prepared[k]!.flagMask);
      if (d && d.length) findings.push({ index: k, mode, diffs: d, oracle: ref[k]!, emu: emu[k]! });
    }
  }
  return { findings, unsupported, oracle: ref };
}

/** Does each candidate still diverge? (one oracle batch) */
function diverging(cands: DiffCase[], oracle: Oracle): boolean[] {
  if (!cands.length) return [];
  const res = checkBatch(cands, oracle);
  return cands.map((_, k) => res.findings.some((f) => f.index === k));
}

/** Shrink a diverging case: shortest diverging prefix, then drop single steps while it still diverges. */
export function shrink(c: DiffCase, oracle: Oracle): DiffCase {
  let cur = c;
  const prefixes: DiffCase[] = [];
  for (let n = 1; n < cur.steps.length; n++) prefixes.push({ ...cur, steps: cur.steps.slice(0, n) });
  const p = diverging(prefixes, oracle).indexOf(true);
  if (p >= 0) cur = prefixes[p]!;
  for (let round = 0; round < 40 && cur.steps.length > 1; round++) {
    const cands: DiffCase[] = [];
    for (let i = 0; i < cur.steps.length; i++) {
      const steps = cur.steps.slice(0, i).concat(cur.steps.slice(i + 1));
      if (analyze(steps).bad < 0) cands.push({ ...cur, steps });
    }
    const k = diverging(cands, oracle).indexOf(true);
    if (k < 0) break;
    cur = cands[k]!;
  }
  // Without SSE instructions left, drop the XMM state too when that keeps the divergence.
  if (cur.xmm && !cur.steps.some((s) => s.sse)) {
    const noX = { ...cur, xmm: null };
    if (diverging([noX], oracle)[0]) cur = noX;
  }
  return cur;
}

/** The code bytes of a single-case image (record at DATA_BASE) and where the case body starts. */
export function caseBytes(c: DiffCase): { bytes: Uint8Array; start: number } {
  const { input } = caseInput(c);
  const img = buildImage([input], 'hlt');
  const s = img.bodyStart[0]! - CODE_BASE, e = img.bodyEnd[0]! - CODE_BASE;
  return { bytes: img.code.slice(s, e), start: img.bodyStart[0]! };
}

/** objdump's disassembly of the case body (null when objdump is not available). */
export function disassemble(c: DiffCase): string | null {
  const { bytes, start } = caseBytes(c);
  const dir = mkdtempSync(join(tmpdir(), 'denali-dis-'));
  try {
    writeFileSync(join(dir, 'b'), bytes);
    const out = execFileSync('objdump', ['-D', '-b', 'binary', '-m', 'i386', `--adjust-vma=0x${start.toString(16)}`, join(dir, 'b')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter((l) => /^\s+[0-9a-f]+:/.test(l)).map((l) => l.replace(/\s+$/, '')).join('\n');
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** JSON form of a final state. */
export interface StateJson {
  gpr: string[];
  eflags: string;
  xmm: string | null;
  scratch: string;
  stack: string;
}
function stateJson(o: CaseOutput): StateJson {
  return { gpr: o.gpr.map(h32), eflags: h32(o.eflags), xmm: o.xmm ? hexBytes(o.xmm) : null, scratch: hexBytes(o.scratch), stack: hexBytes(o.stack) };
}
const unhex = (s: string): Uint8Array => new Uint8Array((s.match(/../g) ?? []).map((x) => parseInt(x, 16)));
export function stateFromJson(j: StateJson): CaseOutput {
  return { gpr: j.gpr.map((x) => parseInt(x, 16) >>> 0), eflags: parseInt(j.eflags, 16) >>> 0, xmm: j.xmm ? unhex(j.xmm) : null, scratch: unhex(j.scratch), stack: unhex(j.stack) };
}

/** A regression record (`test/difftest/regressions/*.json`). */
export interface Regression {
  name: string;
  /** What produced `expected`. */
  oracle: string;
  seed: number;
  found: string;
  /** The steps, one line each, and the body bytes (record at DATA_BASE). */
  steps: string[];
  bytes: string;
  disasm: string | null;
  case: DiffCase;
  flagMask: number;
  /** The reference final state. */
  expected: StateJson;
  /** What the emulator computed when the divergence was found. */
  emuAtDiscovery: StateJson | string;
  diffs: string[];
  /** Optional: what was wrong and how it was fixed. */
  fix?: string;
}

/** Run a shrunk diverging case again and build its regression record (null if it no longer diverges). */
export function makeRegression(c: DiffCase, oracle: Oracle, seed: number): Regression | null {
  const res = checkBatch([c], oracle);
  const f = res.findings[0];
  if (!f || !f.oracle.ok) return null;
  const { flagMask } = caseInput(c);
  const { bytes } = caseBytes(c);
  const first = c.steps.map((s) => s.text.split(' ')[0]).join('-').slice(0, 60);
  return {
    name: `${oracle.name}-${first}-${seed.toString(16)}`,
    oracle: oracle.description,
    seed,
    found: new Date().toISOString(),
    steps: c.steps.map((s) => s.text),
    bytes: hexBytes(bytes),
    disasm: disassemble(c),
    case: c,
    flagMask,
    expected: stateJson(f.oracle.out),
    emuAtDiscovery: f.emu.ok ? stateJson(f.emu.out) : f.emu.error,
    diffs: f.diffs,
  };
}

/** Replay a regression record on the emulator: the differences per engine mode (empty = fixed). */
export function replayRegression(reg: Regression): { mode: EngineMode; diffs: string[] }[] {
  const { input } = caseInput(reg.case);
  const expected = stateFromJson(reg.expected);
  return (['interpreter', 'compiled'] as const).map((mode) => {
    const r = runOnEmu([input], mode)[0]!;
    return { mode, diffs: r.ok ? compareOutputs(expected, r.out, reg.flagMask) : [`emulator stopped: ${r.error}`] };
  });
}

export function loadRegressions(dir: string): { file: string; reg: Regression }[] {
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  } catch {
    return [];
  }
  return files.map((file) => ({ file, reg: JSON.parse(readFileSync(join(dir, file), 'utf8')) as Regression }));
}

/** Human-readable reproducer. */
export function formatReproducer(reg: Regression): string {
  const c = reg.case;
  const L: string[] = [];
  L.push(`=== divergence ${reg.name} (seed 0x${reg.seed.toString(16)}; reference: ${reg.oracle})`);
  L.push(`steps (${c.steps.length}):`, ...c.steps.map((s, i) => `  ${i}: ${s.text}`));
  L.push(`bytes: ${reg.bytes}`);
  if (reg.disasm) L.push('disassembly (record at 0x' + DATA_BASE.toString(16) + ', EBX = record+0x' + (REC.SCRATCH + 128).toString(16) + '):', ...reg.disasm.split('\n').map((l) => '  ' + l.trim()));
  L.push(`initial: ${c.regs.map((v, r) => (r === 3 ? 'ebx=<ptr>' : r === 4 ? 'esp=<stack>' : `${REG[r]}=${h32(v)}`)).join(' ')} eflags=${h32(c.eflags)}`);
  if (c.xmm) for (let j = 0; j < 8; j++) L.push(`  xmm${j}=${hexBytes(c.xmm.slice(16 * j, 16 * j + 16))}`);
  const st = (name: string, s: StateJson | string) => {
    if (typeof s === 'string') return L.push(`${name}: ${s}`);
    L.push(`${name}: ${s.gpr.map((v, r) => `${REG[r]}=${v}`).join(' ')} eflags=${s.eflags}`);
  };
  st('oracle final', reg.expected);
  st('emu final   ', reg.emuAtDiscovery);
  L.push(`compared flags: ${flagNames(reg.flagMask)}`, 'differences:', ...reg.diffs.map((d) => '  ' + d));
  return L.join('\n');
}

/** Generate batch `k` of a run (deterministic from the run seed). */
export function generateBatch(seed: number, count: number, entries: readonly OpSpec[], opts: GenOptions): DiffCase[] {
  const r = new Rng(seed);
  return Array.from({ length: count }, () => generateCase(r, entries, opts));
}


