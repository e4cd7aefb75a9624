/**
 * `ProcessBackend`: Yakima's third CPU backend (`--backend process`). Each VM's guest code runs
 * natively in its own sandboxed host process (the tender); the host kernel schedules those
 * processes, Yakima keeps idle VMs blocked in a futex (no CPU) and lets a spinning VM run one
 * CPU-time quantum (the tender's ITIMER_VIRTUAL) before it goes back to the run queue. Waits for
 * exits run on a few waiter threads, so Node's event loop never blocks on a guest.
 */
import { availableParallelism } from 'node:os';
import type { GuestMemory } from '../../boot/guest-memory.js';
import { ProcessVcpu, type ProcessVcpuOptions } from './process-vcpu.js';
import { Waiter } from './waiter.js';

export interface ProcessBackendOptions {
  /** VMs in flight at once (= waiter threads); default `defaultProcessThreads()`. */
  threads?: number;
  /** CPU-time quantum per VM in µs (default 10,000: the emulator's default quantum is about 10 ms). */
  quantumMicros?: number;
  /** Nice value of the VM processes (default 5). */
  nice?: number;
  /** Main-thread polling for an exit before using a waiter thread, in µs (default 30; only where polling has been paying: ProcessVcpu.spinBudget). */
  spinMicros?: number;
  /** Longest wait for one exit before the VM's process is killed, in ms (default 2,000 + 20 × quantum). */
  answerTimeoutMs?: number;
  /** Start VMs on tenders spawned ahead (tender-pool.ts; default true): boot skips the ~3-4 ms spawn. */
  pool?: boolean;
  /** True while other VMs want a CPU: tenders then sleep on their replies at once (ProcessVcpuOptions.contended). */
  contended?: () => boolean;
}

/**
 * Default number of process-backend VMs in flight at once: four per host core, at most 16, but
 * at least one per core. A VM in flight whose tender sleeps costs no CPU, only a waiter thread
 * (~9 MiB of host memory); more of them in flight overlap the wake-ups of their tenders. On 2
 * cores, 100 httpd VMs served ~1.3x the requests/s with 8 in flight than with 2 (swap-bench);
 * past 8, no more. Before tenders slept when contended (ProcessVcpuOptions.contended), more in
 * flight gained nothing: their spinning took the cores.
 */
export function defaultProcessThreads(cores = availableParallelism()): number {
  return Math.max(cores, Math.min(4 * cores, 16));
}

/** Creates process-backend vCPUs and owns the waiter threads they share. */
export class ProcessBackend {
  readonly threads: number;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  /** Live vCPUs (for `close`). */
  private readonly vcpus = new Set<ProcessVcpu>();

  constructor(private readonly opts: ProcessBackendOptions = {}) {
    this.threads = Math.max(1, Math.floor(opts.threads ?? defaultProcessThreads()));
  }

  /**
   * Nothing to start up front: waiter threads start on first use (a wait that outlasts the
   * main thread's short poll), so a VM that boots and prints never waits for a thread to load
   * (~50 ms, and CPU the guest could use). Until a thread is ready, the wait polls.
   */
  async start(): Promise<void> {}

  /**
   * A vCPU (and its tender process) for memory from `allocateSharedGuestMemory`. Call
   * `vcpu.destroy()` when the VM is gone.
   * @throws Error when the backend is closed or the tender cannot be built or started.
   */
  createVcpu(memory: GuestMemory, extra: ProcessVcpuOptions = {}): ProcessVcpu {
    if (this.closed) throw new Error('ProcessBackend is closed');
    const vcpu: ProcessVcpu = new ProcessVcpu(
      memory,
      {
        quantumMicros: this.opts.quantumMicros,
        nice: this.opts.nice,
        spinMicros: this.opts.spinMicros,
        answerTimeoutMs: this.opts.answerTimeoutMs,
        waiter: () => this.leastLoaded(),
        waiterReady: () => this.waiters.some((w) => w.isReady),
        pool: this.opts.pool ?? true,
        contended: this.opts.contended,
        ...extra,
      },
      () => this.vcpus.delete(vcpu),
    );
    this.vcpus.add(vcpu);
    return vcpu;
  }

  private leastLoaded(): Waiter {
    if (this.waiters.length < this.threads) {
      const idle = this.waiters.find((w) => w.load === 0);
      if (idle) return idle;
      const w = new Waiter();
      this.waiters.push(w);
      return w;
    }
    return this.waiters.reduce((a, b) => (b.load < a.load ? b : a));
  }

  /** Kill every remaining VM process and stop the waiter threads. */
  async close(): Promise<void> {
    this.closed = true;
    for (const v of [...this.vcpus]) v.destroy();
    await Promise.all(this.waiters.map((w) => w.close()));
    this.waiters.length = 0;
  }
}
