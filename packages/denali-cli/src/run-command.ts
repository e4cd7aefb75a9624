import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { DenaliImage } from '@denali/image-format';
import { buildService, loadServiceConfig } from '@denali/ilwaco-sdk';
import {
  BootError,
  ConsoleTailSink,
  StreamConsoleSink,
  checkBootFit,
  Yakima,
  attachTapUplink,
  attachUserModeUplink,
  formatIPv4,
  parsePortForward,
  probeKvm,
  uniqueVmName,
  probeProcessBackend,
  type Backend,
  type PortForward,
  type Vm,
} from '@denali/yakima';
import { bootIncrementally } from './boot-vms.js';
import { loadImage } from './image-errors.js';
import { RunTempDir } from './run-temp-dir.js';
import { StopSignals } from './stop-signals.js';
import { UsageError } from './usage-error.js';
import { openControl } from './control/instance.js';

/** Options of `denali run`. */
export interface RunOptions {
  /** 'auto' picks KVM when it runs guests natively here, else the process backend where its probe passes, else the emulator (saying why). */
  backend: Backend | 'auto';
  /** Guest memory per VM in bytes (overrides the image's). */
  memorySize?: number;
  /** Preemption quantum in guest instructions. */
  quantum?: number;
  /** Host bytes all VMs may hold (idle VMs are swapped out to stay under it); default half the available memory. */
  memoryBudget?: number;
  /** Most VMs resident at once, even under the budget; default Yakima's (`DEFAULT_MAX_RESIDENT_VMS`). */
  maxResidentVms?: number;
  /** Parent directory of the swap area; default the user's cache directory. */
  swapDir?: string;
  /** argv[1..] for every guest (overrides the image's default args). */
  args?: string[];
  /** `-p` specs: HOST_PORT:GUEST_PORT or HOST_PORT:VM:GUEST_PORT. Non-empty implies `net: 'user'`. */
  publish?: string[];
  /** Networking: user-mode port forwards on loopback, or a host TAP device. Default: none. */
  net?: 'user' | 'tap';
  /** Instance name for the control socket (default: generated). */
  name?: string;
  /**
   * A long-running host (`denali serve`): keep running with no VMs until Ctrl-C, SIGTERM or
   * the API's shutdown; say the instance name; console input is not read.
   */
  serve?: boolean;
}

/** How long console output may take to reach a slow reader after a stop signal before it is given up, in ms. */
const STOP_FLUSH_MS = 250;

/** One target of `denali run`: an image file, or a service directory built first. */
interface Target {
  path: string;
  /** The VM's base name (manifest or denali.json name). */
  name: string;
  image?: DenaliImage;
}

/**
 * `denali run`: check the command line against the targets (usage errors exit 2 before
 * anything starts), build service directories in a private temp dir, then boot the VMs one
 * by one on a running Yakima (early ones serve while later ones boot), wire the console
 * (stdin goes to the first VM; stdout is flow-controlled) and stop in order on Ctrl-C or
 * SIGTERM, leaving no temp files behind.
 * @returns the guest's exit status when one VM runs; with several, 0 when all exited 0,
 *   else the first non-zero status (a faulted VM counts as 1); 1 when Yakima refused VMs it
 *   could not hold; 130 after SIGINT, 143 after SIGTERM.
 * @throws UsageError for bad options; Error with one line for unreadable targets or a failed build.
 */
export async function runCommand(targetPaths: string[], opts: RunOptions): Promise<number> {
  const forwards = (opts.publish ?? []).map(parseForwardOption);
  const net = opts.net ?? (forwards.length > 0 ? 'user' : undefined);
  if (net === 'tap' && forwards.length > 0) {
    throw new UsageError('-p is for --net user; with --net tap the host reaches every VM at its own address');
  }
  const targets = await resolveTargets(targetPaths);
  const names = vmNames(targets);
  checkForwards(forwards, names);

  let temp: RunTempDir | undefined;
  const signals = new StopSignals(() => temp?.remove());
  try {
    if (targets.some((t) => !t.image)) {
      temp = new RunTempDir();
      const built = await buildTargets(targets, temp, signals);
      temp.remove();
      if (!built) return signals.status!;
    }
    for (const t of targets) checkFit(t.image!, opts);
    const backend = chooseBackend(opts.backend);
    return await runVms(
      targets.map((t) => t.image!),
      names,
      { ...opts, net, backend },
      forwards,
      signals,
    );
  } finally {
    signals.dispose();
    temp?.remove();
  }
}

/** Boot and run the VMs; see `runCommand`. */
async function runVms(
  images: DenaliImage[],
  names: string[],
  opts: RunOptions & { backend: Backend },
  forwards: PortForward[],
  signals: StopSignals,
): Promise<number> {
  const net = opts.net;
  let onGuestGone: ((vm: Vm) => void) | undefined;
  const netlessTries: string[] = [];
  const log = (line: string): void => void process.stderr.write(line + '\n');
  const sink = new StreamConsoleSink(process.stdout, images.length > 1 || opts.serve === true, { log });
  const tail = new ConsoleTailSink(sink);
  const yakima = new Yakima({
    backend: opts.backend,
    quantumInstructions: opts.quantum,
    memoryBudget: opts.memoryBudget,
    maxResidentVms: opts.maxResidentVms,
    swapDir: opts.swapDir,
    network: net !== undefined,
    sink: tail,
    keepAlive: opts.serve,
    log,
    onVmDone: (vm) => {
      onGuestGone?.(vm);
      if (!net && vm.stats.netWithoutNic > 0) netlessTries.push(vm.name);
    },
  });
  const release = yakima.holdOpen();
  let closeUplink: (() => Promise<void>) | undefined;
  let refused = 0;
  let vms: Vm[] = [];
  const control = await openControl(yakima, { name: opts.name, tail, backend: opts.backend, required: opts.serve || opts.name !== undefined });
  if (control && (opts.serve || (opts.name === undefined && process.stderr.isTTY))) {
    log(`denali: instance ${control.name} (control socket ${control.socket})`);
  }
  // Said for services (a network) and when asked for: a batch program that never idles is never swapped.
  if (net !== undefined || opts.memoryBudget !== undefined || opts.swapDir !== undefined) log(describeMemory(yakima, opts.memoryBudget === undefined));
  try {
    if (net) closeUplink = await attachUplink(yakima, net, forwards, names, (f) => (onGuestGone = f));
    if (signals.received) return signals.status!;
    const running = yakima.run();
    signals.onStop = () => yakima.stop('interrupted');
    let bootError: unknown;
    try {
      const boot = await bootIncrementally(
        yakima,
        images,
        { args: opts.args, memorySize: opts.memorySize },
        () => signals.received !== undefined,
        (vm, i) => (i === 0 && !opts.serve ? attachStdin(vm) : vm.console.endInput()),
      );
      vms = boot.vms;
      refused = boot.refused;
    } catch (e) {
      bootError = e;
      yakima.stop('boot failed');
    } finally {
      release();
    }
    await running;
    if (bootError !== undefined) throw bootProblem(bootError, opts);
  } finally {
    await control?.close();
    process.stdin.pause();
    process.stdin.unref?.();
    await closeUplink?.();
    await yakima.close();
    // After a stop signal a reader that does not read must not hold the exit up; otherwise
    // the output is all delivered first (`runMain` waits for stdout), as any Unix program does.
    if (signals.received) {
      const left = await sink.flush(STOP_FLUSH_MS);
      if (left > 0) log(`denali: ${left} bytes of console output not delivered: stdout did not take them within ${STOP_FLUSH_MS} ms of the stop`);
    }
    if (sink.droppedBytes > 0) log(`denali: ${sink.droppedBytes} bytes of console output were dropped in all`);
  }
  if (netlessTries.length > 0) {
    const who = netlessTries.length === 1 ? netlessTries[0]! : `${netlessTries.length} VMs (${netlessTries.slice(0, 3).join(', ')}…)`;
    log(`denali: hint: ${who} tried to use the network, but this run has none: publish a port with -p HOST_PORT:GUEST_PORT, or use --net user`);
  }
  if (signals.status !== undefined) return signals.status;
  if (opts.serve) return refused > 0 ? 1 : 0;
  if (refused > 0 || vms.length === 0) return 1;
  if (vms.length === 1) return statusOf(vms[0]!);
  return vms.map(statusOf).find((s) => s !== 0) ?? 0;
}

/**
 * A VM that does not boot with this run's `--memory` or guest arguments is a usage error
 * (the image itself was validated when it was read); anything else is passed on.
 */
function bootProblem(e: unknown, opts: RunOptions): unknown {
  if (!(e instanceof BootError)) return e;
  const flags = [opts.memorySize !== undefined ? '--memory' : '', opts.args ? "arguments after '--'" : ''].filter(Boolean).join(' or ');
  return flags ? new UsageError(`${flags}: ${e.message}`) : e;
}

/** Check before anything starts that `image` boots with this run's options. @throws see `bootProblem` */
function checkFit(image: DenaliImage, opts: RunOptions): void {
  try {
    checkBootFit(image, { memorySize: opts.memorySize, args: opts.args });
  } catch (e) {
    throw bootProblem(e, opts);
  }
}

/** Parse one `-p` value. @throws UsageError naming the spec and what is wrong. */
export function parseForwardOption(spec: string): PortForward {
  try {
    return parsePortForward(spec);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * Reject forwards that point at no VM of this run (a VM index past the last VM, or a name no
 * VM will have) and two forwards of one host port, before anything starts.
 * @param names the VMs' names in boot order (VM index n is `names[n - 1]`).
 * @throws UsageError naming the forward and the VMs there are.
 */
export function checkForwards(forwards: readonly PortForward[], names: readonly string[]): void {
  const shown = names.length <= 8 ? names.join(', ') : `${names.slice(0, 8).join(', ')}, …`;
  const there = `this run has ${names.length} VM${names.length === 1 ? '' : 's'}: ${shown}`;
  const ports = new Map<number, PortForward>();
  for (const f of forwards) {
    const text = `-p ${f.hostPort}:${f.guest === undefined ? '' : `${f.guest}:`}${f.guestPort}`;
    if (typeof f.guest === 'number' && f.guest > names.length) throw new UsageError(`${text}: there is no VM ${f.guest} (${there})`);
    if (typeof f.guest === 'string' && !names.includes(f.guest)) throw new UsageError(`${text}: there is no VM named '${f.guest}' (${there})`);
    if (f.hostPort !== 0 && ports.has(f.hostPort)) throw new UsageError(`${text}: host port ${f.hostPort} is forwarded twice`);
    ports.set(f.hostPort, f);
  }
}

/** The names the VMs will get, in boot order (the rule of `Yakima.addVm`). */
function vmNames(targets: readonly Target[]): string[] {
  const taken = new Set<string>();
  return targets.map((t) => {
    const n = uniqueVmName(t.name, taken);
    taken.add(n);
    return n;
  });
}

/**
 * Read every image target and the name of every service directory (without building yet).
 * @throws Error with one line naming the target (missing, unreadable, not an image, bad denali.json).
 */
async function resolveTargets(paths: string[]): Promise<Target[]> {
  const out: Target[] = [];
  const cache = new Map<string, DenaliImage>();
  for (const path of paths) {
    const st = await stat(path).catch(() => {
      throw new Error(`'${path}' does not exist (expected a .dni image or a service directory)`);
    });
    if (st.isDirectory()) {
      out.push({ path, name: loadServiceConfig(path).name });
      continue;
    }
    let image = cache.get(path); // the same image many times: read it once
    if (!image) cache.set(path, (image = await loadImage(path)));
    out.push({ path, name: image.manifest.name, image });
  }
  return out;
}

/**
 * Build the service-directory targets into `temp` (each directory once); abandoned at the
 * first stop signal.
 * @returns false when a signal stopped the build.
 */
async function buildTargets(targets: Target[], temp: RunTempDir, signals: StopSignals): Promise<boolean> {
  const built = new Map<string, DenaliImage>();
  for (const [i, t] of targets.entries()) {
    if (t.image) continue;
    let image = built.get(t.path);
    if (!image) {
      const build = buildService(t.path, { out: join(temp.path, `${i}.dni`), quiet: true, tempDir: temp.path }).then((r) => loadImage(r.imagePath));
      build.catch(() => {}); // a build abandoned by a signal may still fail later
      const r = await Promise.race([build, signals.stopped.then(() => undefined)]);
      if (r === undefined) return false;
      built.set(t.path, (image = r));
    }
    t.image = image;
  }
  return true;
}

/**
 * Resolve `--backend`. `auto` uses KVM where guests run natively on the processor, else the
 * sandboxed-process backend where its start-up probe passes (LDT, compatibility mode, seccomp,
 * page-0 and past-the-end faults, a speed check), else the emulator; it says in one line
 * (stderr) which it chose and why.
 * @throws Error with the probe's reason when `kvm` or `process` was asked for and is unusable.
 */
export function chooseBackend(asked: Backend | 'auto'): Backend {
  if (asked === 'emu') return 'emu';
  if (asked === 'process') {
    const p = probeProcessBackend();
    if (!p.usable) throw new Error(`--backend process: the process backend is not usable here: ${p.reason}`);
    return 'process';
  }
  const probe = probeKvm();
  if (asked === 'kvm') {
    if (!probe.usable) throw new Error(`--backend kvm: KVM is not usable: ${probe.reason}`);
    if (!probe.native) process.stderr.write('denali: note: KVM here is kvm-pvm: guests run in the kernel\'s instruction emulator (slow)\n');
    return 'kvm';
  }
  if (probe.usable && probe.native) return 'kvm';
  const kvmWhy = probe.usable ? 'KVM here is kvm-pvm (no native 32-bit guests)' : `no native KVM (${probe.reason})`;
  const proc = probeProcessBackend();
  if (proc.usable) {
    process.stderr.write(`denali: using the process backend: ${kvmWhy}\n`);
    return 'process';
  }
  process.stderr.write(`denali: using the emulator: ${kvmWhy}; no process backend (${proc.reason})\n`);
  return 'emu';
}

/**
 * Connect the virtual switch to the host and say on stderr how to reach the VMs.
 * @param names the VMs' names in boot order (VM n has id n and the n-th address).
 * @returns a function that closes the uplink.
 * @throws UplinkError / Error with one line (port in use, no TAP privileges).
 */
async function attachUplink(
  yakima: Yakima,
  mode: 'user' | 'tap',
  forwards: PortForward[],
  names: string[],
  setGuestGone: (f: (vm: Vm) => void) => void,
): Promise<() => Promise<void>> {
  const net = yakima.net!;
  if (mode === 'tap') {
    const listed = names.slice(0, 8).map((n, i) => `${n} at ${formatIPv4(net.addressOf(i + 1))}`);
    const where = listed.join(', ') + (names.length > 8 ? `, … (${names.length} VMs)` : '');
    const tap = await attachTapUplink(yakima);
    process.stderr.write(`denali: tap device ${tap.name} (${formatIPv4(tap.address)}/${tap.prefix}): ${where}\n`);
    return () => tap.close();
  }
  const up = await attachUserModeUplink(yakima, forwards);
  setGuestGone((vm) => up.guestGone(net.addressOf(vm.id)));
  for (const l of up.listening) {
    const f = l.forward;
    const name = f.guest === undefined ? names[0] : typeof f.guest === 'number' ? names[f.guest - 1] : f.guest;
    process.stderr.write(`denali: ${l.address}:${l.port} -> ${name ?? String(f.guest)} port ${f.guestPort}\n`);
  }
  return () => up.close();
}

function statusOf(vm: Vm): number {
  if (vm.state === 'exited') return (vm.exitStatus ?? 0) & 0xff;
  return 1;
}

/** The line `denali run` starts with: the memory budget and where idle VMs are swapped to. */
function describeMemory(yakima: Yakima, isDefault: boolean): string {
  const budget = yakima.memoryBudget;
  if (budget === undefined) return 'denali: no memory budget: this host cannot swap VMs (guest memory cannot be mapped here)';
  const size = budget >= 2 ** 30 ? `${(budget / 2 ** 30).toFixed(1)} GiB` : `${(budget / 2 ** 20).toFixed(1)} MiB`;
  return `denali: memory budget ${size}${isDefault ? ' (half of the available memory; --memory-budget to change)' : ''}; idle VMs swap to ${yakima.swapArea}`;
}

/** Start reading host stdin only when the guest first reads its console. */
function attachStdin(vm: Vm): void {
  vm.console.onFirstRead = () => {
    const stdin = process.stdin;
    stdin.on('data', (chunk: Buffer) => {
      if (!vm.console.pushInput(chunk)) stdin.pause();
    });
    stdin.on('end', () => vm.console.endInput());
    stdin.on('error', () => vm.console.endInput());
    stdin.resume();
  };
}
