import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CSV_COLUMNS, checkTargets, formatTable, formatTargets, formatTerminalChart, toCsv, toSvg } from '../src/swap-bench/report.js';
import { splitResidentCost, type SwapBenchReport } from '../src/swap-bench/bench.js';
import { hostMemoryProblem } from '../src/swap-bench/host-guard.js';
import { defaultMemoryBudget } from '../src/swap-bench/options.js';
import { execa } from 'execa';
import { probeProcessBackend } from '@denali/yakima';
import { denali, denaliBin, root } from './helpers.js';

/** Well-formed XML (tags balanced and properly nested, one root): enough to catch a broken SVG writer. */
function checkXml(text: string): string[] {
  const body = text.replace(/^<\?xml[^>]*\?>\s*/, '');
  const stack: string[] = [];
  const roots: string[] = [];
  for (const m of body.matchAll(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g)) {
    const [, close, name, , selfClose] = m;
    if (close) {
      expect(stack.pop(), `</${name}>`).toBe(name);
    } else if (!selfClose) {
      if (stack.length === 0) roots.push(name!);
      stack.push(name!);
    } else if (stack.length === 0) roots.push(name!);
  }
  expect(stack).toEqual([]);
  // No stray '<' outside the tags matched above (e.g. an unescaped '<' in text).
  expect(body.replace(/<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g, '')).not.toContain('<');
  return roots;
}

describe('denali swap-bench', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('runs a tiny configuration and emits valid JSON, CSV and SVG', async () => {
    const out = await mkdtemp(join(tmpdir(), 'denali-swap-bench-'));
    dirs.push(out);
    const r = await denali(
      ['swap-bench', '--vms', '2,1', '--duration', '1', '--warmup', '0.2', '--concurrency', '2', '--memory-budget', '64M', '--out', out, '--json'],
      { timeout: 120_000 },
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as SwapBenchReport;
    expect(JSON.parse(await readFile(join(out, 'swap-bench.json'), 'utf8'))).toEqual(report);
    expect(report.memoryBudgetBytes).toBe(64 << 20);
    expect(report.memoryBudgetIsDefault).toBe(false);
    expect(report.memoryBudgetWhy).toBe('given by --memory-budget');
    expect(report.vmResidentBytes).toBeNull();
    expect(report.document).toEqual({ path: '/doc-2k.html', bytes: 2048 });
    expect(report.points.map((p) => `${p.vms} ${p.distribution}`)).toEqual(['1 random', '1 zipf', '2 random', '2 zipf']);
    for (const p of report.points) {
      expect(p.errors).toBe(0);
      expect(p.requests).toBeGreaterThan(0);
      expect(p.requestsPerSecond).toBeCloseTo(p.requests / p.seconds, 6);
      expect(p.latencyUs.p50).toBeGreaterThan(0);
      expect(p.latencyUs.p99).toBeGreaterThanOrEqual(p.latencyUs.p50);
      expect(p.residentVms + p.swappedVms).toBe(p.vms);
      expect(p.hostRssBytes).toBeGreaterThan(10 << 20);
      expect(p.cpuSeconds).toBeGreaterThan(0);
      expect(p.cpuUsPerRequest).toBeGreaterThan(0);
      for (const k of ['swapInsPerSecond', 'swapOutsPerSecond', 'bytesRead', 'bytesWritten'] as const) expect(p[k]).toBeGreaterThanOrEqual(0);
    }
    expect(report.boots.map((b) => [b.vms, b.added])).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(report.totalErrors).toBe(0);
    expect(report.targets.map((t) => t.what)).toContain('10,000 VMs, zero errors');

    const csv = await readFile(join(out, 'swap-bench.csv'), 'utf8');
    const lines = csv.split('\r\n');
    expect(lines.pop()).toBe('');
    expect(lines[0]).toBe(CSV_COLUMNS.join(','));
    expect(lines).toHaveLength(5);
    for (const [i, l] of lines.slice(1).entries()) {
      const cells = l.split(',');
      expect(cells).toHaveLength(CSV_COLUMNS.length);
      expect(Number(cells[0])).toBe(report.points[i]!.vms);
      expect(Number(cells[2])).toBe(report.points[i]!.requests);
    }

    const svg = await readFile(join(out, 'swap-bench.svg'), 'utf8');
    expect(checkXml(svg)).toEqual(['svg']);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain('Number of virtual machines (log scale)');
  }, 150_000);

  it('prints the setup with the memory budget, a table and a chart against log N', async () => {
    const r = await denali(['swap-bench', '--vms', '1', '--dist', 'zipf', '--duration', '0.5', '--warmup', '0', '--concurrency', '1'], { timeout: 120_000 });
    expect(r.exitCode, r.stderr).toBe(0);
    // --vms 1: the default budget is a quarter of what that one VM holds (the paper's 1 GB for large counts)
    const m = /memory budget (\S+ \S+) \(default: room for a quarter of the VM besides what they share, so they cannot all stay resident; (\S+ \S+) per VM plus (\S+ \S+) shared, measured on 1;/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    expect(r.stdout).toMatch(/^VMs +dist +req\/s +p50 +p99 +swap-in\/s +swap-out\/s +read +written +resident +host RSS +errors +CPU\/req$/m);
    expect(r.stdout).toMatch(/^1 +zipf +[\d,]+ .* 0 +[\d.]+ [mµ]?s$/m);
    expect(r.stdout).toContain('aggregate requests/s vs number of VMs (log scale)');
    expect(r.stdout).not.toMatch(/^1 +random/m);
    expect(r.stdout).toMatch(/^targets \(issue 8\):\n {2}MISSED {2}10,000 VMs, zero errors: 1 VMs, 0 errors$/m);
  }, 150_000);

  it('shows a progress bar while measuring in a real terminal (tmux), then the table', async (ctx) => {
    const tmux = await execa('tmux', ['-V'], { reject: false });
    if (tmux.exitCode !== 0) {
      console.log('skipped: tmux is not installed (apt-get install -y tmux)');
      ctx.skip();
    }
    const session = `denali-swap-bench-${process.pid}`;
    const out = await mkdtemp(join(tmpdir(), 'denali-swap-bench-tty-'));
    dirs.push(out);
    const cmd = `${denaliBin} swap-bench --vms 1 --dist random --duration 4 --warmup 0 --concurrency 1; echo EXIT=$?; sleep 30`;
    await execa('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '40', '-c', root, cmd]);
    const pane = async (): Promise<string> => (await execa('tmux', ['capture-pane', '-p', '-t', session], { reject: false })).stdout;
    try {
      let sawBar = false;
      let text = '';
      const deadline = Date.now() + 100_000;
      while (Date.now() < deadline) {
        text = await pane();
        if (/1 VMs random [█░]+ \d+\/4 s .*req\/s/.test(text)) sawBar = true;
        if (text.includes('EXIT=')) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(sawBar, text).toBe(true);
      expect(text).toContain('EXIT=0');
      expect(text).toMatch(/^1 +random +[\d,]+ /m);
      expect(text).not.toMatch(/[█░]/); // the bar is cleared when done
    } finally {
      await execa('tmux', ['kill-session', '-t', session], { reject: false });
    }
  }, 150_000);

  it('stops on Ctrl-C, still prints what it measured, exits 130', async () => {
    const proc = execa(denaliBin, ['swap-bench', '--vms', '1,2', '--dist', 'zipf', '--duration', '3', '--warmup', '0', '--concurrency', '1'], {
      cwd: root,
      reject: false,
      stdin: 'ignore',
      env: { DENALI_DEBUG: '' },
    });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    // Each point takes 3 s: interrupt during the first (or the second, on a fast machine).
    const deadline = Date.now() + 100_000;
    while (!err.includes('memory budget') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 2500));
    proc.kill('SIGINT');
    const r = await proc;
    expect(r.exitCode, err).toBe(130);
    expect(err).toContain('interrupted, stopping');
    expect(out).toMatch(/^2 VMs: not measured: interrupted$/m);
    expect(err).not.toMatch(/\n\s+at /);
  }, 150_000);

  it('rejects bad flags with one clear line and exit status 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--vms', '0'], /'0' is not a VM count/],
      [['--vms', '1,x'], /'x' is not a VM count/],
      [['--vms', '1000000'], /do not fit on the virtual subnet/],
      [['--dist', 'pareto'], /'pareto' is not a request distribution \(random or zipf\)/],
      [['--alpha', '-1'], /'-1' is not a valid Zipf exponent/],
      [['--concurrency', '0'], /'0' is not a valid concurrency/],
      [['--duration', '0'], /'0' is not a valid duration/],
      [['--duration', 'soon'], /'soon' is not a valid duration/],
      [['--memory-budget', 'lots'], /not a size/],
      [['--memory-budget', '0'], /not a usable memory budget/],
      [['--backend', 'xen'], /--backend/],
      [['--bogus'], /unknown option '--bogus'/],
    ];
    for (const [args, pattern] of cases) {
      const r = await denali(['swap-bench', ...args]);
      expect(r.exitCode, args.join(' ')).toBe(2);
      const first = r.stderr.split('\n')[0]!;
      expect(first, args.join(' ')).toMatch(pattern);
      expect(first).toMatch(/^error: /);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stdout).toBe('');
    }
  }, 120_000);
});

const procProbe = probeProcessBackend();

describe.skipIf(!procProbe.usable)(`swap-bench on the process backend${procProbe.usable ? '' : ` (skipped: ${procProbe.reason})`}`, () => {
  it('swaps tender-backed httpd VMs in and out under a small budget with zero errors', async () => {
    const r = await denali(
      ['swap-bench', '--backend', 'process', '--vms', '6', '--dist', 'zipf', '--duration', '1.5', '--warmup', '0.2', '--concurrency', '4', '--memory-budget', '6M', '--json'],
      { timeout: 120_000 },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as SwapBenchReport;
    expect(report.backend).toBe('process');
    const p = report.points[0]!;
    expect(p.errors).toBe(0);
    expect(p.requests).toBeGreaterThan(0);
    expect(p.swapInsPerSecond).toBeGreaterThan(0); // 6 VMs of ~1.9 MiB do not fit in 6 MiB
    expect(p.residentVms + p.swappedVms).toBe(6);
  }, 120_000);
});

describe('swap-bench swap-in capacity', () => {
  it('after the points, swaps the swapped-out VMs in back to back and reports the rate', async () => {
    const r = await denali(
      ['swap-bench', '--vms', '6', '--dist', 'zipf', '--duration', '1', '--warmup', '0.2', '--concurrency', '4', '--max-resident', '2', '--memory-budget', '64M', '--json'],
      { timeout: 120_000 },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as SwapBenchReport;
    expect(report.points[0]!.errors).toBe(0);
    const c = report.swapInCapacity!;
    // At most 2 of 6 resident: 4 are out after the point, and each swap-in makes room by one swap-out.
    expect(c.swapIns).toBeGreaterThanOrEqual(3);
    expect(c.swapIns).toBeLessThanOrEqual(4);
    expect(c.swapOuts).toBe(c.swapIns);
    expect(c.perSecond).toBeCloseTo(c.swapIns / c.seconds, 6);
    expect(c.latencyUs.p50).toBeGreaterThan(0);
    expect(c.latencyUs.p99).toBeGreaterThanOrEqual(c.latencyUs.p50);
    expect(report.targets.find((t) => t.what === '≥ 1,000 swap-ins/s')!.value).toMatch(/back to back \(\d VMs, p50 .*\); peak under load/);
  }, 120_000);
});

describe('swap-bench default memory budget', () => {
  it("is the paper's 1 GB host, or what the VMs share plus room for a quarter of the largest count when that is less", () => {
    expect(defaultMemoryBudget(10_000, 3 << 20)).toEqual({ bytes: 1 << 30, why: "the HotOS paper's 1 GB host" });
    const small = defaultMemoryBudget(1000, 400 << 10);
    expect(small.bytes).toBe(100 * 1024 * 1000);
    expect(small.why).toMatch(/^room for a quarter of the 1,000 VMs besides what they share, so they cannot all stay resident/);
    expect(defaultMemoryBudget(1, 0).bytes).toBe(1 << 20);
    // What the VMs share is needed in full, once: without it not even a quarter would fit.
    expect(defaultMemoryBudget(1000, 400 << 10, 15 << 20).bytes).toBe((15 << 20) + 100 * 1024 * 1000);
  });
});

describe('swap-bench resident cost per VM', () => {
  it('charges what one VM decoded for all (the largest account) once, not to every VM', () => {
    // Four emulator VMs after one request each: the first decoded the shared blocks.
    expect(splitResidentCost([4_700_000, 250_000, 240_000, 260_000])).toEqual({ perVm: 250_000, shared: 4_700_000 + 250_000 + 240_000 + 260_000 - 4 * 250_000 });
    expect(splitResidentCost([300_000])).toEqual({ perVm: 300_000, shared: 0 });
    expect(splitResidentCost([200_000, 200_000, 200_000])).toEqual({ perVm: 200_000, shared: 0 });
    expect(splitResidentCost([])).toEqual({ perVm: 0, shared: 0 });
  });
});

describe('swap-bench host guard', () => {
  it('stops a Yakima that keeps every VM resident past its budget, but not one that swaps', () => {
    expect(hostMemoryProblem(1024, 0, 0)).toMatch(/^Yakima is not keeping to the memory budget \(host RSS .+, no VM swapped out\)$/);
    expect(hostMemoryProblem(1024, 5, 0)).toBeUndefined();
  });
});

describe('swap-bench report formats', () => {
  const point = (vms: number, distribution: 'random' | 'zipf', rps: number) => ({
    vms,
    distribution,
    requests: rps * 10,
    requestsPerSecond: rps,
    latencyUs: { p50: 900, p99: 5000, max: 9000, mean: 1200 },
    errors: 0,
    errorsByKind: {},
    swapInsPerSecond: vms > 100 ? 50 : 0,
    swapOutsPerSecond: vms > 100 ? 50 : 0,
    bytesRead: 0,
    bytesWritten: 0,
    residentVms: Math.min(vms, 300),
    swappedVms: Math.max(0, vms - 300),
    residentBytes: 1 << 30,
    hostRssBytes: 1 << 30,
    swapInLatencyUs: { p50: 0, p99: 0 },
    swapFailures: 0,
    keptMappingSwapIns: 0,
    seconds: 10,
    cpuSeconds: 5,
    cpuUsPerRequest: 1200,
  });
  const report = {
    benchmark: 'denali swap-bench',
    alpha: 0.8,
    backend: 'emu',
    concurrency: 32,
    durationSeconds: 10,
    memoryBudgetBytes: 1 << 30,
    startedAt: '2026-01-01T00:00:00.000Z',
    document: { path: '/doc-2k.html', bytes: 2048 },
    points: [point(1, 'random', 900), point(1, 'zipf', 900), point(100, 'random', 800), point(100, 'zipf', 850), point(10_000, 'random', 40), point(10_000, 'zipf', 500)],
    skipped: [{ vms: 100_000, reason: 'the host has only 1 GiB of memory left' }],
    boots: [{ vms: 10_000, added: 9_900, seconds: 25, hostRssBytes: 1 << 30 }],
    totalErrors: 0,
  } as unknown as SwapBenchReport;

  it("checks issue 8's targets against the measured points", () => {
    const t = Object.fromEntries(checkTargets(report).map((c) => [c.what, c]));
    expect(t['10,000 VMs, zero errors']).toMatchObject({ met: true, value: '10,000 VMs, 0 errors' });
    expect(t['swap-in latency p50 ≤ 1 ms']!.met).toBe(true);
    expect(t['≥ 1,000 swap-ins/s']).toMatchObject({ met: false, value: 'peak under load 50/s' });
    expect(t['Zipf at 10,000 VMs ≥ 50% of 1 VM']).toMatchObject({ met: true, value: '56%' });
    expect(t['random below Zipf at 10,000 VMs']!.met).toBe(true);
    expect(t['boot 10,000 VMs ≤ 30 s']!.met).toBe(true);
    // A run of 100,000 alone boots them from scratch: reported, not judged against the 10,000 target.
    const big = {
      ...report,
      points: report.points.map((p) => ({ ...p, vms: p.vms === 10_000 ? 100_000 : p.vms })),
      boots: [{ vms: 100_000, added: 100_000, seconds: 183, hostRssBytes: 1 << 30 }],
    } as SwapBenchReport;
    expect(checkTargets(big).find((c) => c.what === 'boot 10,000 VMs ≤ 30 s')).toMatchObject({ met: null, value: '100,000 VMs booted and answering in 183.0 s' });
    expect(formatTargets(report)).toMatch(/^ {2}MISSED {2}≥ 1,000 swap-ins\/s: peak under load 50\/s$/m);
    const small = { ...report, points: report.points.filter((p) => p.vms === 1), boots: [] } as SwapBenchReport;
    expect(checkTargets(small).find((c) => c.what.startsWith('10,000 VMs'))!.met).toBe(false);
    expect(checkTargets(small).find((c) => c.what.startsWith('≥ 1,000'))!.met).toBeNull();
  });

  it('counts the back-to-back swap-in capacity toward the swap-ins/s target and prints it under the table', () => {
    const withCap = { ...report, swapInCapacity: { swapIns: 2000, swapOuts: 2000, seconds: 0.8, perSecond: 2500, latencyUs: { p50: 310, p99: 900 } } } as SwapBenchReport;
    expect(checkTargets(withCap).find((c) => c.what === '≥ 1,000 swap-ins/s')).toMatchObject({
      met: true,
      value: '2,500/s back to back (2,000 VMs, p50 310 µs); peak under load 50/s',
    });
    expect(formatTable(withCap)).toMatch(/^swap-in capacity: 2,000 swapped-out VMs swapped in back to back in 0\.80 s: 2,500\/s, p50 310 µs, p99 900 µs \(2,000 swap-outs made room\)$/m);
    const slow = { ...withCap, swapInCapacity: { ...withCap.swapInCapacity!, perSecond: 600 } } as SwapBenchReport;
    expect(checkTargets(slow).find((c) => c.what === '≥ 1,000 swap-ins/s')!.met).toBe(false);
  });

  it('draws both distributions against log N in the terminal, N labels under their columns', () => {
    const chart = formatTerminalChart(report, 40).split('\n');
    expect(chart[0]).toBe('aggregate requests/s vs number of VMs (log scale)');
    const axis = chart[chart.length - 2]!;
    // log scale: 100 sits halfway between 1 and 10,000
    const c1 = axis.indexOf('1');
    const c100 = axis.indexOf('100') + 1;
    const c10k = axis.indexOf('10,000') + 3;
    expect(Math.abs(c100 - c1 - (c10k - c1) / 2)).toBeLessThanOrEqual(2);
    expect(chart[chart.length - 1]).toMatch(/random .* Zipf \(α = 0\.8\)/);
    expect(chart[1]).toMatch(/^ *900 ┼/);
  });

  it('lists skipped counts with the reason under the table', () => {
    expect(formatTable(report)).toMatch(/^100,000 VMs: not measured: the host has only 1 GiB/m);
    expect(formatTable(report)).toMatch(/^10,000 +random +40 /m);
  });

  it('writes CSV rows in point order and an SVG with one line per distribution', () => {
    expect(toCsv(report).split('\r\n')[5]).toMatch(/^10000,random,400,40\.0,900,5000,50\.00,50\.00,/);
    const svg = toSvg(report);
    expect(checkXml(svg)).toEqual(['svg']);
    expect(svg.match(/<circle /g)).toHaveLength(6);
    expect(svg).toContain('Zipf, α = 0.8');
  });
});
