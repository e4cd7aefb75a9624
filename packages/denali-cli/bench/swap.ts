/**
 * `pnpm bench:swap`: a short `denali swap-bench` (about 5 minutes here) — the HotOS paper's
 * Figure 3 (section 3.2): aggregate requests/s of 1 … 10,000 httpd VMs serving a 2 KB document
 * under the default 1 GiB memory budget, random and Zipf (α = 0.8) requests, 8 s per point
 * after 2 s of warm-up. Prints the table and the chart; writes JSON, CSV and SVG to
 * bench-results/swap (or --out DIR). Arguments are passed on to `denali swap-bench` and
 * override these defaults, e.g. `pnpm bench:swap --vms 1,10,100 --duration 5`.
 */
import { resolve } from 'node:path';
import { execa } from 'execa';

const root = resolve(import.meta.dirname, '../../..');
const defaults = ['--vms', '1,10,100,1000,10000', '--duration', '8', '--warmup', '2', '--out', resolve(root, 'bench-results/swap')];
const args = process.argv.slice(2).filter((a) => a !== '--');
const r = await execa(resolve(root, 'bin/denali'), ['swap-bench', ...defaults, ...args], { stdio: 'inherit', reject: false });
process.exitCode = r.exitCode ?? 1;
