import { Command, InvalidArgumentError, Option } from 'commander';
import { LAYOUT, parseSize } from '@denali/image-format';
import { parseForwardOption } from './run-command.js';
import { buildCommand } from './build-command.js';
import { inspectCommand } from './inspect-command.js';
import { runCommand } from './run-command.js';
import { UsageError } from './usage-error.js';

const VERSION = '0.1.0';

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
    parseForwardOption(text);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
  return [...prev, text];
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
    .option('--memory <size>', 'guest memory per VM, e.g. 16M (default: from the image)', memoryArg)
    .option('--quantum <instructions>', 'preemption quantum in guest instructions', positiveInt)
    .option(
      '-p, --publish <spec>',
      'forward host TCP port to a guest port: HOST_PORT:GUEST_PORT (first VM) or HOST_PORT:VM:GUEST_PORT (VM name or 1-based index); repeatable; implies --net user',
      publishArg,
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

  if (guestArgs !== undefined && ours[0] !== 'run') {
    throw new UsageError("arguments after '--' are only for 'denali run'");
  }
  await program.parseAsync(ours, { from: 'user' });
  return status;
}
