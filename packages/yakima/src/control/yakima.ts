import { IRQ, type DenaliImage } from '@denali/image-format';
import { createBootImage, defaultMac, type BootOptions } from '../boot/boot-image.js';
import type { GuestMemory } from '../boot/guest-memory.js';
import { EmuCpu } from '../cpu/emu/index.js';
import { KvmBackend, KVM_INSTRUCTIONS_PER_MICROSECOND, allocateGuestMemory } from '../cpu/kvm/index.js';
import type { FaultCause, Vcpu, VcpuExit } from '../cpu/vcpu.js';
import { hostTicks } from '../devices/clock.js';
import type { ConsoleSink } from '../devices/console.js';
import { MemoryConsoleSink } from '../devices/console-sink.js';
import { IdleTable } from '../sched/idle-table.js';
import { RunQueue } from '../sched/run-queue.js';
import { VirtualNetwork, type NetworkOptions } from '../net/network.js';
import type { SwapStats } from '../swap/swap-stats.js';
import { formatFault, type FaultReport } from './fault-report.js';
import { dispatchHypercall, HypercallFault } from './hypercalls.js';
import { Vm } from './vm.js';

/** CPU backends Yakima can run a VM on: the bundled emulator, or x86 on Linux KVM. */
export type Backend = 'emu' | 'kvm';

/** Options of a Yakima instance. */
export interface YakimaOptions {
  /** CPU backend for new VMs. Default 'emu'. 'kvm' throws `KvmUnavailableError` where KVM is unusable. */
  backend?: Backend;
  /** KVM only: vCPU worker threads (default: one per host core). */
  kvmThreads?: number;
  /**
   * Preemption quantum in guest instructions (the emulator counts instructions; paper 3.2
   * uses a timer). Default `DEFAULT_QUANTUM`.
   */
  quantumInstructions?: number;
  /** Where console output goes. Default: kept in memory (`MemoryConsoleSink`). */
  sink?: ConsoleSink;
  /** Called once per VM when it exits, faults or is stopped. */
  onVmDone?: (vm: Vm) => void;
  /** Where fault reports and other one-line notices go. Default: nowhere. */
  log?: (line: string) => void;
  /**
   * Give every VM a virtual NIC on one switched Ethernet subnet (paper 3.2). `true` uses the
   * defaults (`DEFAULT_SUBNET`). Default: no network.
   */
  network?: NetworkOptions | boolean;
  /** Makes the vCPU of each new VM instead of `backend` (tests use scripted vCPUs). */
  createVcpu?: (memory: GuestMemory) => Vcpu;
  /** Host memory the VMs may hold, bytes; idle VMs are swapped out beyond it. */
  memoryBudget?: number; // replaced by the scale branch at merge
  /** Directory of the swap area. */
  swapDir?: string; // replaced by the scale branch at merge
}

/** Options for one VM. */
export interface AddVmOptions {
  /** Boot arguments after argv[0]; default the manifest's args. */
  args?: string[];
  /** Memory size in bytes; default the manifest's. */
  memorySize?: number;
  /** Display name; default the image name, suffixed with -2, -3 … when already taken. */
  name?: string;
}

const QUANTUM_OVER: VcpuExit = { kind: 'quantum' };

/** Default quantum: 500,000 instructions, about 10 ms of emulated time (10 ms of guest time on KVM). */
export const DEFAULT_QUANTUM = 500_000;

/** How long the scheduler runs VMs before letting the host event loop in (Ctrl-C, I/O), in ms. */
const SLICE_MS = 15;

/** Longest single host timer while waiting for idle VMs, in ms (a timer keeps Node alive). */
const MAX_WAIT_MS = 60_000;

/**
 * Yakima, the Denali VMM (paper 3.2, Figure 3): owns the VMs of one instance and multiplexes
 * them onto the host CPU with a round-robin scheduler and a preemption quantum; VMs that
 * execute the idle virtual instruction wait in the idle table and cost no host CPU until a
 * virtual interrupt arrives or their timeout passes. Event-driven and non-blocking: `run`
 * yields to the Node event loop every few milliseconds so console I/O and Ctrl-C are served
 * even while a guest spins.
 */
export class Yakima {
  readonly vms: Vm[] = [];
  private readonly runQueue = new RunQueue<Vm>();
  private readonly idleTable = new IdleTable<Vm>();
  private readonly quantum: number;
  readonly sink: ConsoleSink;
  /** The virtual network, when enabled. */
  readonly net: VirtualNetwork | undefined;
  /** The KVM worker pool, when the backend is 'kvm'. */
  private readonly kvm: KvmBackend | undefined;
  private nextId = 1;
  private readonly names = new Set<string>();
  private readonly suffixes = new Map<string, number>();
  private liveCount = 0;
  private stopReason: string | undefined;
  private wake: (() => void) | undefined;
  private running = false;

  constructor(private readonly opts: YakimaOptions = {}) {
    this.quantum = opts.quantumInstructions ?? DEFAULT_QUANTUM;
    if (!Number.isInteger(this.quantum) || this.quantum <= 0) throw new RangeError('quantum must be a positive number of instructions');
    this.sink = opts.sink ?? new MemoryConsoleSink();
    const net = opts.network;
    this.net = net ? new VirtualNetwork(net === true ? {} : net) : undefined;
    if (!opts.createVcpu && opts.backend === 'kvm') this.kvm = new KvmBackend({ threads: opts.kvmThreads });
  }

  /**
   * Boot a VM from a validated image and make it runnable.
   * @throws BootError when the memory size or arguments do not fit (see `createBootImage`).
   */
  addVm(image: DenaliImage, opts: AddVmOptions = {}): Vm {
    const id = this.nextId++;
    const bootOpts: BootOptions = { vmId: id, args: opts.args, memorySize: opts.memorySize };
    if (this.kvm) bootOpts.allocateMemory = allocateGuestMemory;
    const mac = defaultMac(id);
    if (this.net) {
      bootOpts.mac = mac;
      bootOpts.ipv4 = { addr: this.net.addressOf(id), netmask: this.net.netmask, gateway: this.net.gateway };
      bootOpts.mtu = 1500;
    }
    const boot = createBootImage(image, bootOpts);
    const vcpu = this.createVcpu(boot.memory);
    vcpu.setRegs(boot.regs);
    const vm = new Vm(id, this.uniqueName(opts.name ?? image.manifest.name), image.manifest, boot, vcpu, this.sink, (v) =>
      this.onInterrupt(v),
    );
    this.names.add(vm.name);
    if (this.net) vm.nic = this.net.attachNic(vm.name, mac, () => vm.raise(IRQ.NET_RX));
    this.vms.push(vm);
    this.liveCount++;
    this.runQueue.push(vm);
    this.poke();
    return vm;
  }

  /**
   * Boot `count` VMs of one image (names `<name>`, `<name>-2` … unless `opts.name` is given).
   * @throws BootError as `addVm`.
   */
  addVms(image: DenaliImage, count: number, opts: AddVmOptions = {}): Vm[] {
    // replaced by the scale branch at merge (there: the first boots, the others are clones)
    return Array.from({ length: count }, () => this.addVm(image, opts));
  }

  /** Swap counters; no swapping here, so resident = live. */
  swapStats(): SwapStats {
    // replaced by the scale branch at merge
    let residentBytes = 0;
    for (const vm of this.vms) if (!vm.finished) residentBytes += vm.memory.size;
    return {
      swapIns: 0,
      swapOuts: 0,
      bytesRead: 0,
      bytesWritten: 0,
      residentVms: this.liveCount,
      swappedVms: 0,
      failures: 0,
      residentBytes,
      memoryBudget: this.opts.memoryBudget ?? 0,
      swapInLatencyUs: { p50: 0, p99: 0 },
    };
  }

  /** Number of VMs that have not finished. */
  get live(): number {
    return this.liveCount;
  }

  /**
   * Run every VM until all have finished or `stop` is called. Resolves then; never rejects
   * because of a guest (guest faults stop only that VM).
   */
  async run(): Promise<void> {
    if (this.running) throw new Error('Yakima.run is already running');
    this.running = true;
    try {
      if (this.kvm) await this.runOnWorkers(this.kvm);
      else await this.runInline();
      if (this.stopReason !== undefined) {
        for (const vm of this.vms) if (!vm.finished) this.finish(vm, 'stopped');
      }
    } finally {
      this.running = false;
    }
  }

  /** Release host resources: KVM worker threads and vCPUs. Call once `run` has resolved. */
  async close(): Promise<void> {
    for (const vm of this.vms) vm.vcpu.destroy?.();
    await this.kvm?.close();
  }

  /** Synchronous vCPUs (the emulator): one VM at a time on the main thread. */
  private async runInline(): Promise<void> {
    let sliceStart = performance.now();
    while (this.stopReason === undefined && this.liveCount > 0) {
      this.expireIdle();
      const vm = this.runQueue.shift();
      if (vm === undefined) {
        await this.waitForWork();
        sliceStart = performance.now();
        continue;
      }
      this.runQuantum(vm);
      this.net?.pump();
      if (performance.now() - sliceStart >= SLICE_MS) {
        await new Promise<void>((r) => setImmediate(r));
        sliceStart = performance.now();
      }
    }
  }

  /**
   * vCPUs on worker threads (KVM): up to one VM per worker in flight at once; the main thread
   * only handles exits (hypercalls, devices), so it stays free for I/O and Ctrl-C.
   */
  private async runOnWorkers(kvm: KvmBackend): Promise<void> {
    await kvm.start();
    const inflight = new Set<Promise<void>>();
    while (this.stopReason === undefined && this.liveCount > 0) {
      this.expireIdle();
      while (inflight.size < kvm.threads) {
        const vm = this.runQueue.shift();
        if (vm === undefined) break;
        const p: Promise<void> = this.runQuantumAsync(vm).finally(() => inflight.delete(p));
        inflight.add(p);
      }
      const work = this.waitForWork();
      if (inflight.size > 0) {
        await Promise.race([work, ...inflight]);
        this.poke(); // a VM came back first: drop the wait's timer
      } else {
        await work;
      }
      this.net?.pump();
    }
    await Promise.all(inflight);
  }

  /** Stop all VMs at the next quantum boundary (Ctrl-C). `run` then resolves. */
  stop(reason = 'stopped'): void {
    this.stopReason ??= reason;
    this.poke();
  }

  private createVcpu(memory: GuestMemory): Vcpu {
    if (this.opts.createVcpu) return this.opts.createVcpu(memory);
    if (this.kvm) return this.kvm.createVcpu(memory);
    const backend = this.opts.backend ?? 'emu';
    if (backend === 'emu') return new EmuCpu(memory);
    throw new Error(`unknown CPU backend '${String(backend)}'`);
  }

  private uniqueName(base: string): string {
    // Names taken and the next suffix to try per base: scanning all VMs per add made booting N VMs O(N²).
    if (!this.names.has(base)) return base;
    let n = this.suffixes.get(base) ?? 2;
    while (this.names.has(`${base}-${n}`)) n++;
    this.suffixes.set(base, n + 1);
    return `${base}-${n}`;
  }

  /** One scheduling quantum of `vm` on a synchronous vCPU. */
  private runQuantum(vm: Vm): void {
    if (!this.enterVm(vm)) return;
    const start = vm.vcpu.instructionsRetired;
    for (;;) {
      const left = this.quantum - (vm.vcpu.instructionsRetired - start);
      if (this.handleExit(vm, left > 0 ? vm.vcpu.run(left) : QUANTUM_OVER)) return;
    }
  }

  /** One scheduling quantum of `vm` on a worker-thread vCPU; the quantum is wall-clock time. */
  private async runQuantumAsync(vm: Vm): Promise<void> {
    if (!this.enterVm(vm)) return;
    const deadline = performance.now() + this.quantum / KVM_INSTRUCTIONS_PER_MICROSECOND / 1000;
    for (;;) {
      const leftUs = (deadline - performance.now()) * 1000;
      let exit: VcpuExit;
      try {
        // KvmVcpu.runAsync does not hang (its worker must answer within 10 × the quantum + 1 s,
        // else it reports an 'unknown-exit' fault) and does not reject; a vCPU that rejects
        // anyway faults its VM rather than the whole scheduler.
        exit = leftUs > 0 ? await vm.vcpu.runAsync!(leftUs) : QUANTUM_OVER;
      } catch (e) {
        if (vm.finished) return;
        this.faultVm(vm, 'unknown-exit', `vCPU run failed: ${e instanceof Error ? e.message : String(e)}`, 0);
        return;
      }
      if (vm.finished) return;
      if (this.handleExit(vm, exit)) return;
      if (this.stopReason !== undefined) {
        this.runQueue.push(vm);
        return;
      }
    }
  }

  /** VM entry (clock, interrupts, upcall); false when the VM had to be faulted instead. */
  private enterVm(vm: Vm): boolean {
    if (vm.enter()) return true;
    this.faultVm(vm, 'triple-fault', 'cannot push the upcall frame: bad stack pointer', vm.vcpu.getRegs().eip);
    return false;
  }

  /**
   * Act on one vCPU exit; the same for every backend (paper 3.2: only the CPU differs).
   * @returns true when the VM's quantum is over (requeued, idle, or finished).
   */
  private handleExit(vm: Vm, exit: VcpuExit): boolean {
    switch (exit.kind) {
      case 'quantum':
        // Paper 3.1.1: after being descheduled the VM learns that "time has passed".
        vm.stats.preemptions++;
        vm.pendingIrqs |= IRQ.TIMER;
        this.runQueue.push(vm);
        return true;
      case 'halt':
        vm.exitStatus = 0;
        this.finish(vm, 'exited');
        return true;
      case 'fault':
        this.recordFault(vm, { vmId: vm.id, vmName: vm.name, cause: exit.cause, detail: exit.detail, eip: exit.eip, bytes: exit.bytes });
        return true;
      case 'io-out': {
        let outcome;
        try {
          outcome = dispatchHypercall(vm, exit.port, exit.value, exit.size);
        } catch (e) {
          if (!(e instanceof HypercallFault)) throw e;
          // The out instruction has retired; report the address it started at (1 byte: `out dx, eax`).
          this.faultVm(vm, 'bad-hypercall', e.message, (vm.vcpu.getRegs().eip - 1) >>> 0);
          return true;
        }
        if (outcome.action === 'continue') return false;
        if (outcome.action === 'exit') {
          vm.exitStatus = outcome.status;
          this.finish(vm, 'exited');
          return true;
        }
        vm.stats.idles++;
        vm.state = 'idle';
        this.idleTable.add(vm, outcome.timeoutTicks === Infinity ? Infinity : hostTicks() + outcome.timeoutTicks);
        return true;
      }
    }
  }

  private faultVm(vm: Vm, cause: FaultCause, detail: string, eip: number): void {
    const bytes = vm.memory.canRead(eip, 1) ? vm.memory.u8.slice(eip, Math.min(eip + 15, vm.memory.size)) : new Uint8Array();
    this.recordFault(vm, { vmId: vm.id, vmName: vm.name, cause, detail, eip, bytes });
  }

  private recordFault(vm: Vm, report: FaultReport): void {
    vm.fault = report;
    this.finish(vm, 'faulted');
    this.opts.log?.(formatFault(report));
  }

  private finish(vm: Vm, state: 'exited' | 'faulted' | 'stopped'): void {
    if (vm.finished) return;
    vm.state = state;
    this.liveCount--;
    this.runQueue.remove(vm);
    this.idleTable.remove(vm);
    if (vm.nic && this.net) {
      this.net.pump(); // frames the VM sent before it ended still leave, as from a real NIC's FIFO
      this.net.detachNic(vm.nic);
    }
    vm.vcpu.destroy?.();
    vm.console.close();
    this.opts.onVmDone?.(vm);
  }

  private onInterrupt(vm: Vm): void {
    if (vm.state !== 'idle') return;
    this.idleTable.remove(vm);
    vm.state = 'runnable';
    this.runQueue.push(vm);
    this.poke();
  }

  private expireIdle(): void {
    if (this.idleTable.nextDeadline() > hostTicks()) return;
    for (const vm of this.idleTable.expire(hostTicks())) {
      vm.pendingIrqs |= IRQ.TIMER;
      vm.state = 'runnable';
      this.runQueue.push(vm);
    }
  }

  /** Sleep until the earliest idle deadline, an interrupt, or `stop`. Costs no host CPU. */
  private waitForWork(): Promise<void> {
    const deadline = this.idleTable.nextDeadline();
    const ms = deadline === Infinity ? MAX_WAIT_MS : Math.max(0, (deadline - hostTicks()) / 1000);
    return new Promise<void>((resolve) => {
      // `done` unregisters itself synchronously, and only if it is still the registered wake:
      // clearing `wake` later (e.g. in a `.finally`, which runs a microtask after `poke`) would
      // drop the wake of the *next* wait, which `runOnWorkers` starts synchronously after
      // poking this one — an interrupt would then wake nobody until the next timeout (up to
      // MAX_WAIT_MS: a VM that idles and gets a packet hangs for a minute, and Ctrl-C is lost).
      const done = (): void => {
        clearTimeout(timer);
        if (this.wake === done) this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, MAX_WAIT_MS));
      this.wake = done;
    });
  }

  private poke(): void {
    this.wake?.();
  }
}
