import { Command, InvalidArgumentError, Option } from 'commander';
import { parseSize } from '@denali/image-format';
import { buildCommand } from './build-command.js';
import { inspectCommand } from './inspect-command.js';
import { runCommand } from './run-command.js';
import { addSwapBenchCommand } from './swap-bench/cli.js';

const VERSION = '0.1.0';

function sizeArg(text: string): number {
  try {
    return parseSize(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
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
      status = await buildCommand(dir, o.output);
    });

  program
    .command('run')
    .description('boot one or more images (or service directories, built first) on Yakima')
    .argument('<targets...>', '.dni images or service directories')
    .addOption(
      new Option('--backend <backend>', 'CPU backend: kvm (native x86), emu (bundled emulator), or auto').choices(['auto', 'kvm', 'emu']).default('auto'),
    )
    .option('--memory <size>', 'guest memory per VM, e.g. 16M (default: from the image)', sizeArg)
    .option('--quantum <instructions>', 'preemption quantum in guest instructions', positiveInt)
    .option(
      '-p, --publish <spec>',
      'forward host TCP port to a guest port: HOST_PORT:GUEST_PORT (first VM) or HOST_PORT:VM:GUEST_PORT (VM name or 1-based index); repeatable; implies --net user',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .addOption(
      new Option('--net <mode>', 'networking: user (loopback port forwards, no root) or tap (host TAP device, needs root)').choices(['user', 'tap']),
    )
    .addHelpText('after', '\nArguments after -- are passed to every guest as argv[1..].')
    .action(
      async (
        targets: string[],
        o: { backend: 'auto' | 'kvm' | 'emu'; memory?: number; quantum?: number; publish: string[]; net?: 'user' | 'tap' },
      ) => {
        status = await runCommand(targets, {
          backend: o.backend,
          memorySize: o.memory,
          quantum: o.quantum,
          args: guestArgs,
          publish: o.publish,
          net: o.net,
        });
      },
    );

  program
    .command('inspect')
    .description('print the manifest of a .dni image')
    .argument('<image>', '.dni image file')
    .option('--json', 'print the manifest as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      status = await inspectCommand(file, o.json === true);
    });

  addSwapBenchCommand(program, sizeArg, (s) => (status = s));

  if (guestArgs !== undefined && ours[0] !== 'run') {
    throw new Error("arguments after '--' are only for 'denali run'");
  }
  await program.parseAsync(ours, { from: 'user' });
  return status;
}
