/**
 * Waiter threads: block (no CPU) in FUTEX_WAIT on a tender's control page until it posts an
 * exit, so that Node's event loop never blocks on a VM. One wait per thread at a time; the
 * main thread awaits the answer with Atomics.waitAsync (as the KVM backend's workers do).
 * Every wait is bounded by a timeout and can be cancelled (the tender died, the VM stopped).
 */
import { Worker } from 'node:worker_threads';
import { koffiPath } from '../kvm/libc.js';
import { bindProcessSys } from './sys.js';

/** Int32 indices of a waiter's shared control block (Float64 index 4 = timeout in ms). */
const W = { STATE: 0, ADDR_LO: 1, ADDR_HI: 2, RESULT: 3, CANCEL: 4, PID: 5, BYTES: 64, F64_TIMEOUT_MS: 4 } as const;
const IDLE = 0;
const REQUEST = 1;
const DONE = 2;
const QUIT = 3;

/** How a wait ended. */
export const WAIT_POSTED = 0;
export const WAIT_TIMEOUT = 1;
export const WAIT_CANCELLED = 2;

type WaitAsync = (ta: Int32Array, index: number, value: number, timeout?: number) => { async: boolean; value: Promise<string> | string };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** Runs in each waiter thread (rebuilt from its source text: nothing from module scope). */
function waiterMain(data: { sab: SharedArrayBuffer; koffi: string }, bind: typeof bindProcessSys, req: (id: string) => unknown): void {
  const sys = bind(req(data.koffi) as Parameters<typeof bindProcessSys>[0]);
  const ctl = new Int32Array(data.sab, 0, 16);
  const f64 = new Float64Array(data.sab);
  const pages = new Map<bigint, Int32Array>();
  (req('node:worker_threads') as typeof import('node:worker_threads')).parentPort!.postMessage('ready');
  for (;;) {
    let state = Atomics.load(ctl, 0);
    while (state !== 1 && state !== 3) {
      Atomics.wait(ctl, 0, state);
      state = Atomics.load(ctl, 0);
    }
    if (state === 3) break;
    const addr = (BigInt(ctl[2]! >>> 0) << 32n) | BigInt(ctl[1]! >>> 0);
    let page = pages.get(addr);
    if (!page) {
      if (pages.size > 4096) pages.clear();
      page = new Int32Array(sys.view(addr, 4));
      pages.set(addr, page);
    }
    const deadline = performance.now() + f64[4]!;
    let result = 1;
    for (;;) {
      if (Atomics.load(page, 0) === 1) {
        result = 0;
        break;
      }
      // Cancelled, or the tender is gone (the kernel says so; nothing will be posted).
      if (Atomics.load(ctl, 4) !== 0 || sys.peekExit(ctl[5]!) !== undefined) {
        result = 2;
        break;
      }
      const left = deadline - performance.now();
      if (left <= 0) break;
      // Slices of at most 20 ms: a lost wake-up or a dead tender costs latency, never a hang.
      sys.futexWait(addr, 0, Math.min(left, 20) * 1e6);
    }
    ctl[3] = result;
    Atomics.store(ctl, 0, 2);
    Atomics.notify(ctl, 0);
  }
}

function waiterSource(): string {
  return [
    `'use strict';`,
    `var __name = (f) => f;`,
    `const { workerData } = require('node:worker_threads');`,
    `const bindProcessSys = (${bindProcessSys.toString()});`,
    `(${waiterMain.toString()})(workerData, bindProcessSys, require);`,
  ].join('\n');
}

/** One waiter thread; serves one wait at a time (callers queue). */
export class Waiter {
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly f64: Float64Array;
  private readonly queue: (() => void)[] = [];
  private busy = false;
  private dead: Error | undefined;
  readonly ready: Promise<void>;
  /** Waits assigned here and not yet finished (for least-loaded placement). */
  load = 0;
  /** True once the thread has loaded koffi and serves waits. */
  isReady = false;

  constructor() {
    const sab = new SharedArrayBuffer(W.BYTES);
    this.ctl = new Int32Array(sab, 0, 16);
    this.f64 = new Float64Array(sab);
    this.worker = new Worker(waiterSource(), { eval: true, workerData: { sab, koffi: koffiPath() } });
    this.worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.once('message', () => resolve());
      this.worker.once('error', reject);
    });
    this.ready.then(
      () => (this.isReady = true),
      () => {},
    );
    const die = (e: Error): void => {
      this.dead ??= e;
      Atomics.store(this.ctl, W.STATE, DONE);
      Atomics.notify(this.ctl, W.STATE);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`process-backend waiter thread exited (code ${code})`)));
  }

  /**
   * Wait until the control page at `address` has state POSTED, at most `timeoutMs`, or until
   * the tender `pid` has ended.
   * `cancel` registers a function that ends the wait early (resolves WAIT_CANCELLED).
   * @returns WAIT_POSTED, WAIT_TIMEOUT or WAIT_CANCELLED.
   * @throws Error when the waiter thread died.
   */
  async wait(address: bigint, pid: number, timeoutMs: number, onCancel: (cancel: () => void) => void): Promise<number> {
    this.load++;
    try {
      while (this.busy) await new Promise<void>((r) => this.queue.push(r));
      this.busy = true;
      this.worker.ref();
      await this.ready;
      if (this.dead) throw this.dead;
      const ctl = this.ctl;
      ctl[W.ADDR_LO] = Number(address & 0xffffffffn) | 0;
      ctl[W.ADDR_HI] = Number(address >> 32n) | 0;
      ctl[W.CANCEL] = 0;
      ctl[W.PID] = pid;
      this.f64[W.F64_TIMEOUT_MS] = timeoutMs;
      onCancel(() => {
        Atomics.store(ctl, W.CANCEL, 1);
      });
      Atomics.store(ctl, W.STATE, REQUEST);
      Atomics.notify(ctl, W.STATE);
      while (Atomics.load(ctl, W.STATE) === REQUEST) {
        const w = waitAsync(ctl, W.STATE, REQUEST, timeoutMs + 1000);
        if (w.async) await w.value;
        if (this.dead) throw this.dead;
      }
      const result = ctl[W.RESULT]!;
      Atomics.store(ctl, W.STATE, IDLE);
      return result;
    } finally {
      this.load--;
      this.busy = false;
      const next = this.queue.shift();
      if (next) next();
      else this.worker.unref();
    }
  }

  async close(): Promise<void> {
    Atomics.store(this.ctl, W.STATE, QUIT);
    Atomics.notify(this.ctl, W.STATE);
    // Terminating a thread while it is still loading koffi (an N-API addon) aborts the whole
    // process (a fatal napi_throw during module registration): let the load finish first.
    await Promise.race([this.ready.catch(() => {}), new Promise<void>((r) => setTimeout(r, 5000).unref())]);
    await this.worker.terminate();
  }
}
