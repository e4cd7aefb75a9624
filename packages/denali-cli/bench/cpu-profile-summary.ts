/**
 * Summarise a V8 CPU profile (`.cpuprofile`, e.g. from `pnpm bench:web-profile --cpu-prof FILE`
 * or `node --cpu-prof`): self time per function and per source file, largest first, as
 * percentages of the sampled time (idle included, so what the process did not spend is visible).
 * Run: npx tsx packages/denali-cli/bench/cpu-profile-summary.ts FILE [ROWS]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: cpu-profile-summary.ts FILE.cpuprofile [ROWS]');
  process.exit(2);
}
const rows = Number(rowsArg ?? 40);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const perNode = new Map<number, number>();
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  perNode.set(id, (perNode.get(id) ?? 0) + dt);
  total += dt;
});
const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const [id, t] of perNode) {
  const f = nodes.get(id)!.callFrame;
  const where = f.url.split('/').slice(-2).join('/');
  const fn = `${f.functionName || '(anonymous)'} ${where}${where ? `:${f.lineNumber + 1}` : ''}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + t);
  const k = where || f.functionName;
  byFile.set(k, (byFile.get(k) ?? 0) + t);
}
const pct = (t: number): string => `${((t / total) * 100).toFixed(1).padStart(5)} %`;
console.log(`${(total / 1000).toFixed(0)} ms sampled`);
for (const [k, t] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`${pct(t)}  ${k}`);
console.log('by file:');
for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`${pct(t)}  ${k}`);
