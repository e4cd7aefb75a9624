import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readImageFile, type DenaliImage } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import {
  StreamConsoleSink,
  Yakima,
  attachTapUplink,
  attachUserModeUplink,
  formatIPv4,
  parsePortForward,
  probeKvm,
  type Backend,
  type PortForward,
  type Vm,
} from '@denali/yakima';

/** Options of `denali run`. */
export interface RunOptions {
  /** 'auto' picks KVM when it runs guests natively here, else the emulator (saying why). */
  backend: Backend | 'auto';
  /** Guest memory per VM in bytes (overrides the image's). */
  memorySize?: number;
  /** Preemption quantum in guest instructions. */
  quantum?: number;
  /** Host bytes all VMs may hold (idle VMs are swapped out to stay under it); default half the available memory. */
  memoryBudget?: number;
  /** Parent directory of the swap area; default the user's cache directory. */
  swapDir?: string;
  /** argv[1..] for every guest (overrides the image's default args). */
  args?: string[];
  /** `-p` specs: HOST_PORT:GUEST_PORT or HOST_PORT:VM:GUEST_PORT. Non-empty implies `net: 'user'`. */
  publish?: string[];
  /** Networking: user-mode port forwards on loopback, or a host TAP device. Default: none. */
  net?: 'user' | 'tap';
}

/** Exit status when Ctrl-C stopped the run (128 + SIGINT). */
const INTERRUPTED = 130;

/**
 * `denali run`: load (or first build) each target, boot them all on one Yakima, wire the
 * console (stdin goes to the first VM), stop cleanly on Ctrl-C.
 * @returns the guest's exit status when one VM runs; with several, 0 when all exited 0,
 *   else the first non-zero status (a faulted VM counts as 1); 130 after Ctrl-C.
 */
export async function runCommand(targets: string[], opts: RunOptions): Promise<number> {
  const forwards = (opts.publish ?? []).map(parsePortForward);
  const net = opts.net ?? (forwards.length > 0 ? 'user' : undefined);
  if (net === 'tap' && forwards.length > 0) {
    throw new Error('-p is for --net user; with --net tap the host reaches every VM at its own address');
  }
  const backend = chooseBackend(opts.backend);
  const images = await loadTargets(targets);
  let onGuestGone: ((vm: Vm) => void) | undefined;
  const yakima = new Yakima({
    backend,
    quantumInstructions: opts.quantum,
    memoryBudget: opts.memoryBudget,
    swapDir: opts.swapDir,
    network: net !== undefined,
    sink: new StreamConsoleSink(process.stdout, images.length > 1),
    log: (line) => process.stderr.write(line + '\n'),
    onVmDone: (vm) => onGuestGone?.(vm),
  });
  // Said for services (a network) and when asked for: a batch program that never idles is never swapped.
  if (net !== undefined || opts.memoryBudget !== undefined || opts.swapDir !== undefined) {
    process.stderr.write(describeMemory(yakima, opts.memoryBudget === undefined) + '\n');
  }
  const vms = images.map((img) => yakima.addVm(img, { args: opts.args, memorySize: opts.memorySize }));
  const closeUplink = net ? await attachUplink(yakima, net, forwards, (f) => (onGuestGone = f)) : undefined;
  attachStdin(vms[0]!);
  for (const vm of vms.slice(1)) vm.console.endInput();

  let interrupts = 0;
  const onSigint = (): void => {
    if (++interrupts > 1) process.exit(INTERRUPTED);
    process.stderr.write('\ndenali: interrupted, stopping VMs (Ctrl-C again to force)\n');
    yakima.stop('interrupted');
  };
  process.on('SIGINT', onSigint);
  try {
    await yakima.run();
  } finally {
    process.off('SIGINT', onSigint);
    process.stdin.pause();
    process.stdin.unref?.();
    await closeUplink?.();
    await yakima.close();
  }
  if (interrupts > 0) return INTERRUPTED;
  if (vms.length === 1) return statusOf(vms[0]!);
  return vms.map(statusOf).find((s) => s !== 0) ?? 0;
}

/**
 * Resolve `--backend`. `auto` uses KVM only where guests run natively on the processor and
 * otherwise says in one line (stderr) why it falls back to the emulator.
 * @throws Error with the probe's reason when `kvm` was asked for and KVM is unusable.
 */
export function chooseBackend(asked: Backend | 'auto'): Backend {
  if (asked === 'emu') return 'emu';
  const probe = probeKvm();
  if (asked === 'kvm') {
    if (!probe.usable) throw new Error(`--backend kvm: KVM is not usable: ${probe.reason}`);
    if (probe.note) process.stderr.write(`denali: note: ${probe.note}\n`);
    return 'kvm';
  }
  if (probe.usable && probe.native) return 'kvm';
  const why = probe.usable ? (probe.note ?? 'KVM does not run guests natively here') : probe.reason;
  process.stderr.write(`denali: using the emulator: ${why}\n`);
  return 'emu';
}

/**
 * Connect the virtual switch to the host and say on stderr how to reach the VMs.
 * @returns a function that closes the uplink.
 * @throws UplinkError / Error with one line (port in use, no TAP privileges).
 */
async function attachUplink(
  yakima: Yakima,
  mode: 'user' | 'tap',
  forwards: PortForward[],
  setGuestGone: (f: (vm: Vm) => void) => void,
): Promise<() => Promise<void>> {
  const net = yakima.net!;
  const where = yakima.vms.map((vm) => `${vm.name} at ${formatIPv4(net.addressOf(vm.id))}`).join(', ');
  if (mode === 'tap') {
    const tap = await attachTapUplink(yakima);
    process.stderr.write(`denali: tap device ${tap.name} (${formatIPv4(tap.address)}/${tap.prefix}): ${where}\n`);
    return () => tap.close();
  }
  const up = await attachUserModeUplink(yakima, forwards);
  setGuestGone((vm) => up.guestGone(net.addressOf(vm.id)));
  for (const l of up.listening) {
    const f = l.forward;
    const vm = f.guest === undefined ? yakima.vms[0] : yakima.vms.find((v) => v.name === f.guest || v.id === f.guest);
    process.stderr.write(`denali: ${l.address}:${l.port} -> ${vm?.name ?? String(f.guest)} port ${f.guestPort}\n`);
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

async function loadTargets(targets: string[]): Promise<DenaliImage[]> {
  const images: DenaliImage[] = [];
  let buildDir: string | undefined;
  try {
    for (const t of targets) {
      const st = await stat(t).catch(() => {
        throw new Error(`'${t}' does not exist (expected a .dni image or a service directory)`);
      });
      if (st.isDirectory()) {
        buildDir ??= await mkdtemp(join(tmpdir(), 'denali-run-'));
        const r = await buildService(t, { out: join(buildDir, `${images.length}.dni`), quiet: true });
        images.push(await readImageFile(r.imagePath));
      } else {
        images.push(await readImageFile(t));
      }
    }
  } finally {
    if (buildDir) await rm(buildDir, { recursive: true, force: true });
  }
  return images;
}
