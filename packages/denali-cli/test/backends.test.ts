import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImageFile, type DenaliImage } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import { MemoryConsoleSink, probeKvm, probeProcessBackend, Yakima, type Backend } from '@denali/yakima';
import { root } from './helpers.js';

const EXAMPLES = ['hello', 'threads', 'sha256', 'sdk-tests'];
/** Smaller inputs for the cross-backend comparison, where KVM may be the kernel's slow emulator. */
const COMPARE_ARGS: Record<string, string[] | undefined> = { sha256: ['8'] };
const probe = probeKvm();
if (!probe.usable) console.log(`KVM backend comparison skipped: ${probe.reason}`);
else if (!probe.native) console.log(`KVM note: ${probe.note ?? 'not native'}`);
const procProbe = probeProcessBackend();
if (!procProbe.usable) console.log(`process backend comparison skipped: ${procProbe.reason}`);

interface Outcome {
  output: string;
  state: string;
  status: number | undefined;
  fault: string | undefined;
}

async function runOn(backend: Backend, image: DenaliImage, args?: string[]): Promise<Outcome> {
  const sink = new MemoryConsoleSink();
  const y = new Yakima({ backend, sink });
  try {
    const vm = y.addVm(image, { args });
    await y.run();
    return { output: sink.text(vm.name), state: vm.state, status: vm.exitStatus, fault: vm.fault?.detail };
  } finally {
    await y.close();
  }
}

const images = new Map<string, DenaliImage>();
beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'denali-backends-'));
  for (const name of EXAMPLES) {
    const r = await buildService(join(root, 'examples', name), { out: join(dir, `${name}.dni`), quiet: true });
    images.set(name, await readImageFile(r.imagePath));
  }
});

describe('every example gives the same console output and exit status on every backend', () => {
  it.each(EXAMPLES)('%s on the emulator matches expected-output.txt', async (name) => {
    const emu = await runOn('emu', images.get(name)!);
    expect(emu.output).toBe(await readFile(join(root, 'examples', name, 'expected-output.txt'), 'utf8'));
    expect([emu.state, emu.status]).toEqual(['exited', 0]);
  });

  it.skipIf(!probe.usable).each(EXAMPLES)('%s on KVM equals the emulator', async (name) => {
    const image = images.get(name)!;
    const kvm = await runOn('kvm', image, COMPARE_ARGS[name]);
    // kvm-pvm has no hardware virtualization: the kernel emulates 32-bit guests and cannot
    // emulate SSE. That is the host's gap, not a divergence; anything else must match.
    if (probe.usable && !probe.native && kvm.state === 'faulted' && /could not emulate/.test(kvm.fault ?? '')) {
      console.log(`KVM run of ${name} skipped: this kvm-pvm host cannot emulate an instruction it uses (${kvm.fault})`);
      return;
    }
    const emu = await runOn('emu', image, COMPARE_ARGS[name]);
    expect(kvm).toEqual(emu);
  });

  it.skipIf(!procProbe.usable).each(EXAMPLES)('%s on the process backend equals the emulator', async (name) => {
    const image = images.get(name)!;
    const [proc, emu] = [await runOn('process', image), await runOn('emu', image)];
    expect(proc).toEqual(emu);
  });
});

/** Boot examples/echo and examples/net-tests on one Yakima with a network; the client's results (test names and verdicts, no timings). */
async function netTestsOn(backend: Backend, dir: string): Promise<{ results: string[]; state: string; status: number | undefined }> {
  const echo = await readImageFile((await buildService(join(root, 'examples/echo'), { out: join(dir, 'echo.dni'), quiet: true })).imagePath);
  const tests = await readImageFile((await buildService(join(root, 'examples/net-tests'), { out: join(dir, 'nt.dni'), quiet: true })).imagePath);
  const sink = new MemoryConsoleSink();
  const y = new Yakima({ backend, sink, network: true });
  try {
    y.addVm(echo);
    const client = y.addVm(tests, { args: ['10.73.0.2', '7', 'all'] });
    const running = y.run();
    const t0 = performance.now();
    while (!client.finished && performance.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 20));
    y.stop('done');
    await running;
    const results = sink
      .text(client.name)
      .split('\n')
      .filter((l) => /^(PASS|FAIL) /.test(l))
      .map((l) => l.split(' ').slice(0, 2).join(' '));
    return { results, state: client.state, status: client.exitStatus };
  } finally {
    await y.close();
  }
}

describe('the network stack gives the same results on every backend', () => {
  it.skipIf(!procProbe.usable)('examples/net-tests against examples/echo: every test passes on the process backend, as on the emulator', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'denali-backends-net-'));
    const proc = await netTestsOn('process', dir);
    const emu = await netTestsOn('emu', dir);
    expect(proc.results.length).toBeGreaterThan(15);
    expect(proc.results.every((r) => r.startsWith('PASS'))).toBe(true);
    expect(proc).toEqual(emu);
  }, 300_000);
});

afterAll(() => {
  images.clear();
});
