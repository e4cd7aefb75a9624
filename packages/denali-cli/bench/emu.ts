/**
 * `pnpm bench:emu`: emulator speed and boot time, printed as numbers.
 *  - emulated MIPS (guest instructions retired per wall-clock second) on examples/sha256;
 *  - boot time of examples/hello: from reading the .dni to the guest's first console byte.
 * Options: --runs N (boot-time samples, default 20), --sha-args "..." (guest args for sha256).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readFile } from 'node:fs/promises';
import { readImageFile } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import { MemoryConsoleSink, Yakima } from '@denali/yakima';

const root = resolve(import.meta.dirname, '../../..');
const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const runs = Number(opt('--runs') ?? 20);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'denali-bench-'));
  try {
    const sha = await buildService(join(root, 'examples/sha256'), { out: join(dir, 'sha256.dni'), quiet: true });
    const hello = await buildService(join(root, 'examples/hello'), { out: join(dir, 'hello.dni'), quiet: true });

    // Compute speed.
    const shaImage = await readImageFile(sha.imagePath);
    const shaArgs = opt('--sha-args')?.split(' ');
    const sink = new MemoryConsoleSink();
    const y = new Yakima({ sink });
    const vm = y.addVm(shaImage, { args: shaArgs });
    const t0 = performance.now();
    await y.run();
    const secs = (performance.now() - t0) / 1000;
    const instr = vm.vcpu.instructionsRetired;
    const expected = shaArgs ? undefined : await readFile(join(root, 'examples/sha256/expected-output.txt'), 'utf8');
    const ok = vm.state === 'exited' && vm.exitStatus === 0 && (expected === undefined || sink.text(vm.name) === expected);
    console.log(`emulator compute (examples/sha256): ${(instr / 1e6).toFixed(1)} M instructions in ${secs.toFixed(3)} s = ${(instr / 1e6 / secs).toFixed(1)} MIPS${ok ? '' : '  (WRONG OUTPUT)'}`);

    // Boot time: image load -> first console byte.
    const samples: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      const img = await readImageFile(hello.imagePath);
      const y2 = new Yakima({ sink: new MemoryConsoleSink() });
      const v = y2.addVm(img);
      await y2.run();
      if (v.console.firstByteAt === undefined) throw new Error('hello printed nothing');
      samples.push(v.console.firstByteAt - start);
    }
    console.log(`boot time (examples/hello, image load to first console byte): median ${median(samples).toFixed(2)} ms, min ${Math.min(...samples).toFixed(2)} ms over ${runs} runs`);
    if (!ok) process.exitCode = 1;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
