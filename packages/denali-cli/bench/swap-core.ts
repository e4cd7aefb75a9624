/**
 * `pnpm bench:swap-core`: Yakima's swap and clone mechanisms on examples/httpd (emulator),
 * printed as numbers (issue 8 targets in brackets):
 *  - clone boot: `addVms(httpd, N)` until all N are booted copies (template made), then the
 *    first request to a sample of them (swap-in + emulated httpd);
 *  - host memory per swapped-out VM (V8 heap + external + RSS growth over N VMs / N) [≤ 4 KiB];
 *  - host memory per resident idle httpd VM beyond its private pages, and its private pages;
 *  - swap-in latency p50/p99 [p50 ≤ 1 ms] and swap-ins per second [≥ 1,000] of httpd VMs that
 *    served a request, and bytes written per swap-out;
 *  - the swap-in mechanism: one preadv into the template mapping vs mapping the record
 *    privately and faulting pages in (Firecracker-style), on the same records.
 * Options: --vms N (clones, default 10000; 100000 works), --resident N (default 200), --rounds N (default 3).
 * Run with --expose-gc (the package script does) for stable memory numbers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readImageFile, type DenaliImage } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import { VirtualHost, Yakima, type Vm } from '@denali/yakima';
import { privatePages } from '../../yakima/src/memory/template.js';

const privatePageCount = (vm: Vm): number => privatePages(vm.memory).length;
import { httpGet } from '../test/httpd-http.js';
import { compareMechanisms } from './swap-mechanisms.js';

const root = resolve(import.meta.dirname, '../../..');
const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = opt('--vms', 10_000);
const RESIDENT = opt('--resident', 200);
const ROUNDS = opt('--rounds', 3);

const gc = (globalThis as { gc?: () => void }).gc;
const settle = async (): Promise<void> => {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
};
/** V8 heap in use (JS objects) and RSS; `external` is left out: it counts mapped guest memory views at their full size. */
const mem = (): { js: number; rss: number } => {
  const m = process.memoryUsage();
  return { js: m.heapUsed, rss: m.rss };
};
const kib = (b: number): string => `${(b / 1024).toFixed(2)} KiB`;
const pct = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, what: string, ms = 600_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

async function cloneBoot(image: DenaliImage, dir: string): Promise<void> {
  await settle();
  const m0 = mem();
  // The default /16 holds 65,533 VMs; larger runs get a /12.
  const y = new Yakima({ network: N > 60_000 ? { subnet: '10.64.0.0/12' } : true, swapDir: dir, memoryBudget: 4 * 2 ** 30 });
  const t0 = performance.now();
  const vms = y.addVms(image, N, { args: ['80', '1'] });
  const done = y.run();
  await until(() => vms.every((v) => v.state === 'swapped'), 'the clone template');
  const tBoot = performance.now() - t0;
  await settle();
  const m1 = mem();
  console.log(`clone boot: ${N} httpd VMs booted (1 boot + ${N - 1} copy-on-write clones) in ${(tBoot / 1000).toFixed(2)} s  [target: 10,000 in ≤ 30 s]`);
  console.log(`swapped-out VM host memory: ${kib((m1.js - m0.js) / N)} JS heap, ${kib((m1.rss - m0.rss) / N)} RSS growth (heap, native, page tables), per VM over ${N} VMs  [target ≤ 4 KiB]`);
  // First request to a sample: swap-in of a never-run clone + its first request on the emulator.
  const host = new VirtualHost(y.net!);
  const sample = Math.min(N, 200);
  const t1 = performance.now();
  const each: number[] = [];
  for (let i = 0; i < sample; i++) {
    const vm = vms[Math.floor((i * N) / sample)]!;
    const t = performance.now();
    const r = await httpGet(host, y.net!.addressOf(vm.id), '/index.html');
    each.push(performance.now() - t);
    if (!r.subarray(0, 15).toString().includes('200')) throw new Error(`VM ${vm.id} answered ${r.subarray(0, 40).toString()}`);
  }
  const perFirst = (performance.now() - t1) / sample;
  console.log(
    `first request to a clone (swap-in + emulated httpd with a cold block cache, sequential, ${sample} clones): median ${pct(each, 0.5).toFixed(1)} ms, p90 ${pct(each, 0.9).toFixed(1)} ms, mean ${perFirst.toFixed(1)} ms; all ${N} answering once ≈ ${((tBoot + perFirst * N) / 1000).toFixed(0)} s`,
  );
  y.stop();
  await done;
  await y.close();
}

/** A booted httpd VM (plain addVm, no request yet): what issue 8 measured at 3.16 MB per VM. */
async function bootedIdle(image: DenaliImage, dir: string): Promise<void> {
  const n = 50;
  await settle();
  const m0 = mem();
  const y = new Yakima({ network: true, swapDir: dir, memoryBudget: 8 * 2 ** 30 });
  const vms = Array.from({ length: n }, () => y.addVm(image, { args: ['80', '1'] }));
  const done = y.run();
  await until(() => vms.every((v) => v.state === 'idle'), 'httpd to boot');
  await settle();
  const m1 = mem();
  const pages = vms.reduce((k, v) => k + privatePageCount(v), 0) / n;
  console.log(
    `booted idle httpd VM (addVm, before any request): ${kib((m1.js - m0.js) / n)} of JS objects + ${kib(pages * 4096)} of private guest pages, ${kib((m1.rss - m0.rss) / n)} RSS growth per VM over ${n} VMs (before: 3.16 MB per VM, of which 0.75 MB JS)`,
  );
  y.stop();
  await done;
  await y.close();
}

async function residentAndSwap(image: DenaliImage, dir: string): Promise<void> {
  await settle();
  const m0 = mem();
  const y = new Yakima({ network: true, swapDir: dir, memoryBudget: 8 * 2 ** 30 });
  const host = new VirtualHost(y.net!);
  const vms = y.addVms(image, RESIDENT, { args: ['80', '1'] });
  const done = y.run();
  await until(() => vms.every((v) => v.state === 'swapped'), 'the clone template');
  for (const vm of vms) await httpGet(host, y.net!.addressOf(vm.id), '/index.html');
  await until(() => vms.every((v) => v.state === 'idle'), 'the VMs to idle');
  await settle();
  const m1 = mem();
  const priv = vms.reduce((n, v) => n + v.residentBytes(), 0) / RESIDENT;
  const perVm = (m1.js - m0.js) / RESIDENT;
  const pagesPerVm = vms.reduce((n, v) => n + privatePageCount(v), 0) / RESIDENT;
  console.log(
    `resident idle httpd VM (a clone that served one request): ${kib(perVm)} of JS objects, ${kib(pagesPerVm * 4096)} of private guest pages, ${kib((m1.rss - m0.rss) / RESIDENT)} RSS growth per VM; Yakima counts ${kib(priv)} (before this change: 3.16 MB per httpd VM, 0.75 MB of it JS)`,
  );

  const lat: number[] = [];
  const rates: string[] = [];
  let written = 0;
  let swapIns = 0;
  let secs = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const w0 = y.swapStats().bytesWritten;
    for (const vm of vms) await y.swapOut(vm);
    written += y.swapStats().bytesWritten - w0;
    const t0 = performance.now();
    for (const vm of vms) {
      const s = performance.now();
      await y.swapIn(vm);
      lat.push((performance.now() - s) * 1000);
    }
    const s = (performance.now() - t0) / 1000;
    rates.push((vms.length / s).toFixed(0));
    secs += s;
    swapIns += vms.length;
  }
  const st = y.swapStats();
  console.log(
    `swap-in latency (httpd VMs that served a request, page cache warm): p50 ${pct(lat, 0.5).toFixed(0)} µs, p99 ${pct(lat, 0.99).toFixed(0)} µs  [target p50 ≤ 1 ms]; Yakima's own p50 ${st.swapInLatencyUs.p50.toFixed(0)} µs p99 ${st.swapInLatencyUs.p99.toFixed(0)} µs`,
  );
  console.log(`swap-ins per second: ${(swapIns / secs).toFixed(0)} (${swapIns} swap-ins; per round ${rates.join(', ')}: the first round also pays for collecting the served VMs' dropped vCPU objects)  [target ≥ 1,000]`);
  console.log(`swap-out record per httpd VM: ${kib(written / (ROUNDS * RESIDENT))} written (private non-zero pages + vCPU state)`);
  // The first request after a swap-in (the VM's block cache is rebuilt on demand).
  const t2 = performance.now();
  for (const vm of vms.slice(0, 50)) {
    await y.swapOut(vm);
    await httpGet(host, y.net!.addressOf(vm.id), '/index.html');
  }
  console.log(`request to a swapped-out VM (swap-in + request): ${((performance.now() - t2) / 50).toFixed(2)} ms each (sequential, 50 VMs)`);
  y.stop();
  await done;
  await y.close();
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'denali-bench-swap-'));
  try {
    if (!gc) console.log('(run with node --expose-gc for stable memory numbers)');
    const built = await buildService(join(root, 'examples/httpd'), { out: join(dir, 'httpd.dni'), quiet: true });
    const image = await readImageFile(built.imagePath);
    await bootedIdle(image, dir);
    await cloneBoot(image, dir);
    await residentAndSwap(image, dir);
    compareMechanisms(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
