import { CommanderError } from 'commander';
import { runCli } from './cli.js';
import { UsageError } from './usage-error.js';

/**
 * Run the `denali` command line with `argv` (without node and script) and return the exit
 * status: 0 success, 1 a run-time failure, 2 a usage error (bad flag or argument). Every expected failure becomes one line on stderr and a non-zero status, never a
 * stack trace (set DENALI_DEBUG=1 to see one).
 */
export async function main(argv: string[]): Promise<number> {
  try {
    return await runCli(argv);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`denali: ${msg}\n`);
    if (UsageError.is(e)) {
      process.stderr.write('(run denali --help for usage)\n');
      return 2;
    }
    if (process.env.DENALI_DEBUG && e instanceof Error && e.stack) process.stderr.write(e.stack + '\n');
    return 1;
  }
}

/** `bin/denali`: run `main` on the process arguments, flush stdout, exit with its status. */
export async function runMain(): Promise<never> {
  // A reader that goes away (`denali logs -f VM | head`) ends the command quietly, as for cat.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const code = await main(process.argv.slice(2));
  // Deliver all output first, except after a stop signal (130, 143): `denali run` has then
  // already given stdout its bounded chance, and a stuck reader must not hold the exit up.
  if (code !== 130 && code !== 143) await new Promise<void>((r) => process.stdout.write('', () => r()));
  process.exit(code);
}
