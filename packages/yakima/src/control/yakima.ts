import { HYPERCALL, HYPERCALL_PORT_BASE, IRQ, type DenaliImage } from '@denali/image-format';
import { createBootImage, defaultMac, type BootImage, type BootOptions } from '../boot/boot-image.js';
import type { GuestMemory } from '../boot/guest-memory.js';
import { EmuCpu } from '../cpu/emu/index.js';
import { KvmBackend, KVM_INSTRUCTIONS_PER_MICROSECOND, allocateGuestMemory } from '../cpu/kvm/index.js';
import { allocateSharedGuestMemory, ProcessBackend } from '../cpu/process/index.js';
import type { FaultCause, Vcpu, VcpuExit } from '../cpu/vcpu.js';
import { hostTicks } from '../devices/clock.js';
import type { ConsoleSink } from '../devices/console.js';
import { MemoryConsoleSink } from '../devices/console-sink.js';
import { HeapAdmission, heapEmergency } from '../sched/heap-admission.js';
import { IdleTable, type IdlePositions } from '../sched/idle-table.js';
import { RunQueue } from '../sched/run-queue.js';
import { VirtualNetwork, type NetworkOptions } from '../net/network.js';
import { codeShareOf } from '../memory/template.js';
import { openSwapper, type SwapOptions } from '../swap/open-swapper.js';
import { swappedMemory, SWAPPED_VCPU } from '../swap/swapped.js';
import type { ResidentMeasurement, Swapper, SwapStats } from '../swap/swapper.js';
import { formatFault, type FaultReport } from './fault-report.js';
import { dispatchHypercall, HypercallFault } from './hypercalls.js';
import { Vm } from './vm.js';
import { VmStateError } from './vm-state-error.js';
import { SwapError } from '../swap/swap-error.js';

/** CPU backends Yakima can run a VM on: the bundled emulator, x86 on Linux KVM, or x86 in sandboxed host processes. */
export type Backend = 'emu' | 'kvm' | 'process';

/**
 * Options of a Yakima instance. Memory (see `SwapOptions`): `memoryBudget` (bytes all VMs may
 * hold; idle VMs are swapped out to stay under it), `swapDir` (parent of the swap area).
 */
export interface YakimaOptions extends SwapOptions {
  /** CPU backend for new VMs. Default 'emu'. 'kvm' throws `KvmUnavailableError` where KVM is unusable. */
  backend?: Backend;
  /** KVM only: vCPU worker threads (default: one per host core). */
  kvmThreads?: number;
  /** Process backend only: VMs in flight at once (default: `defaultProcessThreads()`, four per host core up to 16). */
  processThreads?: number;
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
  /** Keep `run` going with no live VMs, until `stop` (a long-running host adds VMs later). */
  keepAlive?: boolean;
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

const IDLE_PORT = HYPERCALL_PORT_BASE + HYPERCALL.IDLE;

/** Default quantum: 500,000 instructions, about 10 ms of emulated time (10 ms of guest time on KVM). */
export const DEFAULT_QUANTUM = 500_000;

/** How long the scheduler runs VMs before letting the host event loop in (Ctrl-C, I/O), in ms. */
const SLICE_MS = 4;

/**
 * Longest time, in ms, that frames the VMs sent wait in their Tx FIFOs while other runnable
 * VMs run, on the emulator (`runInline`). There the switch moves frames once per round: when
 * no VM is runnable (every runnable VM has had its turn) or after this long. A receiving
 * VM loses nothing by it: had its frame crossed at once, it would still have joined the run
 * queue behind the VMs that run in this round. What it saves is the switch's and the other
 * ports' code running between every two VMs and evicting the shared compiled guest code from
 * the host's caches. swap-bench, zipf, means of alternating runs against pumping after every
 * quantum and at every IDLE: 10,000 VMs 3,261 -> 3,483 req/s (five each), one VM with 32
 * connections 9,362 -> 10,174 (three each). The bound is one nominal quantum
 * (`DEFAULT_QUANTUM`, ~10 ms), so a VM that spins cannot hold other VMs' frames back for
 * longer, and ports on other threads (the user-mode uplink) see frames at most that late.
 */
const ROUND_MAX_MS = 10;

/**
 * Longest wall-clock time of one quantum, in ms, whatever its instruction count and charges: a
 * safety net against slow instructions or hypercalls, bounding how long one VM can hold up the
 * others. Ctrl-C and host I/O do not wait for it: a quantum pauses every `SLICE_MS` to let the
 * event loop in. Well above a normal quantum (~10 ms): while the emulator still compiles a
 * guest's code, quanta run slowly, and a guest's timer work must still fit in one.
 */
const QUANTUM_MAX_MS = 100;

/** The emulator runs a quantum in pieces of at most this many instructions, checking the clock between. */
const RUN_CHUNK = 20_000;

/** How often the scheduler checks the V8 heap against its limit, in ms. */
const HEAP_CHECK_MS = 100;

/** Delay before retrying a swap-in the host could not take (no mapping or vCPU to be had), in ticks (µs). */
const SWAP_IN_RETRY_TICKS = 100_000;

/** The idle table keeps each VM's heap position in the VM itself (`IdlePositions`). */
const VM_IDLE_POSITIONS: IdlePositions<Vm> = {
  get: (vm) => (vm.idlePosition === -1 ? undefined : vm.idlePosition),
  set: (vm, i) => {
    vm.idlePosition = i;
  },
  delete: (vm) => {
    vm.idlePosition = -1;
  },
};

/** Longest single host timer while waiting for idle VMs, in ms (a timer keeps Node alive). */
const MAX_WAIT_MS = 60_000;

/** The name a VM called `base` gets among `taken`: `base`, else `base-2`, `base-3`, … */
export function uniqueVmName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

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
  private readonly idleTable = new IdleTable<Vm>(VM_IDLE_POSITIONS);
  private readonly quantum: number;
  readonly sink: ConsoleSink;
  /** The virtual network, when enabled. */
  readonly net: VirtualNetwork | undefined;
  /** The KVM worker pool, when the backend is 'kvm'. */
  private readonly kvm: KvmBackend | undefined;
  /** The sandboxed-process backend, when the backend is 'process'. */
  private readonly proc: ProcessBackend | undefined;
  private nextId = 1;
  private liveCount = 0;
  private stopReason: string | undefined;
  private wake: (() => void) | undefined;
  private running = false;
  private holds = 0;
  private readonly admission = new HeapAdmission();
  private heapCheckedAt = 0;
  /** The emulator quantum paused mid-way to let the event loop in (see `runQuantum`). */
  private quantumOf: { vm: Vm; start: number; deadline: number } | undefined;
  /** VMs on a worker-thread vCPU right now (KVM); a resumed VM among them is not requeued. */
  private readonly onCpu = new Set<Vm>();
  private readonly names = new Set<string>();
  private readonly nextSuffix = new Map<string, number>();
  /** Swap manager; undefined where guest memory cannot be mapped (then nothing is swapped). */
  private readonly swap: Swapper | undefined;

  constructor(private readonly opts: YakimaOptions = {}) {
    this.quantum = opts.quantumInstructions ?? DEFAULT_QUANTUM;
    if (!Number.isInteger(this.quantum) || this.quantum <= 0) throw new RangeError('quantum must be a positive number of instructions');
    this.sink = opts.sink ?? new MemoryConsoleSink();
    const net = opts.network;
    this.net = net ? new VirtualNetwork(net === true ? {} : net) : undefined;
    if (!opts.createVcpu && opts.backend === 'kvm') this.kvm = new KvmBackend({ threads: opts.kvmThreads });
    if (!opts.createVcpu && opts.backend === 'process') {
      this.proc = new ProcessBackend({
        threads: opts.processThreads,
        quantumMicros: this.quantum / KVM_INSTRUCTIONS_PER_MICROSECOND,
        // A resumed VM is on the CPU: any other there, or any waiting, contends for the cores.
        contended: () => this.onCpu.size > 1 || this.runQueue.size > 0,
      });
    }
    this.swap = openSwapper(opts, {
      createVcpu: (m) => this.createVcpu(m),
      // The process backend's tender maps the guest memory too: each VM gets its own memfd.
      sharedMemory: this.proc !== undefined,
      parkSwapped: (vm, deadline) => this.parkSwapped(vm, deadline),
      idleDeadline: (vm) => this.idleTable.deadlineOf(vm) ?? Infinity,
      log: (line) => this.opts.log?.(line),
      reuseEmuCpus: !opts.createVcpu && !this.kvm && (opts.backend ?? 'emu') === 'emu',
    });
  }

  /** The memory budget in bytes, or undefined when this host cannot swap. */
  get memoryBudget(): number | undefined {
    return this.swap?.memoryBudget;
  }

  /** Where swapped-out VMs are written (a private directory removed on close), or undefined. */
  get swapArea(): string | undefined {
    return this.swap?.swapArea;
  }

  /**
   * Boot a VM from a validated image and make it runnable.
   * @throws BootError when the memory size or arguments do not fit (see `createBootImage`).
   */
  addVm(image: DenaliImage, opts: AddVmOptions = {}): Vm {
    // The name is reserved first, so a refusal names the VM as it would have been called.
    const name = this.uniqueName(opts.name ?? image.manifest.name);
    try {
      // Swapped-out VMs hold a few KiB of heap; only resident ones count against its limit.
      this.admission.admit(name, this.swap ? this.swap.residentCount : this.liveCount);
    } catch (e) {
      this.names.delete(name);
      throw e;
    }
    const bootOpts = this.bootOptions(this.nextId++, opts);
    const swap = this.swap;
    if (swap) {
      bootOpts.allocateMemory = (size) => swap.memoryFor(image, size);
      bootOpts.preloaded = true;
    } else if (this.kvm) bootOpts.allocateMemory = allocateGuestMemory;
    else if (this.proc) bootOpts.allocateMemory = allocateSharedGuestMemory;
    const boot = createBootImage(image, bootOpts);
    const vcpu = this.createVcpu(boot.memory);
    vcpu.setRegs(boot.regs);
    const vm = this.register(image, name, bootOpts, boot, vcpu);
    swap?.admit(vm);
    this.runQueue.push(vm);
    this.poke();
    return vm;
  }

  /**
   * Keep `run` going while no VM is live, e.g. while VMs are still being added one by one.
   * @returns the release function (idempotent); `run` may resolve once every hold is released.
   */
  holdOpen(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.poke();
    };
  }

  /**
   * Boot `count` VMs of one image: the first boots; the others are copy-on-write clones of its
   * state at its first IDLE (booted and waiting for work), each with its own id, name, MAC and
   * IPv4 address in its virtual registers. Clones start swapped out and are swapped in by
   * their first virtual interrupt (a frame for their MAC, a timeout, console input); one that
   * gets none stays at SWAPPED_VM_BYTES. A later call with the same image, memory size and
   * arguments boots no VM: all `count` clone the same post-boot state. Without swap support
   * this boots `count` VMs.
   * @throws RangeError for a count that is not a positive integer; BootError like `addVm`.
   */
  addVms(image: DenaliImage, count: number, opts: AddVmOptions = {}): Vm[] {
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`VM count must be a positive integer, got ${count}`);
    // A batch of this image and options booted before: every new VM clones its parent's state.
    const source = this.swap?.cloneSourceFor(image, opts);
    const first = source ? undefined : this.addVm(image, opts);
    const out = first ? [first] : [];
    if (first && (!this.swap || !first.vcpu.saveState)) {
      for (let i = 1; i < count; i++) out.push(this.addVm(image, opts));
      return out;
    }
    const base = (source?.parent ?? first!).boot;
    const clones: { vm: Vm; opts: BootOptions }[] = [];
    for (let i = out.length; i < count; i++) {
      const bootOpts = this.bootOptions(this.nextId++, opts);
      const boot: BootImage = { ...base, memory: swappedMemory(base.memory.size) };
      const vm = this.register(image, this.uniqueName(opts.name ?? image.manifest.name), bootOpts, boot, SWAPPED_VCPU);
      vm.state = 'swapped';
      clones.push({ vm, opts: bootOpts });
    }
    if (first) this.swap!.cloneWhenBooted(first, image, clones, opts);
    else this.swap!.cloneFromSource(source!, image, clones);
    return out.concat(clones.map((c) => c.vm));
  }

  /**
   * Swap out an idle VM now (it is swapped back in by its next virtual interrupt).
   * @throws SwapError when it is not idle or cannot be swapped (the VM stays resident, nothing is lost).
   */
  async swapOut(vm: Vm): Promise<void> {
    if (!this.swap) throw new SwapError(this.noSwapReason());
    this.swap.swapOut(vm);
  }

  /**
   * Swap a swapped-out VM back in now; it stays idle until a virtual interrupt.
   * @throws SwapError when it is not swapped out or its record cannot be read.
   */
  async swapIn(vm: Vm): Promise<void> {
    if (!this.swap) throw new SwapError(this.noSwapReason());
    this.swap.swapIn(vm);
  }

  private noSwapReason(): string {
    return 'swapping is not supported on this host (guest memory cannot be mapped)';
  }

  /**
   * Measure now what each resident VM holds and what their templates hold once for all
   * (`Swapper.measureResident`), or undefined where this host cannot swap (no accounting).
   */
  measureResident(): ResidentMeasurement | undefined {
    return this.swap?.measureResident();
  }

  /** Swap counters and memory use (all zero where this host cannot swap). */
  swapStats(): SwapStats {
    if (this.swap) return this.swap.stats();
    const resident = this.vms.filter((v) => !v.finished).length;
    return { swapIns: 0, swapOuts: 0, bytesRead: 0, bytesWritten: 0, residentVms: resident, swappedVms: 0, failures: 0, keptMappingSwapIns: 0, residentBytes: 0, memoryBudget: 0, swapInLatencyUs: { p50: 0, p99: 0 } };
  }

  private bootOptions(id: number, opts: AddVmOptions): BootOptions {
    const bootOpts: BootOptions = { vmId: id, args: opts.args, memorySize: opts.memorySize, mac: defaultMac(id) };
    if (this.net) {
      bootOpts.ipv4 = { addr: this.net.addressOf(id), netmask: this.net.netmask, gateway: this.net.gateway };
      bootOpts.mtu = 1500;
      bootOpts.netFeatures = this.net.netFeatures;
    }
    return bootOpts;
  }

  /** Make a Vm object for a booted (or cloned) VM and give it its NIC; counts it live. */
  private register(image: DenaliImage, name: string, bootOpts: BootOptions, boot: BootImage, vcpu: Vcpu): Vm {
    const vm = new Vm(bootOpts.vmId, name, image.manifest, boot, vcpu, this.sink, (v) => this.onInterrupt(v));
    if (this.net) vm.nic = this.net.attachNic(vm.name, bootOpts.mac!, () => vm.raise(IRQ.NET_RX), bootOpts.ipv4?.addr);
    this.vms.push(vm);
    this.liveCount++;
    return vm;
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
    this.net?.setPolled(true); // ports fed from other threads need not wake us while we pump
    try {
      const workers = this.kvm ?? this.proc;
      if (workers) await this.runOnWorkers(workers);
      else await this.runInline();
      if (this.stopReason !== undefined) {
        for (const vm of this.vms) if (!vm.finished) this.finish(vm, 'stopped');
      }
    } finally {
      this.running = false;
      this.net?.setPolled(false);
    }
  }

  /** Release host resources: KVM worker threads and vCPUs. Call once `run` has resolved. */
  async close(): Promise<void> {
    for (const vm of this.vms) vm.vcpu.destroy?.();
    await this.kvm?.close();
    await this.proc?.close();
    this.swap?.close();
  }

  /** Synchronous vCPUs (the emulator): one VM at a time on the main thread. */
  private async runInline(): Promise<void> {
    let sliceStart = performance.now();
    let roundStart = sliceStart;
    while (this.stopReason === undefined && (this.liveCount > 0 || this.holds > 0 || this.opts.keepAlive)) {
      this.expireIdle();
      const resumed = this.quantumOf?.vm;
      const vm = resumed && !resumed.finished ? resumed : this.runQueue.shift();
      if (vm === undefined) {
        // Frames still queued cross before Yakima sleeps; those from ports on other threads
        // may wake a VM, which then runs instead (a wake raised here finds no wait to end).
        this.net?.pump();
        if (this.runQueue.size > 0) continue;
        await this.waitForWork();
        sliceStart = roundStart = performance.now();
        continue;
      }
      const t0 = performance.now();
      this.runQuantum(vm, sliceStart + SLICE_MS);
      const t1 = performance.now();
      vm.stats.cpuTimeUs += (t1 - t0) * 1000;
      // The round is over when no VM is runnable (none queued, none paused mid-quantum).
      if ((this.runQueue.size === 0 && this.quantumOf === undefined) || t1 - roundStart >= ROUND_MAX_MS) {
        this.net?.pump();
        roundStart = t1;
      }
      if (t1 - sliceStart >= SLICE_MS) {
        await new Promise<void>((r) => setImmediate(r));
        sliceStart = performance.now();
        this.checkHeap();
      }
    }
  }

  /**
   * vCPUs on worker threads (KVM, process): up to one VM per worker in flight at once; the main thread
   * only handles exits (hypercalls, devices), so it stays free for I/O and Ctrl-C.
   */
  private async runOnWorkers(kvm: { threads: number; start(): Promise<void> }): Promise<void> {
    await kvm.start();
    const inflight = new Set<Promise<void>>();
    while (this.stopReason === undefined && (this.liveCount > 0 || this.holds > 0 || this.opts.keepAlive)) {
      this.expireIdle();
      while (inflight.size < kvm.threads) {
        const vm = this.runQueue.shift();
        if (vm === undefined) break;
        const t0 = performance.now();
        this.onCpu.add(vm);
        const p: Promise<void> = this.runQuantumAsync(vm).finally(() => {
          // The kernel's account where the backend has one (a tender process also runs while
          // Yakima waits on other VMs); else the wall time of the quantum.
          const cpu = vm.vcpu.cpuTimeMicros?.();
          vm.stats.cpuTimeUs = cpu ?? vm.stats.cpuTimeUs + (performance.now() - t0) * 1000;
          this.onCpu.delete(vm);
          inflight.delete(p);
        });
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
      this.checkHeap();
    }
    await Promise.all(inflight);
  }

  /** Every `HEAP_CHECK_MS`: stop every VM in order, with one line, before V8 would abort on its heap limit. */
  private checkHeap(): void {
    const now = performance.now();
    if (now - this.heapCheckedAt < HEAP_CHECK_MS) return;
    this.heapCheckedAt = now;
    const why = heapEmergency();
    if (why === undefined) return;
    this.opts.log?.(`yakima: ${why}`);
    this.stop('out of memory');
  }

  /** Stop all VMs at the next quantum boundary (Ctrl-C). `run` then resolves. */
  stop(reason = 'stopped'): void {
    this.stopReason ??= reason;
    this.poke();
  }

  /**
   * Take a VM off the CPU until `resumeVm`: it leaves the run queue and the idle table and its
   * interrupts stay queued. A VM on a worker-thread vCPU stops at the end of its quantum.
   * No-op when already paused. @throws VmStateError when the VM has finished.
   */
  pauseVm(vm: Vm): void {
    if (vm.finished) throw new VmStateError(`VM ${vm.name} has ${vm.state}`);
    // A swapped-out VM comes back in first: a paused VM is resumed by running it, and its
    // memory and vCPU must be there then. @throws SwapError when its record cannot be read.
    if (vm.state === 'swapped') this.swap?.swapIn(vm);
    this.runQueue.remove(vm);
    this.idleTable.remove(vm);
    if (this.quantumOf?.vm === vm) this.quantumOf = undefined; // its half-run quantum ends here
    vm.state = 'paused';
  }

  /**
   * Make a paused VM runnable again; it is told that time has passed (TIMER, paper 3.1.1).
   * @throws VmStateError when the VM is not paused.
   */
  resumeVm(vm: Vm): void {
    if (vm.state !== 'paused') throw new VmStateError(`VM ${vm.name} is not paused (it is ${vm.state})`);
    vm.state = 'runnable';
    vm.pendingIrqs |= IRQ.TIMER;
    if (!this.onCpu.has(vm)) this.runQueue.push(vm);
    this.poke();
  }

  /** Stop one VM now (state 'stopped'); the others go on. @throws VmStateError when it has finished. */
  stopVm(vm: Vm): void {
    if (vm.finished) throw new VmStateError(`VM ${vm.name} has already ${vm.state === 'stopped' ? 'been stopped' : vm.state}`);
    this.finish(vm, 'stopped');
    this.poke();
  }


  private createVcpu(memory: GuestMemory): Vcpu {
    if (this.opts.createVcpu) return this.opts.createVcpu(memory);
    if (this.kvm) return this.kvm.createVcpu(memory);
    if (this.proc) return this.proc.createVcpu(memory);
    const backend = this.opts.backend ?? 'emu';
    if (backend === 'emu') return new EmuCpu(memory, codeShareOf(memory));
    throw new Error(`unknown CPU backend '${String(backend)}'`);
  }

  private uniqueName(base: string): string {
    let name = base;
    if (this.names.has(name)) {
      // Resume from the last suffix used for `base`: naming 10,000 clones stays linear.
      let n = this.nextSuffix.get(base) ?? 2;
      while (this.names.has(`${base}-${n}`)) n++;
      name = `${base}-${n}`;
      this.nextSuffix.set(base, n + 1);
    }
    this.names.add(name);
    return name;
  }

  /**
   * Run `vm` on a synchronous vCPU until its quantum ends — `quantum` instructions less the
   * hypercall work charged to it (`vm.charged`), at most `QUANTUM_MAX_MS` of wall-clock time —
   * or until `sliceEnd` (performance.now() ms) passes mid-quantum: then the quantum is kept in
   * `quantumOf` and `runInline` resumes it, without a new VM entry, after letting the event
   * loop in. The clock is read every `RUN_CHUNK` instructions and after every hypercall.
   */
  private runQuantum(vm: Vm, sliceEnd: number): void {
    let q = this.quantumOf;
    if (q?.vm !== vm) {
      if (!this.enterVm(vm)) return;
      q = this.quantumOf = { vm, start: vm.vcpu.instructionsRetired, deadline: performance.now() + QUANTUM_MAX_MS };
      vm.charged = 0;
    } else if (vm.pendingIrqs !== 0 && !this.enterVm(vm)) {
      // Interrupts raised while the quantum was paused are delivered now, as on a VM entry
      // (else a guest in its IDLE loop would spin: IDLE returns at once while they are queued).
      this.quantumOf = undefined;
      return;
    }
    for (;;) {
      const left = this.quantum - (vm.vcpu.instructionsRetired - q.start) - vm.charged;
      const now = performance.now();
      const timeUp = now >= q.deadline;
      if (left > 0 && !timeUp && now >= sliceEnd) return; // paused: the event loop goes first
      const exit = left > 0 && !timeUp ? vm.vcpu.run(Math.min(left, RUN_CHUNK)) : QUANTUM_OVER;
      if (exit.kind === 'quantum' && left > RUN_CHUNK && !timeUp) continue; // a chunk, not the quantum, ended
      if (this.handleExit(vm, exit)) {
        this.quantumOf = undefined;
        return;
      }
      // A hypercall raised an interrupt for this VM (console input asked for by CONSOLE_READ):
      // delivered on this resume, as in runQuantumAsync.
      if (vm.pendingIrqs !== 0 && !this.enterVm(vm)) {
        this.quantumOf = undefined;
        return;
      }
    }
  }

  /** One scheduling quantum of `vm` on a worker-thread vCPU; the quantum is wall-clock time. */
  private async runQuantumAsync(vm: Vm): Promise<void> {
    if (!this.enterVm(vm)) return;
    const deadline = performance.now() + this.quantum / KVM_INSTRUCTIONS_PER_MICROSECOND / 1000;
    vm.charged = 0;
    for (;;) {
      const leftUs = (deadline - performance.now()) * 1000 - vm.charged / KVM_INSTRUCTIONS_PER_MICROSECOND;
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
      // Every resume is a VM entry: interrupts raised while the vCPU ran (a frame from the
      // uplink, console input) are delivered now, not at the next quantum. Else a guest in its
      // IDLE loop spins until the quantum ends (IDLE returns at once while they are queued):
      // about 10 ms of latency per request.
      if (vm.pendingIrqs !== 0 && !this.enterVm(vm)) return;
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
    vm.stats.exits++;
    switch (exit.kind) {
      case 'quantum':
        // Paper 3.1.1: after being descheduled the VM learns that "time has passed".
        vm.stats.preemptions++;
        vm.pendingIrqs |= IRQ.TIMER;
        if (vm.state !== 'paused') this.runQueue.push(vm);
        return true;
      case 'halt':
        vm.exitStatus = 0;
        this.finish(vm, 'exited');
        return true;
      case 'fault':
        this.recordFault(vm, { vmId: vm.id, vmName: vm.name, cause: exit.cause, detail: exit.detail, eip: exit.eip, bytes: exit.bytes });
        return true;
      case 'io-out': {
        // Before the VM sleeps, its frames cross the switch: a peer that answers inline (the
        // load generator's 'inline' mode) wakes it within this quantum instead of at a VM entry
        // of its own, and ports on other threads see them now, not after the next wait. On the
        // emulator (no worker threads: `runInline`) only when no other VM is runnable, else at
        // the end of the round (ROUND_MAX_MS).
        if (exit.port === IDLE_PORT && (this.kvm !== undefined || this.proc !== undefined || this.runQueue.size === 0)) this.net?.pump();
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
        if (outcome.action === 'wait') {
          // Repeat the hypercall when woken: back onto its 1-byte `out dx, eax` (0xEF).
          const regs = vm.vcpu.getRegs();
          regs.eip = (regs.eip - 1) >>> 0;
          vm.vcpu.setRegs(regs);
          vm.state = 'idle';
          this.idleTable.add(vm, Infinity);
          return true;
        }
        if (outcome.action === 'exit') {
          vm.exitStatus = outcome.status;
          this.finish(vm, 'exited');
          return true;
        }
        vm.stats.idles++;
        if (vm.state === 'paused') return true;
        vm.state = 'idle';
        this.idleTable.add(vm, outcome.timeoutTicks === Infinity ? Infinity : hostTicks() + outcome.timeoutTicks);
        this.swap?.noteIdle(vm);
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
    vm.endedAt = performance.now();
    this.liveCount--;
    this.runQueue.remove(vm);
    this.idleTable.remove(vm);
    if (vm.nic && this.net) {
      this.net.pump(); // frames the VM sent before it ended still leave, as from a real NIC's FIFO
      this.net.detachNic(vm.nic);
    }
    vm.vcpu.destroy?.();
    this.swap?.forget(vm);
    vm.console.close();
    this.opts.onVmDone?.(vm);
  }

  private onInterrupt(vm: Vm): void {
    if (vm.state === 'swapped' && this.swap?.canSwapIn(vm)) this.swapInOrFault(vm);
    if (vm.state !== 'idle') return;
    this.idleTable.remove(vm);
    this.swap?.noteAwake(vm);
    vm.state = 'runnable';
    this.runQueue.push(vm);
    this.poke();
  }

  private expireIdle(): void {
    if (this.idleTable.nextDeadline() > hostTicks()) return;
    for (const vm of this.idleTable.expire(hostTicks())) {
      if (vm.state === 'swapped' && !this.swapInOrFault(vm)) continue;
      this.swap?.noteAwake(vm);
      vm.pendingIrqs |= IRQ.TIMER;
      vm.state = 'runnable';
      this.runQueue.push(vm);
    }
  }

  /**
   * Swap in a VM that has work. When its record cannot be read it is lost: fault it. When the
   * host cannot take it now (no mapping or vCPU to be had), log it and retry in 100 ms.
   */
  private swapInOrFault(vm: Vm): boolean {
    try {
      this.swap!.swapIn(vm);
      return true;
    } catch (e) {
      const detail = e instanceof Error ? e.message : String(e);
      if (e instanceof SwapError && !e.lost) {
        this.opts.log?.(`yakima: ${detail}; retrying`);
        this.idleTable.add(vm, hostTicks() + SWAP_IN_RETRY_TICKS);
        this.poke(); // the scheduler's wait must see the earlier deadline
      } else this.recordFault(vm, { vmId: vm.id, vmName: vm.name, cause: 'unknown-exit', detail, eip: 0, bytes: new Uint8Array() });
      return false;
    }
  }

  /** A clone (or a rebased clone parent) became a swapped VM waiting in the idle table. */
  private parkSwapped(vm: Vm, deadline: number): void {
    this.idleTable.add(vm, deadline);
    if (vm.pendingIrqs !== 0) this.onInterrupt(vm);
    this.poke();
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
        this.net?.setPolled(true);
        resolve();
      };
      const timer = setTimeout(done, Math.min(ms, MAX_WAIT_MS));
      this.wake = done;
      // No pump until woken: the uplink's worker must wake us. After `wake` is set, since the
      // frames this drains may raise an interrupt whose poke must end this very wait.
      this.net?.setPolled(false);
    });
  }

  private poke(): void {
    this.wake?.();
  }
}
