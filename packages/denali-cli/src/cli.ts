import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { LAYOUT } from '@denali/image-format/abi';
import { parseSize } from '@denali/image-format/size';
import { parsePortForward } from '@denali/yakima/port-forward';
import { loadCommands } from './commands-loader.js';
import { UsageError } from './usage-error.js';
import { VERSION } from './version.js';

// Commands load their modules when they run, so `denali --version` and `--help` do not pay for
// the VMM, the SDK driver or the TUI (issue 9: the CLI starts in ≤ 150 ms).
const commands = loadCommands;
import { addSwapBenchCommand } from './swap-bench/cli.js';


function sizeArg(text: string): number {
  try {
    return parseSize(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** `--memory`: a size that a VM can have (page multiple within the architecture's bounds). */
function memoryArg(text: string): number {
  const n = sizeArg(text);
  const mib = (b: number): string => `${b / (1024 * 1024)}M`;
  if (n < LAYOUT.MIN_MEMORY || n > LAYOUT.MAX_MEMORY) {
    throw new InvalidArgumentError(`'${text}' is not a VM memory size: it must be between ${mib(LAYOUT.MIN_MEMORY)} and ${mib(LAYOUT.MAX_MEMORY)}`);
  }
  if (n % 4096 !== 0) throw new InvalidArgumentError(`'${text}' is not a VM memory size: it must be a multiple of 4K`);
  return n;
}

/** `-p`: checked at parse time, so a bad spec is a usage error like any other bad flag. */
function publishArg(text: string, prev: string[]): string[] {
  try {
    parsePortForward(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return [...prev, text];
}

function positiveSizeArg(text: string): number {
  const n = sizeArg(text);
  if (n <= 0) throw new InvalidArgumentError(`'${text}' must be more than 0 bytes`);
  return n;
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`'${text}' is not a positive whole number`);
  return n;
}

/**
 * Parse `argv` and run the chosen command; resolves to the process exit status.
 * Arguments after a lone `--` are passed to the guest(s) of `denali run`.
 * @throws CommanderError for usage errors (already printed by commander).
 */
export async function runCli(argv: string[]): Promise<number> {
  const dd = argv.indexOf('--');
  const ours = dd >= 0 ? argv.slice(0, dd) : argv;
  const guestArgs = dd >= 0 ? argv.slice(dd + 1) : undefined;
  let status = 0;

  const program = new Command('denali')
    .description('Build and run Denali images: small untrusted services, each in its own lightweight VM')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run denali --help for usage)');

  program
    .command('build')
    .description('compile a service directory (with denali.json) against Ilwaco into a .dni image')
    .argument('<service-dir>', 'directory holding denali.json and the C sources')
    .option('-o, --output <file>', 'image file to write (default: <name>.dni in the current directory)')
    .action(async (dir: string, o: { output?: string }) => {
      status = await (await commands()).buildCommand(dir, o.output);
    });

  type RunFlags = {
    backend: 'auto' | 'kvm' | 'process' | 'emu';
    memory?: number;
    quantum?: number;
    memoryBudget?: number;
    maxResident?: number;
    swapDir?: string;
    publish: string[];
    net?: 'user' | 'tap';
    name?: string;
    detach?: boolean;
    host?: string;
  };
  const runOptions = (cmd: Command): Command =>
    cmd
      .addOption(
        new Option('--backend <backend>', 'CPU backend: kvm (native x86 on KVM), process (native x86 in sandboxed processes), emu (bundled emulator), or auto').choices(['auto', 'kvm', 'process', 'emu']).default('auto'),
      )
      .option('--memory <size>', 'guest memory per VM, e.g. 16M (default: from the image)', memoryArg)
      .option('--quantum <instructions>', 'preemption quantum in guest instructions', positiveInt)
      .option(
        '--memory-budget <size>',
        'host memory all VMs may hold, e.g. 2G; idle VMs are swapped out to stay under it (default: half the available memory)',
        positiveSizeArg,
      )
      .option('--max-resident <count>', 'most VMs resident at once; more are swapped out even under the budget, since V8 collects garbage more often the more guest memories are mapped (default: 2048)', positiveInt)
      .option('--swap-dir <dir>', 'directory for the swap area of idle VMs (default: the user cache directory); removed on exit')
      .option(
        '-p, --publish <spec>',
        'forward host TCP port to a guest port: HOST_PORT:GUEST_PORT (first VM) or HOST_PORT:VM:GUEST_PORT (VM name or 1-based index); repeatable; implies --net user',
        publishArg,
        [] as string[],
      )
      .addOption(
        new Option('--net <mode>', 'networking: user (loopback port forwards, no root) or tap (host TAP device, needs root)').choices(['user', 'tap']),
      )
      .option('--name <name>', 'instance name for the control socket (default: generated); with --host, the new VM\'s name')
      .option('-d, --detach', 'run the instance in the background (like denali serve --detach) and print its name')
      .addHelpText('after', '\nArguments after -- are passed to every guest as argv[1..].');
  /** Start (or detach) an instance, or add to one with --host. */
  const startInstance = async (targets: string[], o: RunFlags, serve: boolean): Promise<number> => {
    const run = {
      backend: o.backend,
      memorySize: o.memory,
      quantum: o.quantum,
      memoryBudget: o.memoryBudget,
      maxResidentVms: o.maxResident,
      swapDir: o.swapDir,
      args: guestArgs,
      publish: o.publish,
      net: o.net,
    };
    if (o.host !== undefined) return (await commands()).addToHost(o.host, targets, { ...run, vmName: o.name });
    if (o.detach) return (await commands()).detach(o.name, detachArgs(targets, o, guestArgs));
    return (await commands()).runCommand(targets, { ...run, name: o.name, serve });
  };

  runOptions(
    program
      .command('run')
      .description('boot one or more images (or service directories, built first) on Yakima, or add them to a running instance (--host)')
      .argument('<targets...>', '.dni images or service directories'),
  )
    .option('--host <instance>', 'add the VMs to this running instance instead of starting one')
    .action(async (targets: string[], o: RunFlags) => {
      status = await startInstance(targets, o, false);
    });

  runOptions(
    program
      .command('serve')
      .description('run a long-lived Yakima instance (VMs are added with denali run --host, watched with denali top)')
      .argument('[targets...]', '.dni images or service directories to boot at start'),
  ).action(async (targets: string[], o: RunFlags) => {
    status = await startInstance(targets, o, true);
  });

  program
    .command('ps')
    .description('list running instances and their VMs')
    .argument('[instance]', 'only this instance')
    .option('--json', 'print instances and VMs as JSON (the control API\'s shapes)')
    .action(async (instance: string | undefined, o: { json?: boolean }) => {
      status = await (await commands()).psCommand(instance, o.json === true);
    });

  program
    .command('stop')
    .description('stop VMs (VM or INSTANCE/VM) or whole instances')
    .argument('<targets...>', 'VM names, INSTANCE/VM, or instance names')
    .option('--host <instance>', 'look for the VMs in this instance')
    .action(async (targets: string[], o: { host?: string }) => {
      status = await (await commands()).stopCommand(targets, o.host);
    });

  program
    .command('logs')
    .description("print a VM's recent console output")
    .argument('<vm>', 'VM name or INSTANCE/VM')
    .option('-f, --follow', 'then keep printing its output as it comes')
    .option('--host <instance>', 'look for the VM in this instance')
    .option('--bytes <n>', 'at most this many bytes of the recent output', positiveInt)
    .action(async (vm: string, o: { follow?: boolean; host?: string; bytes?: number }) => {
      status = await (await commands()).logsCommand(vm, { follow: o.follow === true, host: o.host, bytes: o.bytes });
    });

  program
    .command('top')
    .description('live view of a running instance: its VMs, CPU, memory, network (q quits, ? helps)')
    .argument('[instance]', 'instance to watch (default: the only one running)')
    .option('--interval <ms>', 'refresh period in ms', positiveInt, 1000)
    .action(async (instance: string | undefined, o: { interval: number }) => {
      status = await (await commands()).topCommand(instance, o.interval);
    });

  program
    .command('inspect')
    .description('print the manifest of a .dni image')
    .argument('<image>', '.dni image file')
    .option('--json', 'print the manifest as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      status = await (await commands()).inspectCommand(file, o.json === true);
    });

  addSwapBenchCommand(program, sizeArg, (s) => (status = s), async () => (await commands()).swapBenchCommand);

  if (guestArgs !== undefined && ours[0] !== 'run' && ours[0] !== 'serve') {
    throw new UsageError("arguments after '--' are only for 'denali run' and 'denali serve'");
  }
  await program.parseAsync(ours, { from: 'user' });
  return status;
}

/** The `serve` arguments a detached instance is started with (targets made absolute). */
function detachArgs(
  targets: string[],
  o: { backend: string; memory?: number; quantum?: number; memoryBudget?: number; maxResident?: number; swapDir?: string; publish: string[]; net?: string },
  guestArgs?: string[],
): string[] {
  const a = ['--backend', o.backend];
  if (o.memory !== undefined) a.push('--memory', String(o.memory));
  if (o.quantum !== undefined) a.push('--quantum', String(o.quantum));
  if (o.memoryBudget !== undefined) a.push('--memory-budget', String(o.memoryBudget));
  if (o.maxResident !== undefined) a.push('--max-resident', String(o.maxResident));
  if (o.swapDir !== undefined) a.push('--swap-dir', resolve(o.swapDir));
  for (const p of o.publish) a.push('-p', p);
  if (o.net !== undefined) a.push('--net', o.net);
  a.push(...targets.map((t) => resolve(t)));
  if (guestArgs !== undefined) a.push('--', ...guestArgs);
  return a;
}
