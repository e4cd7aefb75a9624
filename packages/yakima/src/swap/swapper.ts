/**
 * Yakima's swap manager (paper 3.2, HotOS section 3.2: idle VMs are swapped to disk and
 * brought back when a request arrives). It
 * - gives every VM its guest memory as a private mapping of a shared template
 *   (memory/template.ts) and tracks how much host memory each VM holds;
 * - keeps the total under the memory budget by swapping out idle VMs (blocked in IDLE), least
 *   recently active first;
 * - swaps a VM back in when a virtual interrupt arrives for it (Yakima calls `swapIn`);
 * - turns a booted VM's memory into a template that its clones share copy-on-write.
 *
 * Swap-out writes the vCPU state and the VM's private non-zero pages in one writev, then
 * drops the vCPU and gives up the memory: the VM keeps only its Vm object, devices (whose Rx
 * FIFO still takes frames, bounded) and a small slot. The mapping itself is kept a while for
 * the next swap-in of the same template (`WarmSlot`, `WARM_MAX`). Swap-in takes such a mapping
 * or maps the template again, and reads the record's pages straight over it with one preadv
 * (see docs/architecture.md for why this beat mapping the record lazily here).
 */
import { LAYOUT, PAGE_SIZE, type DenaliImage } from '@denali/image-format';
import { checkBootFit, rewriteBootRegisters, type BootFit, type BootOptions } from '../boot/boot-image.js';
import type { GuestMemory } from '../boot/guest-memory.js';
import type { Vcpu, VcpuState } from '../cpu/vcpu.js';
import type { Vm } from '../control/vm.js';
import { EMU_BLOCK_BYTES, EMU_VM_BASE_BYTES, EMU_VM_STATE_BYTES, KVM_VM_STATE_BYTES, PROCESS_VM_STATE_BYTES, SWAPPED_VM_BYTES } from '../memory/accounting.js';
import { ProcessVcpu } from '../cpu/process/process-vcpu.js';
import { EmuCpu } from '../cpu/emu/cpu.js';
import type { SharedCode } from '../cpu/emu/block-cache.js';
import { codeShareOf, MemoryTemplate, ownedBytes, privatePages, releaseMappedMemory, releaseWarm, retireWarm, templateOf, unmapGuestMemory, type WarmSlot } from '../memory/template.js';
import { decodeRecordHead, encodeRecord, forEachRun, RECORD_HEADER } from './swap-record.js';
import type { SwapStore } from './swap-area.js';
import { SwapError } from './swap-error.js';
import { hostTicks } from '../devices/clock.js';
import { isSwappedVcpu, swappedMemory, SWAPPED_VCPU } from './swapped.js';

/** Counters of swapping (SEAMS.md: `Yakima.swapStats`). Bytes are host bytes; latency in µs. */
export interface SwapStats {
  swapIns: number;
  swapOuts: number;
  bytesRead: number;
  bytesWritten: number;
  residentVms: number;
  swappedVms: number;
  /** Swap-outs that failed (the VM stayed resident) and swap-ins that failed (the VM faulted). */
  failures: number;
  /** Swap-ins that took a swapped-out VM's kept mapping (`WarmSlot`) instead of mapping the template afresh. */
  keptMappingSwapIns: number;
  /** Host memory held by all VMs: private pages, per-VM state, swapped VMs' slots, shared templates. */
  residentBytes: number;
  memoryBudget: number;
  /** Over the last `LATENCY_SAMPLES` swap-ins: from the interrupt to a runnable vCPU. */
  swapInLatencyUs: { p50: number; p99: number };
}

/** What `Swapper.measureResident` found, bytes. */
export interface ResidentMeasurement {
  /** Per resident VM: its written guest pages plus its vCPU and device objects. */
  vmBytes: number[];
  /** The guest-memory templates (image and clone templates), held once for all their VMs. */
  templateBytes: number;
}

/** What the swap manager needs from Yakima. */
export interface SwapHost {
  /** A vCPU of the instance's backend over `memory`. */
  createVcpu(memory: GuestMemory): Vcpu;
  /**
   * The backend's vCPUs run in another process that maps the guest memory too (the process
   * backend): each VM's memory is then its own memfd holding a copy of the template
   * (`MemoryTemplate.map(true)`) instead of a private mapping of it. Default false.
   */
  sharedMemory?: boolean;
  /** A clone (or a rebased parent) is now a swapped VM: put it in the idle table with `deadline` (host ticks) and wake it if interrupts are pending. */
  parkSwapped(vm: Vm, deadline: number): void;
  /** The idle deadline of an idle VM (host ticks; Infinity for none). */
  idleDeadline(vm: Vm): number;
  log(line: string): void;
  /**
   * True when every emulator vCPU `createVcpu` makes is a plain `EmuCpu` (no scripted or
   * configured vCPUs), so a swapped-out VM's vCPU may be handed to the next VM swapped in
   * (see `CPU_POOL_MAX`). Default false.
   */
  reuseEmuCpus?: boolean;
}

/** Where a swapped-out VM's state is. */
interface Slot {
  template: MemoryTemplate;
  /** Record in the swap area (0 when there is none: the template holds everything). */
  recordLength: number;
  metaLength: number;
  /** The vCPU state when it is not in a record (clones share their parent's). */
  state?: VcpuState;
  /** Rewrite the read-only virtual registers on swap-in (a clone's id, MAC, IPv4); `fit` is shared by a clone batch. */
  identity?: { image: DenaliImage; opts: BootOptions; fit?: BootFit };
  /** A clone whose parent has not reached its first IDLE yet. */
  parent?: Vm;
}

/**
 * The parent of a batch of clones (`cloneWhenBooted`) and, once it has idled, the post-boot
 * state its clones start from: later batches of the same image and options clone it too
 * (`cloneSourceFor`) instead of booting a parent of their own.
 */
export interface CloneSource {
  readonly parent: Vm;
  forked?: {
    template: MemoryTemplate;
    state: VcpuState;
    /** The parent's idle timeout when it forked, host ticks from then (Infinity: none). */
    timeoutTicks: number;
  };
}

/** What makes two batches' post-boot states the same, besides identity: memory size and arguments. */
function cloneKey(opts: { args?: string[]; memorySize?: number }): string {
  return JSON.stringify([opts.memorySize ?? null, opts.args ?? null]);
}

interface CloneBatch {
  image: DenaliImage;
  clones: { vm: Vm; opts: BootOptions }[];
  /** The parent's boot vCPU state, for booting the clones from scratch if it never idles. */
  bootState: VcpuState;
  /** What later batches of the same image and options clone (`cloneSourceFor`). */
  source: CloneSource;
}

/**
 * Default most VMs resident at once, whatever the memory budget. A resident VM's guest memory
 * is an ArrayBuffer over its host mapping, and V8 counts the whole view (12 MiB for httpd) as
 * external memory: with thousands resident it collects garbage far more often, most of all
 * while their number grows. Measured with `denali swap-bench --vms 1,10000 --dist zipf,random`
 * and `--max-resident` 1000000, 2048 and 1024 under the default 1 GiB budget (about 6,800 VMs
 * then fit): uncapped, 10,000 VMs took 122 s to boot and answer once; capped at 2,048, 44.6 s;
 * at 1,024, 34.0 s, with Zipf throughput within run-to-run noise (26-31 % of one VM).
 * Measured again once the load generator answered in batches (same command, zipf, 10,000 VMs,
 * default budget, two runs each): 2,048 took fewer swap-ins (856 and 751/s against 1,086 and
 * 907/s) but served no more (1,930 and 1,694 req/s against 1,926 and 1,612) and booted slower
 * (18.4-18.7 s against 14.6-14.9 s): the emulator runs slower the more VMs' memory it works
 * over (host caches and TLB), which cancels the swap-ins saved. All 10,000 resident
 * (`--max-resident 10000 --memory-budget 8G`) served 3,026 req/s, but took 60.9 s to boot and
 * 2.9 GiB of host RSS. Measured again once swap-ins took kept mappings and all batches shared
 * one clone template (same command, zipf, 10,000 VMs, default budget, five alternating runs):
 * 2,048 served 2,427 / 2,479 / 2,720 / 2,517 / 2,519 req/s against 2,530 / 2,164 / 2,307 /
 * 2,355 / 2,530 at 1,024 (swap-ins 1,040-1,160/s against 1,220-1,420/s), for 850-870 MiB of
 * host RSS against 580-610 and 10.5 s to boot 9,000 clones against about 5 s.
 */
export const DEFAULT_MAX_RESIDENT_VMS = 2048;

/** No pages (a swap-in without a record). */
const NO_PAGES = new Uint32Array(0);

/**
 * Pages of a VM just swapped in over `template` that hold the bytes `shared`'s blocks were
 * decoded from, without comparing the VM's pages: those its record did not cover (`written`,
 * ascending), so they are the template's, and on which the template itself holds those bytes
 * (`MemoryTemplate.holdsSharedCode`, compared once per template). Pages below the image are
 * left out: swap-in rewrites a clone's virtual registers and boot arguments there. Comparing
 * every code page again at each swap-in (4 KiB each) took ~2 % of the CPU per request at
 * 10,000 VMs.
 */
function templateCodePages(template: MemoryTemplate, shared: SharedCode, written: Uint32Array): number[] {
  const out: number[] = [];
  for (const [p, bytes] of shared.pages) {
    if (p * PAGE_SIZE < LAYOUT.IMAGE_BASE || includesSorted(written, p)) continue;
    if (template.holdsSharedCode(p, bytes)) out.push(p);
  }
  return out;
}

/** True when ascending `a` holds `v` (binary search). */
function includesSorted(a: Uint32Array, v: number): boolean {
  let lo = 0;
  let hi = a.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const x = a[mid]!;
    if (x === v) return true;
    if (x < v) lo = mid + 1;
    else hi = mid - 1;
  }
  return false;
}

/** A page of zeros to compare private pages with. */
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

/** Swap-in latencies kept for the percentiles. */
const LATENCY_SAMPLES = 4096;

/**
 * Swapped-out VMs' emulator vCPUs kept for the next swap-ins, at most. A vCPU made new for
 * each swap-in (its registers, x87 and SSE arrays, block-cache tables) was garbage again at
 * the VM's next swap-out: at 10,000 VMs garbage collection took ~20 % of the CPU. A kept
 * vCPU is moved onto the VM's memory (`EmuCpu.rebind`), which drops its own blocks and
 * checks every page again before running the template's shared blocks from it.
 */
const CPU_POOL_MAX = 64;

/**
 * Swapped-out VMs' mappings kept with their private pages for the next swap-ins of the same
 * template (`WarmSlot`), at most; their pages count in the budget and are the first memory
 * given back when it binds. With one clone template per image and arguments
 * (`cloneFromSource`), every swap-in of swap-bench's measured interval at 10,000 VMs finds one
 * (`keptMappingSwapIns` in `denali swap-bench --json`).
 */
const WARM_MAX = 64;

/**
 * Shortest time between two measurements of one resident VM's private pages, ms. Reading its
 * /proc/self/pagemap range costs tens of µs, and a VM serving requests goes idle two or three
 * times per request (SYN, request, FIN): measuring at every IDLE cost ~15 % of the CPU per
 * request at 10,000 VMs. Pages a VM dirties in between are counted at its next measurement.
 */
const MEASURE_INTERVAL_MS = 250;

/**
 * Shortest time between two measurements of any resident VMs, ms, while the total is below
 * `MEASURE_NEAR_BUDGET` of the budget (nearer, every VM is measured as `MEASURE_INTERVAL_MS`
 * allows). With a thousand resident VMs each serving a request now and then, almost every
 * request still paid a pagemap read (~4 % of the CPU per request); far below the budget, a few
 * hundred measurements a second keep the total current enough to see the budget coming.
 */
const MEASURE_GAP_MS = 4;

/** Fraction of the budget above which every idle VM is measured again (see `MEASURE_GAP_MS`). */
const MEASURE_NEAR_BUDGET = 0.75;

/**
 * How long the templates' host bytes (one fstat each) are reused before being read again, ms.
 * They grow only as a template's holes are first read, and `makeRoom` asks at every IDLE: at
 * 10,000 VMs (40 clone templates) the fstat calls alone took ~200 µs per request.
 */
const TEMPLATE_BYTES_TTL_MS = 100;

/**
 * The swap manager of one Yakima instance (see the module comment). Synchronous: swap-out and
 * swap-in happen on the scheduler's thread between VM runs; `Yakima.swapOut/swapIn` wrap them.
 */
export class Swapper {
  private readonly slots = new Map<Vm, Slot>();
  /** Idle resident VMs, least recently active first (Map keeps insertion order). */
  private readonly lru = new Map<Vm, true>();
  /** performance.now() of each resident VM's last measurement at an idle. */
  private readonly measuredAt = new Map<Vm, number>();
  private readonly resident = new Set<Vm>();
  private readonly imageTemplates = new WeakMap<DenaliImage, Map<number, MemoryTemplate>>();
  private readonly templates = new Set<MemoryTemplate>();
  private readonly cloneBatches = new Map<Vm, CloneBatch>();
  /** Batch parents by image and `cloneKey`. */
  private readonly cloneSources = new WeakMap<DenaliImage, Map<string, CloneSource>>();
  /** Memory of finished VMs, released on `close` unless garbage (then unmapped) by then. */
  private readonly finished = new Set<WeakRef<GuestMemory>>();
  private residentTotal = 0;
  private templateBytes = 0;
  private templateBytesAt = -Infinity;
  /** performance.now() of the last measurement of any VM at an idle (see `MEASURE_GAP_MS`). */
  private lastMeasuredAt = -Infinity;
  /** Swapped-out VMs' vCPUs for reuse, oldest first (see `CPU_POOL_MAX`), and their host bytes. */
  private readonly cpuPool: { cpu: EmuCpu; bytes: number }[] = [];
  private pooledBytes = 0;
  /** Swap-ins that reused a kept vCPU (see `CPU_POOL_MAX`). */
  vcpuReuses = 0;
  /** Swapped-out VMs' mappings kept for the next swap-in of their template, oldest first (see `WARM_MAX`), and their private bytes. */
  private readonly warm: WarmSlot[] = [];
  private warmBytes = 0;
  private readonly latency = new Float64Array(LATENCY_SAMPLES);
  private readonly counters = { swapIns: 0, swapOuts: 0, bytesRead: 0, bytesWritten: 0, failures: 0, keptMappingSwapIns: 0 };

  constructor(
    /** Host bytes all VMs together may hold (see `SwapStats.residentBytes`). */
    readonly memoryBudget: number,
    private readonly store: SwapStore,
    private readonly host: SwapHost,
    /** At most this many VMs are resident at once, whatever the budget (see `DEFAULT_MAX_RESIDENT_VMS`). */
    readonly maxResidentVms: number = DEFAULT_MAX_RESIDENT_VMS,
  ) {
    if (!(memoryBudget > 0)) throw new RangeError(`memory budget must be a positive number of bytes, got ${memoryBudget}`);
  }

  /** Where swapped VMs go (for messages). */
  get swapArea(): string {
    return this.store.where;
  }

  /**
   * Guest memory for a new VM of `image`: a private mapping of the image's template, holding
   * its segments already (pass `preloaded: true` to createBootImage). Makes room first.
   * @throws Error when the host cannot map it.
   */
  memoryFor(image: DenaliImage, size: number): GuestMemory {
    let bySize = this.imageTemplates.get(image);
    if (!bySize) this.imageTemplates.set(image, (bySize = new Map()));
    let t = bySize.get(size);
    if (!t) {
      t = MemoryTemplate.ofImage(image, size);
      bySize.set(size, t);
      this.templates.add(t);
      this.templateBytesAt = -Infinity;
    }
    this.makeRoom(EMU_VM_STATE_BYTES);
    return this.mapWithRoom(t);
  }

  /**
   * Map `template`; when the host refuses (vm.max_map_count or address space used up, which
   * resident VMs do), swap out least recently active idle VMs, each giving back its mapping,
   * and try again. @throws the last mmap error when no idle VM is left to make room.
   */
  private mapWithRoom(template: MemoryTemplate): GuestMemory {
    for (let tries = 0; ; tries++) {
      try {
        return template.map(this.host.sharedMemory === true);
      } catch (e) {
        if (this.warm.length > 0) {
          // Kept mappings are the cheapest to give back: all of them, before any swap-out.
          while (this.warm.length > 0) this.releaseOldestWarm();
          continue;
        }
        const victim = this.lru.keys().next().value;
        if (victim === undefined || tries >= 16) throw e;
        try {
          this.swapOut(victim);
        } catch {
          this.lru.delete(victim);
        }
      }
    }
  }

  /** VMs holding their memory and vCPU now (not swapped out): what the JavaScript heap must hold. */
  get residentCount(): number {
    return this.resident.size;
  }

  /** A new VM is resident (booted). */
  admit(vm: Vm): void {
    this.resident.add(vm);
    vm.hostBytes = stateBytes(vm);
    this.residentTotal += vm.hostBytes;
  }

  /**
   * `vm` executed IDLE: measure it, make it the most recently active idle VM, enforce the
   * budget. A VM that idles again within `MEASURE_INTERVAL_MS` of its last measurement is not
   * measured again (a web server idles after every request: reading pagemap and fstat-ing the
   * templates each time cost the emulator ~9 % of its time per request); nor, while the total
   * is far below the budget, one that idles within `MEASURE_GAP_MS` of any measurement (it is
   * measured at a later idle).
   */
  noteIdle(vm: Vm): void {
    let measured = false;
    if (this.resident.has(vm)) {
      const now = performance.now();
      const due = now - (this.measuredAt.get(vm) ?? -Infinity) >= MEASURE_INTERVAL_MS;
      if (due && (now - this.lastMeasuredAt >= MEASURE_GAP_MS || this.total() >= this.memoryBudget * MEASURE_NEAR_BUDGET)) {
        this.lastMeasuredAt = now;
        this.measure(vm, now);
        measured = true;
      }
      this.lru.delete(vm);
      this.lru.set(vm, true);
    }
    const batch = this.cloneBatches.get(vm);
    if (batch) this.forkClones(vm, batch);
    if (measured || batch || this.resident.size > this.maxResidentVms) this.makeRoom(0);
  }

  /**
   * Measure every resident VM now, as at an idle (written pages plus per-VM state), and the
   * templates its VMs share. For calibration (swap-bench's default budget), not the hot path:
   * a pagemap read per VM. @returns bytes each resident VM holds, and the templates' bytes.
   */
  measureResident(): ResidentMeasurement {
    const now = performance.now();
    const vmBytes: number[] = [];
    for (const vm of this.resident) vmBytes.push(this.measure(vm, now));
    this.measureTemplates(now);
    return { vmBytes, templateBytes: this.templateBytes };
  }

  /** Re-read what resident `vm` holds (its written pages plus per-VM state) into the total. @returns its bytes. */
  private measure(vm: Vm, now: number): number {
    const before = vm.hostBytes;
    vm.hostBytes = ownedBytes(vm.memory) + stateBytes(vm);
    this.residentTotal += vm.hostBytes - before;
    this.measuredAt.set(vm, now);
    return vm.hostBytes;
  }

  /** `vm` left the idle state (woken, or swapped out). */
  noteAwake(vm: Vm): void {
    this.lru.delete(vm);
  }

  /**
   * `vm` finished: drop its record and stop counting it. Its memory stays readable (fault
   * reports, tests) until it is garbage or `close` releases it.
   */
  forget(vm: Vm): void {
    this.lru.delete(vm);
    this.measuredAt.delete(vm);
    if (this.resident.delete(vm)) {
      this.residentTotal -= vm.hostBytes;
      if (!isSwappedVcpu(vm.vcpu)) this.finished.add(new WeakRef(vm.memory));
      if (this.finished.size > 1024) for (const r of this.finished) if (!r.deref()) this.finished.delete(r);
    }
    const slot = this.slots.get(vm);
    if (slot) this.slots.delete(vm);
    // Its record may outlive a swap-in (see swapIn), so a finished VM always drops it.
    this.store.remove(vm.id);
    vm.hostBytes = 0;
    const batch = this.cloneBatches.get(vm);
    if (batch) {
      this.cloneBatches.delete(vm);
      this.bootClonesFresh(vm, batch);
    }
  }

  // ------------------------------------------------------------------ swap-out / swap-in

  /**
   * Swap out an idle VM now. On failure the VM is unchanged and resident.
   * @throws SwapError when `vm` is not idle, cannot be swapped (its vCPU or memory does not
   *   support it), or the swap area failed (logged as one line, counted in `failures`).
   */
  swapOut(vm: Vm): void {
    if (vm.state !== 'idle' || !this.resident.has(vm)) throw new SwapError(`VM ${vm.id} (${vm.name}) is ${vm.state}: only idle, resident VMs can be swapped out`);
    const memory = vm.memory;
    const template = templateOf(memory);
    const save = vm.vcpu.saveState?.bind(vm.vcpu);
    if (!template || !save) throw new SwapError(`VM ${vm.id} (${vm.name}) cannot be swapped: its ${template ? 'vCPU cannot save its state' : 'memory is not a template mapping'}`);
    const state = save();
    const held = privatePages(memory);
    const pages = this.pagesToWrite(memory, template, held.slice());
    const { chunks, shape } = encodeRecord(vm.id, memory.u8, state, pages);
    let written: number;
    try {
      written = this.store.write(vm.id, chunks);
    } catch (e) {
      this.counters.failures++;
      const why = e instanceof Error ? e.message : String(e);
      this.host.log(`yakima: cannot swap out VM ${vm.id} (${vm.name}) to ${this.store.where}: ${why}; it stays resident`);
      throw new SwapError(`swap-out of VM ${vm.id} (${vm.name}) failed: ${why}`);
    }
    this.counters.swapOuts++;
    vm.stats.swapOuts++;
    this.counters.bytesWritten += written;
    this.evict(vm, { template, recordLength: shape.length, metaLength: shape.metaLength }, held);
  }

  /**
   * Swap a swapped-out VM back in: map its template, read its pages over it, restore its
   * vCPU. The VM is idle afterwards (the caller wakes it).
   * @throws SwapError when it is not swapped, is a clone whose parent has not booted yet, the
   *   host cannot map its memory or make its vCPU now (it stays swapped; try later), or its
   *   record cannot be read (`lost`: the caller faults it).
   */
  swapIn(vm: Vm): void {
    const slot = this.slots.get(vm);
    if (vm.state !== 'swapped' || !slot) throw new SwapError(`VM ${vm.id} (${vm.name}) is ${vm.state}, not swapped out`);
    if (slot.parent) throw new SwapError(`VM ${vm.id} (${vm.name}) is a clone of VM ${slot.parent.id}, which has not finished booting`);
    const t0 = performance.now();
    this.makeRoom(slot.recordLength + EMU_VM_STATE_BYTES);
    let memory: GuestMemory | undefined;
    /** Map the VM's memory (a warm slot of its template when one is kept) before its `overwrite` pages are read; else a SwapError to retry later. */
    const map = (overwrite: Uint32Array): GuestMemory => {
      const warm = this.takeWarm(slot.template);
      if (warm) {
        try {
          memory = slot.template.mapWarm(warm, overwrite);
          this.counters.keptMappingSwapIns++;
          return memory;
        } catch {
          // mapWarm released the slot; map afresh.
        }
      }
      try {
        return (memory = this.mapWithRoom(slot.template));
      } catch (e) {
        this.counters.failures++;
        throw new SwapError(`swap-in of VM ${vm.id} (${vm.name}) must wait: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    let vcpu: Vcpu | undefined;
    let lost = false;
    try {
      let state = slot.state;
      let written: Uint32Array = NO_PAGES;
      if (slot.recordLength > 0) {
        lost = true; // until the record has been read whole, but for the mapping
        state = this.store.read(vm.id, (read) => {
          const head = new Uint8Array(RECORD_HEADER + slot.metaLength);
          read([head], 0);
          const rec = decodeRecordHead(vm.id, slot.template.size, head);
          written = rec.pages;
          lost = false;
          const mem = map(rec.pages);
          lost = true;
          const views: Uint8Array[] = [];
          forEachRun(rec.pages, (first, count) => views.push(mem.u8.subarray(first * PAGE_SIZE, (first + count) * PAGE_SIZE)));
          read(views, head.length);
          return rec.state;
        });
        lost = false;
      }
      memory ??= map(NO_PAGES);
      if (slot.identity) rewriteBootRegisters(memory, slot.identity.image, slot.identity.opts, slot.identity.fit);
      vcpu = this.pooledCpu(memory, slot.template, written) ?? this.host.createVcpu(memory);
      if (!vcpu.restoreState) throw new Error('its vCPU cannot restore a saved state');
      vcpu.restoreState(state!);
    } catch (e) {
      vcpu?.destroy?.();
      // Unmapping frees every page, a warm slot's leftovers included.
      if (memory) unmapGuestMemory(memory);
      if (e instanceof SwapError && !lost) throw e; // could not map: it stays swapped, retried later
      this.counters.failures++;
      throw new SwapError(`swap-in of VM ${vm.id} (${vm.name}) failed: ${e instanceof Error ? e.message : String(e)}`, lost);
    }
    this.slots.delete(vm);
    // The record stays (stale, never read again) until the next swap-out overwrites it in place
    // or the VM finishes: unlinking it here made the next swap-out create the file anew, which
    // cost more than writing it (swap-area.ts). The area holds at most one record per VM either way.
    if (slot.recordLength > 0) this.counters.bytesRead += slot.recordLength;
    vm.memory = memory!;
    vm.boot.memory = memory!;
    vm.vcpu = vcpu;
    vm.state = 'idle';
    this.resident.add(vm);
    this.lru.set(vm, true);
    // Its private pages are those the record just filled: as good as a measurement, so its
    // next IDLE (normally right after the request that woke it) need not read pagemap again.
    vm.hostBytes = slot.recordLength + stateBytes(vm);
    this.measuredAt.set(vm, performance.now());
    this.residentTotal += vm.hostBytes;
    this.latency[this.counters.swapIns % LATENCY_SAMPLES] = (performance.now() - t0) * 1000;
    this.counters.swapIns++;
    vm.stats.swapIns++;
  }

  /** True when `vm` is swapped out and can be swapped in now (not a clone still waiting for its parent). */
  canSwapIn(vm: Vm): boolean {
    const slot = this.slots.get(vm);
    return vm.state === 'swapped' && slot !== undefined && slot.parent === undefined;
  }

  /** Pages of `memory` a record must hold: its private ones `priv` (filtered in place), except zero pages over zero template pages. */
  private pagesToWrite(memory: GuestMemory, template: MemoryTemplate, priv: Uint32Array): Uint32Array {
    const u8 = memory.u8;
    let n = 0;
    for (const p of priv) {
      // memcmp against a zero page: most private pages lie over zero template pages (stacks,
      // heap), and a word loop over them took ~3 % of the CPU per request at 10,000 VMs.
      if (!template.pageNonZero(p) && Buffer.compare(u8.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE), ZERO_PAGE) === 0) continue;
      priv[n++] = p;
    }
    return priv.subarray(0, n);
  }

  /**
   * Drop a resident VM's memory and vCPU (kept for reuse: `CPU_POOL_MAX`); it is 'swapped' with
   * `slot` from now on. With `held` (every page it holds privately, ascending) its mapping is
   * kept for the next swap-in of its template (`WarmSlot`), else unmapped.
   */
  private evict(vm: Vm, slot: Slot, held?: Uint32Array): void {
    const memory = vm.memory;
    vm.retiredAtSwapOut = vm.vcpu.instructionsRetired;
    if (this.host.reuseEmuCpus && vm.vcpu instanceof EmuCpu) this.poolCpu(vm.vcpu);
    else vm.vcpu.destroy?.();
    vm.vcpu = SWAPPED_VCPU;
    vm.memory = swappedMemory(memory.size);
    vm.boot.memory = vm.memory;
    // retireWarm unmaps a shared copy (process backend) itself; unmapping again is a no-op.
    const warm = held && retireWarm(memory, held);
    if (warm) this.keepWarm(warm);
    else unmapGuestMemory(memory);
    this.slots.set(vm, slot);
    this.lru.delete(vm);
    this.measuredAt.delete(vm);
    if (this.resident.delete(vm)) this.residentTotal -= vm.hostBytes;
    vm.hostBytes = SWAPPED_VM_BYTES;
    vm.state = 'swapped';
  }

  /** Keep a swapped-out VM's mapping for the next swap-in of its template (the oldest is freed past `WARM_MAX`). */
  private keepWarm(w: WarmSlot): void {
    if (this.warm.length >= WARM_MAX) this.releaseOldestWarm();
    this.warm.push(w);
    this.warmBytes += w.pages.length * PAGE_SIZE;
  }

  /** The newest kept mapping of `template`, taken out of the pool, or undefined. */
  private takeWarm(template: MemoryTemplate): WarmSlot | undefined {
    for (let k = this.warm.length - 1; k >= 0; k--) {
      const w = this.warm[k]!;
      if (w.template !== template) continue;
      this.warm.splice(k, 1);
      this.warmBytes -= w.pages.length * PAGE_SIZE;
      return w;
    }
    return undefined;
  }

  /** Free the oldest kept mapping's pages. */
  private releaseOldestWarm(): void {
    const w = this.warm.shift();
    if (!w) return;
    this.warmBytes -= w.pages.length * PAGE_SIZE;
    releaseWarm(w);
  }

  /** Keep a swapped-out VM's vCPU for a later swap-in (the oldest is dropped past `CPU_POOL_MAX`). */
  private poolCpu(cpu: EmuCpu): void {
    if (this.cpuPool.length >= CPU_POOL_MAX) this.pooledBytes -= this.cpuPool.shift()!.bytes;
    const bytes = emuStateBytes(cpu);
    this.cpuPool.push({ cpu, bytes });
    this.pooledBytes += bytes;
  }

  /**
   * A kept vCPU of the same memory size moved onto `memory` (a VM being swapped in over
   * `template`, with the record's pages `written` read over it), or undefined when none is kept.
   */
  private pooledCpu(memory: GuestMemory, template: MemoryTemplate, written: Uint32Array): EmuCpu | undefined {
    const shared = codeShareOf(memory);
    for (let k = this.cpuPool.length - 1; k >= 0; k--) {
      const e = this.cpuPool[k]!;
      if (e.cpu.size !== memory.size || (shared !== null) !== e.cpu.cache.sharesCode) continue;
      this.cpuPool.splice(k, 1);
      this.pooledBytes -= e.bytes;
      e.cpu.rebind(memory, shared, shared ? templateCodePages(template, shared, written) : undefined);
      this.vcpuReuses++;
      return e.cpu;
    }
    return undefined;
  }

  /**
   * Swap out idle VMs, least recently active first, until `extra` more bytes fit in the
   * budget or no idle VM is left. Stops at the first failure (already logged).
   *
   * (Tried and dropped: the coldest of the idle VMs by a decaying count of wake-ups, sparing
   * those active in the last 100 ms so that an exchange in progress is not swapped out between
   * its steps. swap-bench, zipf, 10,000 VMs: swap-ins per request 0.56 -> 0.48, as LRU and LFU
   * predict for 1,024 of 10,000 resident, but 1,731 / 1,589 -> 1,792 / 1,521 req/s: what a
   * request costs at 10,000 VMs besides its swap-in dominates. Also dropped: writing the record
   * of a victim the resident cap asked for on libuv's thread pool (write-behind), the VM
   * swapped out at once and its kept mapping held until the write ended: same command, three
   * alternating runs, 2,360 / 2,273 / 2,624 -> 2,288 / 2,343 / 2,643 req/s.)
   */
  makeRoom(extra: number): void {
    const cap = this.maxResidentVms - (extra > 0 ? 1 : 0);
    for (;;) {
      // Kept mappings go first (giving their pages back costs no swap-out), a swapped-out
      // VM's own included when the budget, not the resident cap, made room.
      while (this.warm.length > 0 && this.total() + extra > this.memoryBudget) this.releaseOldestWarm();
      if (!((this.total() + extra > this.memoryBudget || this.resident.size > cap) && this.lru.size > 0)) break;
      const victim = this.lru.keys().next().value!;
      try {
        this.swapOut(victim);
      } catch {
        this.lru.delete(victim); // tried; it is retried when it next goes idle
        return;
      }
    }
  }

  private total(): number {
    const now = performance.now();
    if (now - this.templateBytesAt >= TEMPLATE_BYTES_TTL_MS) this.measureTemplates(now);
    return this.residentTotal + this.templateBytes + this.pooledBytes + this.warmBytes + this.slots.size * SWAPPED_VM_BYTES;
  }

  /** Re-read what the templates hold (one fstat each: they grow as holes are read). */
  private measureTemplates(now: number): void {
    this.templateBytesAt = now;
    this.templateBytes = 0;
    for (const t of this.templates) this.templateBytes += t.hostBytes;
  }

  // ------------------------------------------------------------------ cloning

  /**
   * Make `clones` (new VMs in state 'swapped', with NICs but no memory) copy-on-write clones of
   * `parent` once it first executes IDLE (its post-boot state). If the parent finishes
   * before that, the clones boot from the image instead. Call right after booting `parent`
   * with the options it was added with (`opts`: later batches with the same image, memory
   * size and arguments clone its post-boot state too, `cloneSourceFor`).
   */
  cloneWhenBooted(parent: Vm, image: DenaliImage, clones: { vm: Vm; opts: BootOptions }[], opts: { args?: string[]; memorySize?: number } = {}): void {
    const v = parent.vcpu;
    if (!v.saveState) throw new SwapError(`VM ${parent.id} cannot be cloned: its vCPU cannot save its state`);
    let batch = this.cloneBatches.get(parent);
    if (!batch) {
      batch = { image, clones: [], bootState: v.saveState(), source: { parent } };
      let byKey = this.cloneSources.get(image);
      if (!byKey) this.cloneSources.set(image, (byKey = new Map()));
      byKey.set(cloneKey(opts), batch.source);
    }
    batch.clones.push(...clones);
    this.cloneBatches.set(parent, batch);
    for (const c of clones) {
      c.vm.hostBytes = SWAPPED_VM_BYTES;
      this.slots.set(c.vm, { template: templateOf(parent.memory)!, recordLength: 0, metaLength: 0, parent });
    }
  }

  /** The parent idles for the first time: its memory becomes the clones' shared template. */
  private forkClones(parent: Vm, batch: CloneBatch): void {
    this.cloneBatches.delete(parent);
    const template = MemoryTemplate.ofMemory(parent.memory, `clone of VM ${parent.id}`);
    this.templates.add(template);
    this.templateBytesAt = -Infinity;
    const state = parent.vcpu.saveState!();
    const deadline = this.host.idleDeadline(parent);
    batch.source.forked = { template, state, timeoutTicks: deadline === Infinity ? Infinity : Math.max(0, deadline - hostTicks()) };
    // The parent itself moves onto the template too, so its post-boot pages are held once.
    this.evict(parent, { template, recordLength: 0, metaLength: 0, state });
    this.host.parkSwapped(parent, deadline);
    this.parkClones(batch.image, batch.clones, template, state, deadline);
  }

  /**
   * Give each unfinished clone a record-less slot over `template` with the parent's post-boot
   * `state` (its own identity is written at its swap-in) and park it until `deadline` (host ticks).
   */
  private parkClones(image: DenaliImage, clones: { vm: Vm; opts: BootOptions }[], template: MemoryTemplate, state: VcpuState, deadline: number): void {
    const fits = new BootFits(image);
    for (const c of clones) {
      if (c.vm.finished) continue;
      c.vm.hostBytes = SWAPPED_VM_BYTES;
      this.slots.set(c.vm, { template, recordLength: 0, metaLength: 0, state, identity: { image, opts: c.opts, fit: fits.of(c.opts) } });
      this.host.parkSwapped(c.vm, deadline);
    }
  }

  /**
   * The post-boot state of an earlier batch's parent that new VMs of `image` added with `opts`
   * (memory size, arguments) can clone (`cloneFromSource`; its `parent.boot` is their boot
   * image), or undefined when there is none: no batch of them yet, or its parent finished
   * without idling.
   */
  cloneSourceFor(image: DenaliImage, opts: { args?: string[]; memorySize?: number }): CloneSource | undefined {
    const byKey = this.cloneSources.get(image);
    const key = cloneKey(opts);
    const src = byKey?.get(key);
    if (!src) return undefined;
    if (!src.forked && !this.cloneBatches.has(src.parent)) {
      byKey!.delete(key);
      return undefined;
    }
    return src;
  }

  /**
   * Make `clones` (new VMs of `image` in state 'swapped') clones of `src` (from
   * `cloneSourceFor`): at once when its parent has idled, else with its batch. Booting a parent
   * per batch made a template per batch (40 for swap-bench's 10,000 VMs): each held its own
   * copy of the post-boot pages, and a VM swapped in could take a swapped-out VM's kept mapping
   * (`WarmSlot`) only when both were of the same one.
   */
  cloneFromSource(src: CloneSource, image: DenaliImage, clones: { vm: Vm; opts: BootOptions }[]): void {
    if (!src.forked) {
      this.cloneWhenBooted(src.parent, image, clones);
      return;
    }
    const { template, state, timeoutTicks } = src.forked;
    this.parkClones(image, clones, template, state, timeoutTicks === Infinity ? Infinity : hostTicks() + timeoutTicks);
  }

  /** The parent finished without idling: each clone boots from the image's entry point. */
  private bootClonesFresh(parent: Vm, batch: CloneBatch): void {
    const template = this.imageTemplates.get(batch.image)?.get(parent.memory.size);
    const fits = new BootFits(batch.image);
    for (const c of batch.clones) {
      if (c.vm.finished || !template) continue;
      this.slots.set(c.vm, { template, recordLength: 0, metaLength: 0, state: batch.bootState, identity: { image: batch.image, opts: c.opts, fit: fits.of(c.opts) } });
      this.host.parkSwapped(c.vm, 0);
    }
  }

  // ------------------------------------------------------------------ stats

  stats(): SwapStats {
    const n = Math.min(this.counters.swapIns, LATENCY_SAMPLES);
    const sorted = Float64Array.from(this.latency.subarray(0, n)).sort();
    const pct = (q: number): number => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(q * n))]!);
    return {
      ...this.counters,
      residentVms: this.resident.size,
      swappedVms: this.slots.size,
      residentBytes: this.total(),
      memoryBudget: this.memoryBudget,
      swapInLatencyUs: { p50: pct(0.5), p99: pct(0.99) },
    };
  }

  /** Remove the swap area and release the templates (mapped memory stays valid until unmapped). */
  close(): void {
    while (this.warm.length > 0) this.releaseOldestWarm();
    for (const r of this.finished) {
      const m = r.deref();
      if (m) releaseMappedMemory(m);
    }
    this.finished.clear();
    this.store.close();
    for (const t of this.templates) t.close();
  }
}

/**
 * `checkBootFit` of a batch of clones, computed once for all with the same memory size and
 * arguments (a clone's first swap-in rewrites its boot registers: encoding its arguments each
 * time was ~1 % of the CPU per request at 10,000 VMs). undefined where the fit fails: the
 * swap-in computes it again and reports the error then.
 */
class BootFits {
  private last: { opts: BootOptions; fit: BootFit } | undefined;
  constructor(private readonly image: DenaliImage) {}

  of(opts: BootOptions): BootFit | undefined {
    const l = this.last;
    if (l && l.opts.memorySize === opts.memorySize && (l.opts.args === opts.args || (l.opts.args && opts.args && l.opts.args.length === opts.args.length && l.opts.args.every((a, i) => a === opts.args![i])))) return l.fit;
    try {
      this.last = { opts, fit: checkBootFit(this.image, opts) };
      return this.last.fit;
    } catch {
      return undefined;
    }
  }
}

/** Per-VM state bytes of a resident VM on its backend (the emulator's grow with its decoded blocks). */
function stateBytes(vm: Vm): number {
  if (vm.vcpu instanceof EmuCpu) return emuStateBytes(vm.vcpu);
  if (vm.vcpu instanceof ProcessVcpu) return PROCESS_VM_STATE_BYTES;
  return vm.vcpu.runAsync ? KVM_VM_STATE_BYTES : EMU_VM_STATE_BYTES;
}

/** Host bytes of an emulator vCPU and its block cache. */
function emuStateBytes(cpu: EmuCpu): number {
  return EMU_VM_BASE_BYTES + (cpu.cache.decoded + cpu.cache.reused) * EMU_BLOCK_BYTES;
}
