/**
 * `tsx examples/net-tests/run.ts [suite]`: boot examples/echo and examples/net-tests
 * on one Yakima with networking and print both consoles (a manual run of the e2e test).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readImageFile } from '../../packages/image-format/src/index.js';
import { buildService } from '../../packages/ilwaco-sdk/src/index.js';
import { MemoryConsoleSink, Yakima } from '../../packages/yakima/src/index.js';

const root = resolve(import.meta.dirname, '../..');
const suite = process.argv[2] ?? 'all';
const dir = await mkdtemp(join(tmpdir(), 'denali-net-'));
try {
  const echo = await readImageFile((await buildService(join(root, 'examples/echo'), { out: join(dir, 'echo.dni') })).imagePath);
  const tests = await readImageFile((await buildService(join(root, 'examples/net-tests'), { out: join(dir, 'nt.dni') })).imagePath);
  const sink = new MemoryConsoleSink();
  const y = new Yakima({ sink, network: true, backend: (process.env.BACKEND as 'emu' | 'process' | undefined) ?? 'emu', log: (l) => console.log('yakima:', l) });
  const server = y.addVm(echo);
  const client = y.addVm(tests, { args: ['10.73.0.2', '7', suite] });
  const t0 = performance.now();
  const timer = setTimeout(() => y.stop('timeout'), 120_000);
  const done = new Promise<void>((r) => {
    const iv = setInterval(() => {
      if (client.finished) {
        clearInterval(iv);
        r();
      }
    }, 20);
  });
  const run = y.run();
  await done;
  const secs = (performance.now() - t0) / 1000;
  y.stop('done');
  await run;
  clearTimeout(timer);
  console.log('--- client', client.state, client.exitStatus, `${secs.toFixed(2)} s`, client.vcpu.instructionsRetired, 'instr');
  console.log(sink.text(client.name));
  console.log('--- server', server.state, server.vcpu.instructionsRetired, 'instr');
  console.log(sink.text(server.name));
  console.log('nic', JSON.stringify(server.nic?.stats), JSON.stringify(client.nic?.stats));
} finally {
  await rm(dir, { recursive: true, force: true });
}
