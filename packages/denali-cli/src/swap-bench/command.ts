import { fileURLToPath } from 'node:url';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { readImageFile } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import { runSwapBench, DOCUMENT_PATH, type SwapBenchReport } from './bench.js';
import type { SwapBenchOptions } from './options.js';
import { TerminalProgress, type Progress } from './progress.js';
import { checkTargets, describeSetup, formatTable, formatTargets, formatTerminalChart, toCsv, toSvg } from './report.js';

/** The web server every VM runs: the repository's examples/httpd. */
// import.meta.url, not import.meta.dirname: the CLI bundle pins each module's own URL (scripts/build-cli.mjs).
export const HTTPD_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../examples/httpd');

/** Exit status after Ctrl-C (128 + SIGINT). */
const INTERRUPTED = 130;

/** Files `--out DIR` writes. */
export const OUT_FILES = { json: 'swap-bench.json', csv: 'swap-bench.csv', svg: 'swap-bench.svg' } as const;

/**
 * `denali swap-bench`: build examples/httpd, run the benchmark (`runSwapBench`), print the
 * table and the chart (or the JSON with `--json`), write JSON, CSV and SVG with `--out`.
 * @returns 0 when every point was measured with no failed request, 1 otherwise (the reason is
 *   printed; the numbers measured are still printed and written), 130 after Ctrl-C.
 */
export async function swapBenchCommand(o: SwapBenchOptions, progress: Progress = new TerminalProgress()): Promise<number> {
  const document = await readFile(join(HTTPD_DIR, 'assets', DOCUMENT_PATH.slice(1)));
  const work = await mkdtemp(join(tmpdir(), 'denali-swap-bench-'));
  let report: SwapBenchReport;
  // First Ctrl-C: stop measuring, print and write what was measured; a second one exits at once.
  const interrupt = new AbortController();
  const onSigint = (): void => {
    if (interrupt.signal.aborted) process.exit(INTERRUPTED);
    progress.note('\ndenali: swap-bench: interrupted, stopping (Ctrl-C again to force)');
    interrupt.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    progress.note(`denali swap-bench: building ${HTTPD_DIR}`);
    const built = await buildService(HTTPD_DIR, { out: join(work, 'httpd.dni'), quiet: true });
    const image = await readImageFile(built.imagePath);
    report = await runSwapBench(image, document, o, progress, interrupt.signal);
    report.targets = checkTargets(report);
  } finally {
    process.off('SIGINT', onSigint);
    await rm(work, { recursive: true, force: true });
  }
  if (o.out) {
    await mkdir(o.out, { recursive: true });
    await writeFile(join(o.out, OUT_FILES.json), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(o.out, OUT_FILES.csv), toCsv(report));
    await writeFile(join(o.out, OUT_FILES.svg), toSvg(report));
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const color = process.stdout.isTTY === true && !process.env['NO_COLOR'];
    const chart = formatTerminalChart(report, 60, color);
    process.stdout.write(`${describeSetup(report)}\n\n${formatTable(report)}\n${chart ? `\n${chart}\n` : ''}\n${formatTargets(report)}\n`);
    if (o.out) process.stdout.write(`\nwrote ${Object.values(OUT_FILES).map((f) => join(o.out!, f)).join(', ')}\n`);
  }
  if (interrupt.signal.aborted) return INTERRUPTED;
  const problems: string[] = [];
  if (report.totalErrors > 0) problems.push(`${report.totalErrors} requests failed`);
  if (report.skipped.length > 0) problems.push(`${report.skipped.length} VM counts not measured`);
  if (problems.length > 0) {
    process.stderr.write(`denali: swap-bench: ${problems.join('; ')}\n`);
    return 1;
  }
  return 0;
}
