/**
 * `pnpm bench:web-profile`: where one keep-alive HTTP request through `-p` costs, per request.
 * Runs examples/httpd in this process on one Yakima (user-mode uplink, `-p PORT:80`), puts a
 * keep-alive load on it with wrk (or the Node client), and prints per request: guest
 * instructions (emulator), VM exits, hypercalls, upcalls, IDLEs, frames each way, the uplink's
 * TCP counters and host CPU time; with `--eip` (emulator) the guest functions that retire
 * the most instructions, from the linked ELF's symbols (`nm`).
 *
 * Options: --backend emu|process (default emu), --seconds N (default 5), --connections N
 * (default 8), --eip (guest instruction profile, emulator only), --top N (rows, default 30),
 * --cpu-prof FILE (a V8 CPU profile of Yakima's main thread during the load only, start-up and
 * boot excluded; open it in Chrome DevTools or summarise it with
 * `npx tsx packages/denali-cli/bench/cpu-profile-summary.ts FILE`).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './free-port.js';
import { manifestFromInput, readImage, writeImageFile } from '@denali/image-format';
import { compileAndLink, loadServiceConfig } from '@denali/ilwaco-sdk';
import { Yakima, attachUserModeUplink, type Backend } from '@denali/yakima';
import { EmuCpu } from '../../yakima/src/cpu/emu/index.js';
import { runNodeClient, runWrk, wrkVersion } from './web-load.js';

const root = resolve(import.meta.dirname, '../../..');
const HTTPD = join(root, 'examples/httpd');
const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const backend = (opt('--backend') ?? 'emu') as Backend;
const seconds = Number(opt('--seconds') ?? 5);
const connections = Number(opt('--connections') ?? 8);
const eip = argv.includes('--eip');
const top = Number(opt('--top') ?? 30);
const cpuProf = opt('--cpu-prof');


/** Function symbols of an ELF, sorted by address (`nm -n`). */
function symbols(elfPath: string): { addr: number; name: string }[] {
  const out = execFileSync('nm', ['-n', '--defined-only', elfPath], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((p) => p.length === 3 && /[tTwW]/.test(p[1]!))
    .map((p) => ({ addr: parseInt(p[0]!, 16), name: p[2]! }));
}

function symbolOf(syms: { addr: number; name: string }[], a: number): string {
  let lo = 0;
  let hi = syms.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (syms[mid]!.addr <= a) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best < 0 ? `0x${a.toString(16)}` : syms[best]!.name;
}

/**
 * Count retired instructions per block start address: wraps each block's compiled function
 * (its return value is what it retired, loops included); interpreted blocks count their length.
 */
function profileEmu(cpu: EmuCpu, hist: Map<number, number>): void {
  const cache = cpu.cache;
  const lookup = cache.lookup.bind(cache);
  const wrapped = new WeakSet<object>();
  cache.lookup = (at: number) => {
    const b = lookup(at);
    hist.set(-1, (hist.get(-1) ?? 0) + 1);
    const fn = b.fn;
    if (fn === null) hist.set(b.addr, (hist.get(b.addr) ?? 0) + b.instrs.length);
    else if (!wrapped.has(fn)) {
      const w: typeof fn = (c, left) => {
        const d = fn(c, left);
        hist.set(b.addr, (hist.get(b.addr) ?? 0) + d);
        return d;
      };
      wrapped.add(w);
      b.fn = w;
    }
    return b;
  };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'denali-web-profile-'));
  try {
    const config = loadServiceConfig(HTTPD);
    const { input, elf } = await compileAndLink(config, process.env.CC ?? 'gcc', true, work);
    const elfPath = join(work, 'httpd.elf');
    await writeFile(elfPath, elf);
    manifestFromInput(input);
    const imagePath = join(work, 'httpd.dni');
    const image = await readImage(await writeImageFile(imagePath, input));
    const yakima = new Yakima({ backend, network: true, log: (l) => console.error(l) });
    const threads = String(Math.max(8, connections));
    const vm = yakima.addVm(image, { args: ['80', threads] });
    const hist = new Map<number, number>();
    if (eip && vm.vcpu instanceof EmuCpu) profileEmu(vm.vcpu, hist);
    const missCount = { n: 0 };
    if (vm.vcpu instanceof EmuCpu) {
      const m = (vm.vcpu.cache as unknown as { map: Map<number, unknown> }).map;
      const g = m.get.bind(m);
      m.get = (k: number) => {
        missCount.n++;
        return g(k);
      };
    }
    const runTime = { ms: 0, calls: 0 };
    const vcpu = vm.vcpu;
    const origRun = vcpu.run.bind(vcpu);
    vcpu.run = (max: number) => {
      const t = performance.now();
      const r = origRun(max);
      runTime.ms += performance.now() - t;
      runTime.calls++;
      return r;
    };
    const port = await freePort();
    const up = await attachUserModeUplink(yakima, [{ hostPort: port, guestPort: 80 }]);
    const running = yakima.run();
    const url = `http://127.0.0.1:${port}/page-00.html`;
    for (let i = 0; ; i++) {
      try {
        const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
        await r.arrayBuffer();
        if (r.ok) break;
      } catch {
        if (i > 200) throw new Error('httpd did not answer');
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const snap = () => ({
      instr: vm.vcpu.instructionsRetired,
      ...vm.stats,
      framesIn: up.stats.framesIn,
      framesOut: up.stats.framesOut,
      tcp: { ...up.stats.tcp },
      cpu: process.cpuUsage(),
      runMs: runTime.ms,
      runCalls: runTime.calls,
    });
    hist.clear();
    await up.refreshStats(); // the uplink's counters are mirrored from its worker thread
    const before = snap();
    const wrk = await wrkVersion();
    const spec = { ports: [port], paths: ['/page-00.html'], connections, seconds, workDir: work, keepAlive: true };
    const session = cpuProf ? new Session() : undefined;
    if (session) {
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.start');
    }
    const t0 = performance.now();
    const res = wrk ? await runWrk(spec) : await runNodeClient(spec);
    const wall = (performance.now() - t0) / 1000;
    await up.refreshStats();
    const after = snap();
    if (session) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(cpuProf!, JSON.stringify(profile));
      session.disconnect();
      console.log(`CPU profile of the load written to ${cpuProf}`);
    }
    const n = res.ok;
    const per = (a: number, b: number): string => ((a - b) / n).toFixed(2);
    console.log(`web-profile: ${backend}, ${connections} connections, ${seconds} s: ${n} requests, ${Math.round(n / res.seconds)} req/s, ${res.errors} errors`);
    console.log(`per request: ${vm.vcpu instanceof EmuCpu ? `guest instructions ${per(after.instr, before.instr)}, ` : ''}VM entries ${per(after.entries, before.entries)}, exits ${per(after.exits, before.exits)}, hypercalls ${per(after.hypercalls, before.hypercalls)}, upcalls ${per(after.upcalls, before.upcalls)}, idles ${per(after.idles, before.idles)}, preemptions ${per(after.preemptions, before.preemptions)}`);
    console.log(`per request: frames guest->host ${per(after.framesIn, before.framesIn)}, host->guest ${per(after.framesOut, before.framesOut)}, delayed ACKs ${per(after.tcp.delayedAcks, before.tcp.delayedAcks)}, retransmits ${after.tcp.retransmits - before.tcp.retransmits} in all`);
    const user = (after.cpu.user - before.cpu.user) / 1e6;
    const sys = (after.cpu.system - before.cpu.system) / 1e6;
    console.log(`Yakima process CPU: user ${user.toFixed(2)} s, system ${sys.toFixed(2)} s over ${wall.toFixed(1)} s (${(((user + sys) / n) * 1e6).toFixed(1)} µs per request); guest CPU ${((after.cpuTimeUs - before.cpuTimeUs) / n).toFixed(1)} µs per request`);
    if (after.runCalls > before.runCalls)
      console.log(`vCPU run: ${(((after.runMs - before.runMs) * 1000) / n).toFixed(1)} µs per request in ${per(after.runCalls, before.runCalls)} calls (${((after.instr - before.instr) / ((after.runMs - before.runMs) * 1000)).toFixed(1)} MIPS)`);
    if (vm.vcpu instanceof EmuCpu) {
      const c = vm.vcpu.cache;
      console.log(`emulator blocks: decoded ${c.decoded}, shared ${c.reused}, invalidated ${c.invalidated}, fast-table misses ${(missCount.n / n).toFixed(0)} per request`);
    }
    if (eip && hist.size) {
      const syms = symbols(elfPath);
      const byFn = new Map<string, number>();
      let total = 0;
      console.log(`block dispatches per request: ${((hist.get(-1) ?? 0) / n).toFixed(0)}`);
      hist.delete(-1);
      for (const [a, c] of hist) {
        const s = symbolOf(syms, a);
        byFn.set(s, (byFn.get(s) ?? 0) + c);
        total += c;
      }
      console.log(`guest instructions by function (${(total / n).toFixed(0)} per request):`);
      for (const [s, c] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) {
        console.log(`  ${((c / total) * 100).toFixed(1).padStart(5)} %  ${(c / n).toFixed(0).padStart(7)}  ${s}`);
      }
    }
    // The numbers are printed: a shutdown that stalls (a VM mid-exit) must not hang the bench.
    setTimeout(() => {
      console.error('web-profile: shutdown took over 10 s; exiting');
      process.exit(1);
    }, 10_000).unref();
    await up.close();
    yakima.stop();
    await running;
    await yakima.close();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
