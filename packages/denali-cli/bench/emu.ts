/**
 * `pnpm bench:emu`: the emulator against native and QEMU user mode on three compute workloads,
 * side by side in one run, plus the emulator's boot time.
 *
 * Workloads (each an example with a known answer): examples/sha256, examples/coremix (a
 * CoreMark-like mix: linked lists, 24x24 matrix multiply, state machine, CRC-16) and
 * examples/strmem (memcpy, memmove, memset, strlen, strcmp, memchr). Each is built twice from
 * the same sources and the same libilwaco.a: as a Denali image, and as a Linux i386 executable
 * (bench/native/build-i386.ts) that runs natively and under `qemu-i386`.
 *
 * Times are medians of `--runs` rounds; each round runs native, qemu and the emulator in turn
 * (pairing keeps ratios meaningful while the shared machine's speed drifts). Native and QEMU
 * are whole processes (spawn to exit); the emulator is one fresh VM in this process, from
 * adding the image to its exit (boot included, Node start-up not). All three outputs must be
 * identical, or the row says WRONG OUTPUT and the exit status is 1.
 *
 * Options: --runs N (default 5), --only NAME[,NAME], --scale X (multiplies every workload's
 * size, default 1), --boot-runs N (boot-time samples, default 20).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readImageFile } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import { MemoryConsoleSink, Yakima } from '@denali/yakima';
import { buildNativeI386 } from './native/build-i386.js';

const root = resolve(import.meta.dirname, '../../..');
const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const runs = Math.max(1, Number(opt('--runs') ?? 5));
const bootRuns = Math.max(1, Number(opt('--boot-runs') ?? 20));
const scale = Number(opt('--scale') ?? 1);
const only = opt('--only')?.split(',');

/** name -> size argument at scale 1 (about 0.1-0.2 s native each). */
const WORKLOADS: [string, number][] = [
  ['sha256', 16384],
  ['coremix', 6000],
  ['strmem', 1500],
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function hasQemu(): boolean {
  return spawnSync('qemu-i386', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Wall seconds and stdout of one whole process. */
function timeProcess(cmd: string, args: string[]): { secs: number; out: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const secs = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}: ${r.stderr}`);
  return { secs, out: r.stdout };
}

/** Wall seconds, console output and instructions of one VM on the emulator. */
async function timeEmu(image: Awaited<ReturnType<typeof readImageFile>>, args: string[]): Promise<{ secs: number; out: string; instr: number }> {
  const sink = new MemoryConsoleSink();
  const t0 = performance.now();
  const y = new Yakima({ sink, backend: 'emu' });
  const vm = y.addVm(image, { args });
  await y.run();
  const secs = (performance.now() - t0) / 1000;
  if (vm.state !== 'exited' || vm.exitStatus !== 0) throw new Error(`emulator: ${vm.name} ended ${vm.state} (${vm.exitStatus})`);
  return { secs, out: sink.text(vm.name), instr: vm.vcpu.instructionsRetired };
}

const fmtS = (s: number): string => `${s.toFixed(3)} s`;
const fmtX = (x: number): string => `${x.toFixed(1)}×`;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'denali-bench-'));
  const qemu = hasQemu();
  let wrong = false;
  try {
    console.log(`emulator vs native (gcc -m32) vs qemu-i386, median of ${runs} paired rounds, scale ${scale}`);
    if (!qemu) console.log('qemu-i386 not found: install it with `apt-get install qemu-user` (Debian/Ubuntu) for the QEMU column');
    const rows: string[][] = [['workload', 'native', 'qemu-i386', 'emulator', 'emu MIPS', 'qemu/native', 'emu/native', 'emu/qemu']];
    for (const [name, size] of WORKLOADS) {
      if (only && !only.includes(name)) continue;
      const args = [String(Math.max(1, Math.round(size * scale)))];
      const svc = join(root, 'examples', name);
      const built = await buildService(svc, { out: join(dir, `${name}.dni`), quiet: true });
      const image = await readImageFile(built.imagePath);
      const exe = await buildNativeI386(svc, join(dir, 'i386'));
      const nat: number[] = [], qem: number[] = [], emu: number[] = [];
      let instr = 0;
      const outs = new Set<string>();
      for (let r = 0; r < runs; r++) {
        const n = timeProcess(exe, args);
        nat.push(n.secs);
        outs.add(n.out);
        if (qemu) {
          const q = timeProcess('qemu-i386', [exe, ...args]);
          qem.push(q.secs);
          outs.add(q.out);
        }
        const e = await timeEmu(image, args);
        emu.push(e.secs);
        outs.add(e.out);
        instr = e.instr;
      }
      const ok = outs.size === 1;
      if (!ok) wrong = true;
      const [mn, mq, me] = [median(nat), qemu ? median(qem) : NaN, median(emu)];
      rows.push([
        `${name} ${args[0]}${ok ? '' : ' (WRONG OUTPUT)'}`,
        fmtS(mn),
        qemu ? fmtS(mq) : 'n/a',
        fmtS(me),
        (instr / 1e6 / me).toFixed(0),
        qemu ? fmtX(mq / mn) : 'n/a',
        fmtX(me / mn),
        qemu ? fmtX(me / mq) : 'n/a',
      ]);
      if (!ok) console.log(`${name}: outputs differ:\n${[...outs].join('---\n')}`);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const [k, r] of rows.entries()) {
      console.log(`| ${r.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`);
      if (k === 0) console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    }

    // Boot time: image load -> first console byte.
    const hello = await buildService(join(root, 'examples/hello'), { out: join(dir, 'hello.dni'), quiet: true });
    const samples: number[] = [];
    for (let i = 0; i < bootRuns; i++) {
      const start = performance.now();
      const img = await readImageFile(hello.imagePath);
      const y2 = new Yakima({ sink: new MemoryConsoleSink(), backend: 'emu' });
      const v = y2.addVm(img);
      await y2.run();
      if (v.console.firstByteAt === undefined) throw new Error('hello printed nothing');
      samples.push(v.console.firstByteAt - start);
    }
    console.log(`boot time (examples/hello, image load to first console byte): median ${median(samples).toFixed(2)} ms, min ${Math.min(...samples).toFixed(2)} ms over ${bootRuns} runs`);
    if (wrong) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
