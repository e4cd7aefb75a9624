/**
 * Round-trip costs of the KVM backend (run: `npx tsx packages/yakima/bench/kvm-roundtrip.ts`).
 *
 * 1. Thread signalling alone, with an empty worker: SharedArrayBuffer + Atomics.notify /
 *    Atomics.waitAsync versus postMessage ping-pong (what KvmBackend uses is the faster one).
 * 2. A null hypercall (`out dx, eax` to an unused hypercall port, then loop) through KVM:
 *    synchronously on the main thread (`KvmVcpu.run`) and via a worker (`runAsync`).
 * 3. Exits per second of the synchronous path.
 */
import { Worker } from 'node:worker_threads';
import { allocateGuestMemory, KvmBackend, KvmVcpu, probeKvm } from '../src/cpu/kvm/index.js';

const ROUNDS = 5000;

type WaitAsync = (ta: Int32Array, index: number, value: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** `spinMicros`: how long the worker polls before sleeping in Atomics.wait (as KvmBackend does). */
async function atomicsPingPong(spinMicros: number): Promise<number> {
  const sab = new SharedArrayBuffer(8);
  const ctl = new Int32Array(sab);
  const w = new Worker(
    `const { workerData } = require('node:worker_threads'); const c = new Int32Array(workerData.sab);
     for (;;) {
       const until = performance.now() + workerData.spin / 1000;
       while (Atomics.load(c, 0) !== 1 && Atomics.load(c, 0) !== 3 && performance.now() < until);
       Atomics.wait(c, 0, 0);
       if (Atomics.load(c, 0) === 3) break;
       Atomics.store(c, 0, 2); Atomics.notify(c, 0);
     }`,
    { eval: true, workerData: { sab, spin: spinMicros } },
  );
  const once = async (): Promise<void> => {
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    const r = waitAsync(ctl, 0, 1);
    if (r.async) await r.value;
    Atomics.store(ctl, 0, 0);
  };
  for (let i = 0; i < 200; i++) await once();
  const t = performance.now();
  for (let i = 0; i < ROUNDS; i++) await once();
  const us = ((performance.now() - t) * 1000) / ROUNDS;
  Atomics.store(ctl, 0, 3);
  Atomics.notify(ctl, 0);
  await w.terminate();
  return us;
}

async function postMessagePingPong(): Promise<number> {
  const w = new Worker(`const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`, { eval: true });
  const once = (): Promise<void> => new Promise((resolve) => {
    w.once('message', () => resolve());
    w.postMessage(1);
  });
  for (let i = 0; i < 200; i++) await once();
  const t = performance.now();
  for (let i = 0; i < ROUNDS; i++) await once();
  const us = ((performance.now() - t) * 1000) / ROUNDS;
  await w.terminate();
  return us;
}

/** mov dx, 0x5ff; l: out dx, eax; jmp l — an endless stream of null hypercalls. */
const NULL_HYPERCALL_LOOP = [0x66, 0xba, 0xff, 0x05, 0xef, 0xeb, 0xfd];

function boot(): ReturnType<typeof allocateGuestMemory> {
  const mem = allocateGuestMemory(4 << 20);
  mem.u8.set(NULL_HYPERCALL_LOOP, 0x100000);
  return mem;
}
const regs = { gpr: [0, 0, 0, 0, 4 << 20, 0, 0, 0], eip: 0x100000, eflags: 2 };

async function main(): Promise<void> {
  // Alternate the two a few times and keep the best of each (the host is noisy).
  let atomics = Infinity;
  let atomicsSpin = Infinity;
  let post = Infinity;
  for (let i = 0; i < 3; i++) {
    atomics = Math.min(atomics, await atomicsPingPong(0));
    atomicsSpin = Math.min(atomicsSpin, await atomicsPingPong(50));
    post = Math.min(post, await postMessagePingPong());
  }
  console.log(`Atomics.waitAsync ping-pong:               ${atomics.toFixed(1)} µs (best of 3)`);
  console.log(`Atomics.waitAsync ping-pong, worker spins: ${atomicsSpin.toFixed(1)} µs (best of 3)`);
  console.log(`postMessage ping-pong:                     ${post.toFixed(1)} µs (best of 3)`);
  const p = probeKvm();
  if (!p.usable) {
    console.log(`KVM not usable: ${p.reason}`);
    return;
  }
  const sync = new KvmVcpu(boot());
  sync.setRegs(regs);
  for (let i = 0; i < 100; i++) sync.run(1_000_000);
  let t = performance.now();
  for (let i = 0; i < ROUNDS; i++) sync.run(1_000_000);
  const syncUs = ((performance.now() - t) * 1000) / ROUNDS;
  console.log(`null hypercall, sync (main thread): ${syncUs.toFixed(1)} µs  (${Math.round(1e6 / syncUs)} exits/s)`);
  sync.destroy();

  const backend = new KvmBackend({ threads: 1 });
  const v = backend.createVcpu(boot());
  v.setRegs(regs);
  for (let i = 0; i < 100; i++) await v.runAsync(20_000);
  t = performance.now();
  for (let i = 0; i < ROUNDS; i++) await v.runAsync(20_000);
  const asyncUs = ((performance.now() - t) * 1000) / ROUNDS;
  console.log(`null hypercall, via worker (runAsync): ${asyncUs.toFixed(1)} µs  (${Math.round(1e6 / asyncUs)} exits/s; ${(v.guestMicros / (ROUNDS + 100)).toFixed(1)} µs of it in the worker run loop)`);
  v.destroy();
  await backend.close();
}

await main();
