import { InvalidArgumentError, Option, type Command } from 'commander';
import type { swapBenchCommand } from './command.js';
import { SWAP_BENCH_DEFAULTS as D, intArg, numberArg, parseDistributions, parseVmCounts } from './options.js';

/**
 * Add `denali swap-bench` to `program`. `sizeArg` parses --memory-budget (e.g. 1G);
 * `setStatus` receives the command's exit status; `load` gives the implementation. Bad flags are usage errors (exit 2).
 */
export function addSwapBenchCommand(
  program: Command,
  sizeArg: (text: string) => number,
  setStatus: (s: number) => void,
  /** Loads the command's implementation when it runs, so `denali --help` does not load the VMM. */
  load: () => Promise<typeof swapBenchCommand>,
): void {
  program
    .command('swap-bench')
    .description("web-server throughput of N httpd VMs under a memory budget: the HotOS paper's Figure 3 (section 3.2)")
    .addOption(new Option('--vms <list>', 'VM counts to measure, comma-separated').argParser(parseVmCounts).default(parseVmCounts(D.vms), D.vms))
    .addOption(
      new Option('--dist <list>', 'request distributions: random, zipf, or both').argParser(parseDistributions).default(parseDistributions(D.dist), D.dist),
    )
    .option('--alpha <a>', 'Zipf exponent', numberArg('Zipf exponent', 0, 10), Number(D.alpha))
    .option('--concurrency <n>', 'requests in flight at once (closed loop)', intArg('concurrency', 1, 16_384), Number(D.concurrency))
    .option('--duration <seconds>', 'measured time per point', numberArg('duration', 0, 86_400, true), Number(D.duration))
    .option('--warmup <seconds>', 'unmeasured load before each point', numberArg('warm-up time', 0, 3600), Number(D.warmup))
    .option('--memory-budget <size>', "host memory the VMs may hold, e.g. 512M (default: 1G, the paper's host, or what the VMs share plus room for a quarter of the largest count, if less)", (t: string) => {
      const n = sizeArg(t);
      if (n <= 0) throw new InvalidArgumentError(`'${t}' is not a usable memory budget (must be more than 0 bytes)`);
      return n;
    })
    .option('--max-resident <n>', 'most VMs resident at once; more are swapped out even under the budget, since V8 collects garbage more often the more guest memories are mapped (default: 2048)', intArg('resident VM count', 1, 1_000_000))
    .option('--swap-dir <dir>', "directory of the swap area (default: Yakima's, under the user's cache directory)")
    .option('--out <dir>', 'write swap-bench.json, swap-bench.csv and swap-bench.svg there')
    .option('--json', 'print the report as JSON instead of the table and chart')
    .addOption(new Option('--backend <backend>', 'CPU backend').choices(['emu', 'kvm', 'process']).default('emu'))
    .option('--seed <n>', 'seed of the request picker', intArg('seed', 0, 0xffffffff), Number(D.seed))
    .addHelpText('after', '\nEach point: requests/s, p50/p99 latency, swap-ins/s and swap-outs/s, bytes read and written,\nresident VMs, host RSS, errors. The load generator runs on the virtual switch: no host ports, no root.')
    .action(
      async (o: {
        vms: number[];
        dist: ReturnType<typeof parseDistributions>;
        alpha: number;
        concurrency: number;
        duration: number;
        warmup: number;
        memoryBudget?: number;
        maxResident?: number;
        swapDir?: string;
        out?: string;
        json?: boolean;
        backend: 'emu' | 'kvm' | 'process';
        seed: number;
      }) => {
        const swapBenchCommand = await load();
        setStatus(
          await swapBenchCommand({
            vms: o.vms,
            distributions: o.dist,
            alpha: o.alpha,
            concurrency: o.concurrency,
            duration: o.duration,
            warmup: o.warmup,
            memoryBudget: o.memoryBudget,
            maxResidentVms: o.maxResident,
            swapDir: o.swapDir,
            out: o.out,
            json: o.json === true,
            backend: o.backend,
            seed: o.seed,
          }),
        );
      },
    );
}
