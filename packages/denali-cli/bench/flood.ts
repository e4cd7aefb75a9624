/**
 * `pnpm bench:flood`: a hostile guest flooding its console (issue 7), measured.
 *  1. The flood guest (1 MiB writes, a newline every 64 bytes, forever) next to httpd behind
 *     `-p`, with `denali run`'s stdout a slow pipe (the reader takes 2 KiB every 10 ms,
 *     ~200 KiB/s): httpd latency (p50, p99, max), the largest RSS of the denali process, and
 *     how long Ctrl-C (SIGINT) takes to end the run.
 *  2. Two VMs writing N MiB each without a newline (prefixed console), stdout read flat out:
 *     wall time and largest RSS for N = 8, 16, 32 — linear time, flat memory.
 * Options: --requests N (default 50), --gap MS between requests (default 100),
 * --backend emu|kvm (default emu).
 */
import { freePort } from './free-port.js';
import { buildFlood, buildHttpd, floodNextToHttpd, noNewlineFlood, percentile } from './flood-harness.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const MiB = 1024 * 1024;


const flood = await buildFlood('flood', { newlines: true, mib: 0 });
const httpd = await buildHttpd();
const load = { requests: Number(opt('--requests') ?? 50), gapMs: Number(opt('--gap') ?? 100), bytesPerTick: 2048, backend: opt('--backend') };
const ms = (n: number): string => `${n.toFixed(1)} ms`;
const latency = (l: number[]): string => `p50 ${ms(percentile(l, 50))}, p99 ${ms(percentile(l, 99))}, max ${ms(l.at(-1) ?? NaN)}`;
const base = await floodNextToHttpd(undefined, httpd, await freePort(), load);
const r = await floodNextToHttpd(flood, httpd, await freePort(), load);
console.log('flood guest next to httpd, stdout a slow pipe (~200 KiB/s):');
console.log(`  httpd latency over ${r.latencies.length} GETs: ${latency(r.latencies)} (httpd alone: ${latency(base.latencies)})`);
console.log(`  max RSS of denali run: ${(r.maxRss / MiB).toFixed(0)} MiB (httpd alone: ${(base.maxRss / MiB).toFixed(0)} MiB); console bytes the reader got: ${r.received}`);
console.log(`  Ctrl-C to exit: ${ms(r.stopMs)} (exit status ${r.exitCode})`);

console.log('two VMs, no newline, stdout read flat out:');
for (const mib of [8, 16, 32]) {
  const img = await buildFlood('nonl', { newlines: false, mib });
  const n = await noNewlineFlood(img);
  console.log(
    `  ${mib} MiB per VM: ${ms(n.ms)}, max RSS ${(n.maxRss / MiB).toFixed(0)} MiB, ${n.bytes} bytes out, longest line ${n.longestLine} bytes, exit ${n.exitCode}`,
  );
}
