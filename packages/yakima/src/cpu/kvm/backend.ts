/**
 * `KvmBackend`: the worker threads that run KVM vCPUs so that KVM_RUN never blocks Node's
 * event loop. Each worker runs one vCPU at a time; every vCPU is pinned to one worker for its
 * whole life (KVM: "vcpu ioctls should be issued from the same thread ... otherwise the first
 * ioctl after switching threads could see a performance impact"), chosen least-loaded at
 * creation. Many VMs are multiplexed onto the workers by Yakima's scheduler, which calls
 * `KvmVcpu.runAsync` for up to `threads` VMs at once.
 *
 * Signalling: each worker has a small SharedArrayBuffer control block. The main thread writes
 * the request and wakes the worker with Atomics.notify; the worker blocks in Atomics.wait (no
 * CPU while idle), runs KVM_RUN via koffi on its own thread, stores the result and notifies;
 * the main thread awaits Atomics.waitAsync. (Measured faster than postMessage: see
 * bench/kvm-roundtrip.ts.) The guest memory and kvm_run areas are mmap'd in this process, so
 * both threads see them without copies.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { GuestMemory } from '../../boot/guest-memory.js';
import { KvmVcpu, runLoopConfig, type KvmExecutor } from './kvm-vcpu.js';
import { bindLibc, koffiPath } from './libc.js';
import { kvmSystem } from './probe.js';
import { createRunLoop, RESULT, type RunLoopConfig } from './run-loop.js';

/** Control block layout (Int32 indices; Float64 indices start at byte 64). */
const CTL = {
  STATE: 0,
  FD: 1,
  ADDR_LO: 2,
  ADDR_HI: 3,
  RESULT: 4, // RESULT.LENGTH int32s
  /** 1 while the worker completes an out exit after reporting it (see `settle`). */
  COMPLETING: 12,
  BYTES: 128,
  F64_QUANTUM_NS: 8, // Float64 index (byte 64)
  F64_ELAPSED_NS: 9,
} as const;
const STATE_IDLE = 0;
const STATE_REQUEST = 1;
const STATE_DONE = 2;
const STATE_QUIT = 3;

export interface KvmBackendOptions {
  /** Worker threads; default `os.availableParallelism()` (one per host core). */
  threads?: number;
  /**
   * How long an idle worker polls for the next request before sleeping, in µs (default 50;
   * 0 = sleep at once). Saves a thread wake-up per hypercall round trip.
   */
  spinMicros?: number;
  /**
   * How long to wait for a worker to answer one run request before giving up on it, in ms
   * (default: 10 × the request's quantum + 5 s). A run that is not answered in time rejects
   * with `KvmWorkerStuckError` (the vCPU then reports an 'unknown-exit' fault) and the worker
   * is retired: it is never sent another request, since it may still be inside KVM_RUN.
   * Tests lower it; there is no reason to change it otherwise.
   */
  answerTimeoutMs?: number;
}

/** A worker thread did not answer a run request in time (see `KvmBackendOptions.answerTimeoutMs`). */
export class KvmWorkerStuckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvmWorkerStuckError';
  }
}

/**
 * The answer bound for a request of `quantumNs`: 10 × the quantum + 5 s, in ms. Generous on
 * purpose: on a loaded 2-core host running 32-bit guests through kvm_pvm's instruction
 * emulator, a healthy worker was seen to answer a 5 ms quantum after more than 1 s, and a VM
 * must not be faulted for the host's stall; the bound only has to catch a worker that is
 * really stuck.
 */
export function defaultAnswerTimeoutMs(quantumNs: number): number {
  return (10 * quantumNs) / 1e6 + 5000;
}

type WaitAsync = (ta: Int32Array, index: number, value: number, timeout?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/**
 * Runs in each worker (rebuilt from source text: it must not use anything from module scope).
 * Loads koffi, prepares the thread's run loop, then serves requests until told to quit.
 */
function workerMain(
  data: { sab: SharedArrayBuffer; koffi: string; cfg: RunLoopConfig; runSize: number; spinMicros: number },
  bind: typeof bindLibc,
  makeLoop: typeof createRunLoop,
  req: (id: string) => unknown,
): void {
  const koffi = req(data.koffi) as Parameters<typeof bindLibc>[0];
  const libc = bind(koffi);
  const loop = makeLoop(libc, data.cfg);
  (req('node:worker_threads') as typeof import('node:worker_threads')).parentPort!.postMessage('ready');
  const ctl = new Int32Array(data.sab, 0, 32);
  const f64 = new Float64Array(data.sab);
  const result = new Int32Array(8);
  const views = new Map<string, DataView>();
  for (;;) {
    // Sleep until a request (1) or quit (3); the main thread resets DONE (2) to IDLE (0)
    // without notifying, so wait on whatever value is current.
    let state = Atomics.load(ctl, 0);
    // A hypercall round trip is a few tens of µs: spin briefly before sleeping, so the common
    // case needs no futex wake-up of this thread (bounded: an idle VM costs no CPU).
    if (state !== 1 && state !== 3) {
      const until = performance.now() + data.spinMicros / 1000;
      while ((state = Atomics.load(ctl, 0)) !== 1 && state !== 3 && performance.now() < until);
    }
    while (state !== 1 && state !== 3) {
      Atomics.wait(ctl, 0, state);
      state = Atomics.load(ctl, 0);
    }
    if (state === 3) break;
    const fd = ctl[1]!;
    const addr = (BigInt(ctl[3]! >>> 0) << 32n) | BigInt(ctl[2]! >>> 0);
    const key = `${fd}:${addr}`;
    let view = views.get(key);
    if (!view) {
      if (views.size > 4096) views.clear();
      view = new DataView(libc.view(addr, data.runSize));
      views.set(key, view);
    }
    const ns = loop.run(fd, view, f64[8]!, result);
    for (let i = 0; i < 8; i++) ctl[4 + i] = result[i]!;
    f64[9] = ns;
    // An out exit (reason 2, direction 1) is reported first and completed right after, in
    // parallel with the main thread's hypercall dispatch; `settle` waits for it.
    const completeIo = result[0] === 2 && result[4] === 1;
    if (completeIo) Atomics.store(ctl, 12, 1);
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
    if (completeIo) {
      loop.complete(fd, view);
      Atomics.store(ctl, 12, 0);
      Atomics.notify(ctl, 12);
    }
  }
  loop.dispose();
}

/** The worker's source: the three self-contained functions and a call. */
function workerSource(): string {
  return [
    `'use strict';`,
    // Helpers some TS transpilers (esbuild keepNames) insert into function bodies.
    `var __name = (f) => f;`,
    `const { workerData } = require('node:worker_threads');`,
    `const bindLibc = (${bindLibc.toString()});`,
    `const createRunLoop = (${createRunLoop.toString()});`,
    `(${workerMain.toString()})(workerData, bindLibc, createRunLoop, require);`,
  ].join('\n');
}

/** One worker thread and its control block; runs one vCPU request at a time (FIFO). */
class VcpuWorker implements KvmExecutor {
  readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly f64: Float64Array;
  private readonly queue: (() => void)[] = [];
  private busy = false;
  private dead: Error | undefined;
  /** Set when a request went unanswered: the worker gets no further requests. */
  private stuck: KvmWorkerStuckError | undefined;
  /** vCPUs pinned here. */
  pinned = 0;
  /** Resolves when the worker has loaded koffi and prepared its run loop. */
  readonly ready: Promise<void>;

  constructor(
    cfg: RunLoopConfig,
    spinMicros: number,
    private readonly answerTimeoutMs: number | undefined,
  ) {
    const sab = new SharedArrayBuffer(CTL.BYTES);
    this.ctl = new Int32Array(sab, 0, 32);
    this.f64 = new Float64Array(sab);
    this.worker = new Worker(workerSource(), { eval: true, workerData: { sab, koffi: koffiPath(), cfg, runSize: kvmSystem().vcpuMmapSize, spinMicros } });
    this.worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
      this.worker.once('exit', (code) => reject(new Error(`KVM worker thread exited (code ${code})`)));
    });
    this.ready.catch(() => {}); // reported through run() as well
    const die = (e: Error): void => {
      this.dead ??= e;
      // Wake a pending waitAsync so its run fails instead of hanging.
      Atomics.store(this.ctl, CTL.STATE, STATE_DONE);
      Atomics.notify(this.ctl, CTL.STATE);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`KVM worker thread exited (code ${code})`)));
  }

  /** False once the worker died or was retired after an unanswered request. */
  get usable(): boolean {
    return this.dead === undefined && this.stuck === undefined;
  }

  async run(vcpuFd: number, runAddress: bigint, quantumNs: number, result: Int32Array): Promise<number> {
    // Re-check after every wake-up: another caller may have taken the worker in between.
    while (this.busy) await new Promise<void>((resolve) => this.queue.push(resolve));
    this.busy = true;
    this.worker.ref();
    try {
      if (this.stuck) throw this.stuck;
      if (this.dead) throw this.dead;
      // A new worker serves requests only once it has loaded koffi: keep that out of the bound.
      await this.ready;
      if (this.dead) throw this.dead;
      const ctl = this.ctl;
      ctl[CTL.FD] = vcpuFd;
      ctl[CTL.ADDR_LO] = Number(runAddress & 0xffffffffn) | 0;
      ctl[CTL.ADDR_HI] = Number(runAddress >> 32n) | 0;
      this.f64[CTL.F64_QUANTUM_NS] = quantumNs;
      Atomics.store(ctl, CTL.STATE, STATE_REQUEST);
      Atomics.notify(ctl, CTL.STATE);
      const limitMs = this.answerTimeoutMs ?? defaultAnswerTimeoutMs(quantumNs);
      const w = waitAsync(ctl, CTL.STATE, STATE_REQUEST, limitMs);
      if (w.async) await w.value;
      if (this.dead) throw this.dead;
      // The state is what counts, not how the wait ended (a lost notify is harmless here).
      if (Atomics.load(ctl, CTL.STATE) === STATE_REQUEST) {
        this.stuck = new KvmWorkerStuckError(
          `KVM worker thread did not answer a run request within ${limitMs.toFixed(0)} ms (quantum ${(quantumNs / 1000).toFixed(0)} µs): ` +
            `its vCPU is stuck in KVM_RUN (preemption timer did not fire) or the request was never seen; the worker is retired`,
        );
        this.failQueued();
        throw this.stuck;
      }
      for (let i = 0; i < RESULT.LENGTH; i++) result[i] = ctl[CTL.RESULT + i]!;
      const ns = this.f64[CTL.F64_ELAPSED_NS]!;
      Atomics.store(ctl, CTL.STATE, STATE_IDLE);
      return ns;
    } finally {
      this.busy = false;
      const next = this.queue.shift();
      if (next) next();
      else this.worker.unref();
    }
  }

  /** Let every queued request run (each then fails at once: the worker is retired). */
  private failQueued(): void {
    for (const next of this.queue.splice(0)) queueMicrotask(next);
  }

  /** Block (briefly) until the worker has completed the out exit it last reported. */
  settle(): void {
    if (this.stuck) return; // never answered: nothing of its will be completed
    while (Atomics.load(this.ctl, CTL.COMPLETING) === 1) Atomics.wait(this.ctl, CTL.COMPLETING, 1, 100);
  }

  async close(): Promise<void> {
    Atomics.store(this.ctl, CTL.STATE, STATE_QUIT);
    Atomics.notify(this.ctl, CTL.STATE);
    const stopped = this.worker.terminate();
    if (!this.stuck) {
      await stopped;
      return;
    }
    // A stuck worker stops only when its KVM_RUN returns (termination needs it back in JS):
    // do not wait for that forever. It is unref'd, so it does not keep the process alive.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      stopped.then(
        () => {},
        () => {},
      ),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000))),
    ]);
    clearTimeout(timer);
  }
}

/**
 * The KVM CPU backend: owns the worker threads and creates vCPUs pinned to them.
 * Usage: `const b = new KvmBackend(); const mem = allocateGuestMemory(size); ...fill...;
 * const vcpu = b.createVcpu(mem); vcpu.setRegs(regs); await vcpu.runAsync(10_000);`
 */
export class KvmBackend {
  readonly threads: number;
  private readonly spinMicros: number;
  private readonly answerTimeoutMs: number | undefined;
  private readonly workers: VcpuWorker[] = [];
  /** Workers taken out of the pool (stuck or dead); closed with the backend. */
  private readonly retired: VcpuWorker[] = [];
  private closed = false;

  /** @throws KvmUnavailableError when KVM is not usable (see `probeKvm`). */
  constructor(opts: KvmBackendOptions = {}) {
    kvmSystem();
    this.threads = Math.max(1, Math.floor(opts.threads ?? availableParallelism()));
    this.spinMicros = Math.max(0, opts.spinMicros ?? 50);
    this.answerTimeoutMs = opts.answerTimeoutMs;
  }

  private newWorker(): VcpuWorker {
    return new VcpuWorker(runLoopConfig(), this.spinMicros, this.answerTimeoutMs);
  }

  /**
   * Start every worker thread now and resolve when all are ready. Optional: workers otherwise
   * start as vCPUs are created, and the first run on a new worker waits for it (~100 ms).
   * @throws Error when a worker cannot start (e.g. koffi fails to load in it).
   */
  async start(): Promise<void> {
    while (this.workers.length < this.threads) this.workers.push(this.newWorker());
    await Promise.all(this.workers.map((w) => w.ready));
  }

  /**
   * A vCPU for a VM whose memory came from `allocateGuestMemory`, pinned to the least-loaded
   * worker (workers start lazily, one per new vCPU until there are `threads`). Call
   * `vcpu.destroy()` when the VM is gone.
   */
  createVcpu(memory: GuestMemory): KvmVcpu {
    if (this.closed) throw new Error('KvmBackend is closed');
    // A retired worker keeps serving nobody; a fresh one takes its place in the pool.
    for (let i = this.workers.length - 1; i >= 0; i--) {
      if (!this.workers[i]!.usable) this.retired.push(...this.workers.splice(i, 1));
    }
    const idle = this.workers.find((w) => w.pinned === 0);
    let w: VcpuWorker | undefined = idle;
    if (!w && this.workers.length < this.threads) {
      w = this.newWorker();
      this.workers.push(w);
    }
    w ??= this.workers.reduce((a, b) => (b.pinned < a.pinned ? b : a));
    const worker = w;
    const vcpu = new KvmVcpu(memory, worker, () => worker.pinned--);
    worker.pinned++;
    return vcpu;
  }

  /** Stop the worker threads (destroy the vCPUs first). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.workers, ...this.retired].map((w) => w.close()));
    this.workers.length = 0;
    this.retired.length = 0;
  }
}
