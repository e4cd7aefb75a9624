// pnpm bench:top [-- --vms N --seconds S]: the cost of watching a host with `denali top`.
// Starts an instance of N VMs (top-host.ts, default 10,000), runs `denali top` in a real
// terminal (tmux, 80×24), lets it settle, then reads the CPU time of the top process and of
// the instance over S seconds (default 20) from /proc. Prints % of one core for each, and the
// time one refresh takes (GET /v1/instance + /v1/vms) measured from this process.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SUMMARY_FIELDS } from '../src/top/model.js';

const root = resolve(import.meta.dirname, '../../..');
const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const vms = arg('vms', 10_000);
const seconds = arg('seconds', 20);
const rt = mkdtempSync(join(tmpdir(), 'denali-bench-top-'));
const env = { ...process.env, DENALI_RUNTIME_DIR: rt };
const TICK = 100; // USER_HZ: /proc/<pid>/stat times are in 1/100 s

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

function get(path: string): Promise<number> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const req = request({ socketPath: join(rt, 'bench-top.sock'), path }, (r) => {
      r.resume();
      r.on('end', () => res(performance.now() - t0));
    });
    req.on('error', rej);
    req.end();
  });
}

const host = spawn(process.execPath, ['--import', 'tsx', join(root, 'packages/denali-cli/bench/top-host.ts'), String(vms)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
const bootT0 = performance.now();
await new Promise<void>((r) => host.stdout!.on('data', (c: Buffer) => c.toString().includes('ready') && r()));
console.log(`instance with ${vms} VMs up in ${((performance.now() - bootT0) / 1000).toFixed(1)} s`);
for (const [what, path] of [
  ['all counters', '/v1/vms'],
  ["the table's fields", `/v1/vms?fields=${SUMMARY_FIELDS.join(',')}`],
]) {
  const refresh: number[] = [];
  for (let i = 0; i < 5; i++) refresh.push((await get('/v1/instance')) + (await get(path!)));
  refresh.sort((a, b) => a - b);
  console.log(`one refresh (GET /v1/instance + /v1/vms, ${what}, ${vms} VMs): median ${refresh[2]!.toFixed(0)} ms`);
}

const session = `denali-bench-top-${process.pid}`;
execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '80', '-y', '24', '-e', `DENALI_RUNTIME_DIR=${rt}`, `exec ${join(root, 'bin/denali')} top`]);
try {
  const topPid = Number(execFileSync('tmux', ['display', '-p', '-t', session, '#{pane_pid}']).toString().trim());
  await new Promise((r) => setTimeout(r, 5000));
  const screen = execFileSync('tmux', ['capture-pane', '-p', '-t', session]).toString();
  if (!/NAME/.test(screen)) throw new Error(`top did not show its table:\n${screen}`);
  const t0 = performance.now();
  const top0 = cpuSeconds(topPid);
  const host0 = cpuSeconds(host.pid!);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const wall = (performance.now() - t0) / 1000;
  const topPct = ((cpuSeconds(topPid) - top0) / wall) * 100;
  const hostPct = ((cpuSeconds(host.pid!) - host0) / wall) * 100;
  console.log(`denali top watching ${vms} VMs (80×24, refresh 1/s) over ${wall.toFixed(0)} s: ${topPct.toFixed(1)}% of one core`);
  console.log(`the instance meanwhile (its VMs + serving top): ${hostPct.toFixed(1)}% of one core`);
} finally {
  execFileSync('tmux', ['kill-session', '-t', session]);
  host.kill('SIGTERM');
}
