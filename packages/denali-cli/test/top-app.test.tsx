import { render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import type { InstanceInfo, VmCounters } from '../src/control/client.js';
import { TopApp, type TopSource } from '../src/top/TopApp.js';
import { arrange, computeRows, SUMMARY_FIELDS, type Sample, type VmSummary } from '../src/top/model.js';

/** Component tests of `denali top` against a scripted instance (ink-testing-library). */

function vm(id: number, over: Partial<VmCounters> = {}): VmCounters {
  return {
    id,
    name: `svc-${String(id).padStart(5, '0')}`,
    image: 'svc',
    state: 'idle',
    memoryBytes: 4 << 20,
    residentBytes: 4 << 20,
    cpuTimeUs: id * 1000,
    cpuShare: 0.01,
    instructionsRetired: id * 1_000_000,
    exits: id * 10,
    hypercalls: id * 10,
    entries: id,
    preemptions: 0,
    idles: id,
    upcalls: 0,
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    txChecksumsFilled: 0,
    rxChecksumsValid: 0,
    drops: { txFifoFull: 0, txBadLength: 0, txBadFlags: 0, txSpoofed: 0, rxFifoFull: 0 },
    swapIns: 0,
    swapOuts: 0,
    consoleBytes: 0,
    uptimeSeconds: 100,
    exitStatus: null,
    fault: null,
    ...over,
  };
}

function instance(vms: VmCounters[], t: number): InstanceInfo {
  const byState = { runnable: 0, idle: 0, paused: 0, swapped: 0, exited: 0, faulted: 0, stopped: 0 };
  for (const v of vms) byState[v.state]++;
  return {
    name: 'host1',
    pid: 4242,
    version: '0.1.0',
    backend: 'emu',
    socket: '/tmp/x.sock',
    startedAt: new Date().toISOString(),
    uptimeSeconds: 100 + t,
    network: true,
    host: { cpus: 2, loadAverage: [0, 0, 0], totalMemoryBytes: 8 << 30, freeMemoryBytes: 4 << 30, cpuBusyMs: 1000 * t, cpuTotalMs: 2000 * t, processCpuUs: 100_000 * t, processRssBytes: 1 << 27 },
    totals: {
      vms: vms.length,
      byState,
      residentBytes: vms.reduce((a, v) => a + v.residentBytes, 0),
      memoryBudgetBytes: null,
      swapIns: 0,
      swapOuts: 0,
      cpuTimeUs: 0,
      instructionsRetired: 0,
      exits: 0,
      rxFrames: 10 * t,
      txFrames: 10 * t,
      rxBytes: 0,
      txBytes: 0,
      drops: 0,
    },
  };
}

/** A scripted instance of `n` VMs whose counters grow each poll; records actions. */
class FakeSource implements TopSource {
  readonly name = 'host1';
  polls = 0;
  actions: string[] = [];
  down = false;
  vms: VmCounters[];
  constructor(n: number) {
    this.vms = Array.from({ length: n }, (_, i) => vm(i + 1, { state: i === 2 ? 'runnable' : 'idle' }));
  }
  async sample(): Promise<Sample> {
    if (this.down) throw new Error('connect ECONNREFUSED');
    const t = ++this.polls;
    const vms = this.vms.map((v) => ({ ...v, cpuTimeUs: v.cpuTimeUs * t, instructionsRetired: v.instructionsRetired * t, rxBytes: v.id * 100 * t }));
    // As `denali top` polls: only the table's fields.
    const rows = vms.map((v) => Object.fromEntries(['id', 'name', ...SUMMARY_FIELDS].map((k) => [k, v[k as keyof VmCounters]])) as VmSummary);
    return { instance: instance(vms, t), vms: rows, at: t * 1000 };
  }
  async action(name: string, action: 'stop' | 'pause' | 'resume' | 'swap-out' | 'swap-in'): Promise<VmCounters> {
    this.actions.push(`${action} ${name}`);
    if (action.startsWith('swap')) throw new Error('swapping is not supported by this Yakima');
    const v = this.vms.find((x) => x.name === name)!;
    v.state = action === 'stop' ? 'stopped' : action === 'pause' ? 'paused' : 'runnable';
    return v;
  }
  async vm(name: string): Promise<VmCounters> {
    const v = this.vms.find((x) => x.name === name);
    if (!v) throw new Error(`no VM named '${name}'`);
    return { ...v, hypercalls: 4242 };
  }
  async consoleTail(name: string): Promise<string> {
    return `hello from ${name}\nline two\n`;
  }
}

const tick = (ms = 60) => new Promise((r) => setTimeout(r, ms));
let app: ReturnType<typeof render> | undefined;
afterEach(() => app?.unmount());

async function start(source: FakeSource, size = { columns: 80, rows: 24 }) {
  app = render(<TopApp source={source} intervalMs={50} color={false} size={size} />);
  for (let i = 0; i < 40 && source.polls < 2; i++) await tick(25);
  await tick();
  return app;
}

function lines(a = app!): string[] {
  return (a.lastFrame() ?? '').split('\n');
}

describe('denali top (component)', () => {
  it('fits 80×24: header, column titles, one line per visible VM', async () => {
    const a = await start(new FakeSource(5));
    const l = lines(a);
    expect(l.length).toBeLessThanOrEqual(23);
    for (const line of l) expect(line.length).toBeLessThanOrEqual(80);
    expect(l[0]).toMatch(/denali top · host1 \(emu, pid 4242\)/);
    expect(a.lastFrame()).toMatch(/VMs 5: 1 runnable, 4 idle/);
    expect(a.lastFrame()).toMatch(/NAME +STATE +CPU%↓ +INSTR\/s +MEM +RX\/s +TX\/s +DROPS +SWPIN +UPTIME/);
    expect(l.filter((x) => /^ ?svc-\d{5}/.test(x))).toHaveLength(5);
  });

  it('renders only the rows that fit with 10,000 VMs', async () => {
    const a = await start(new FakeSource(10_000));
    const rows = lines(a).filter((x) => /svc-\d{5}/.test(x));
    expect(rows.length).toBe(24 - 7);
    expect(a.lastFrame()).toMatch(/10000\/10000 VMs/);
    // Sorted by CPU% (biggest first): the VM with the most CPU time leads.
    expect(rows[0]).toMatch(/svc-10000/);
  });

  it('sorts by a column (number keys, < >) and reverses (r)', async () => {
    const a = await start(new FakeSource(30));
    a.stdin.write('1');
    await tick();
    expect(lines(a).find((x) => /svc-/.test(x))).toMatch(/svc-00001/);
    expect(a.lastFrame()).toMatch(/sorted by NAME/);
    a.stdin.write('r');
    await tick();
    expect(lines(a).find((x) => /svc-/.test(x))).toMatch(/svc-00030/);
    expect(a.lastFrame()).toMatch(/reversed/);
    a.stdin.write('>');
    await tick();
    expect(a.lastFrame()).toMatch(/sorted by STATE/);
  });

  it('filters by name or state with /', async () => {
    const a = await start(new FakeSource(30));
    a.stdin.write('/');
    await tick();
    a.stdin.write('svc-0001');
    await tick();
    expect(a.lastFrame()).toMatch(/\/svc-0001/);
    a.stdin.write('\r');
    await tick();
    expect(a.lastFrame()).toMatch(/10\/30 VMs matching 'svc-0001'/);
    a.stdin.write('/');
    await tick();
    a.stdin.write('\x7f'.repeat(9) + 'runnable\r');
    await tick();
    expect(lines(a).filter((x) => /svc-/.test(x))).toHaveLength(1);
    expect(a.lastFrame()).toMatch(/svc-00003 +runnable/);
  });

  it('Enter drills into a VM (counters and console tail); Esc goes back', async () => {
    const a = await start(new FakeSource(3));
    a.stdin.write('1');
    await tick();
    a.stdin.write('\r');
    await tick(150);
    expect(a.lastFrame()).toMatch(/VM svc-00001 \(id 1\)/);
    expect(a.lastFrame()).toMatch(/instr\/s/);
    expect(a.lastFrame()).toMatch(/hypercalls 4\.2k/);
    expect(a.lastFrame()).toMatch(/hello from svc-00001/);
    a.stdin.write('\x1b');
    await tick(100);
    expect(a.lastFrame()).toMatch(/NAME.? +STATE/);
  });

  it('stop asks first; pause/resume and swap act on the selected VM and report the answer', async () => {
    const src = new FakeSource(3);
    const a = await start(src);
    a.stdin.write('1');
    await tick();
    a.stdin.write('j');
    await tick();
    a.stdin.write('s');
    await tick();
    expect(a.lastFrame()).toMatch(/stop svc-00002\? \(y\/N\)/);
    a.stdin.write('n');
    await tick();
    expect(src.actions).toEqual([]);
    a.stdin.write('s');
    await tick();
    a.stdin.write('y');
    await tick(150);
    expect(src.actions).toEqual(['stop svc-00002']);
    expect(a.lastFrame()).toMatch(/svc-00002: stop done \(now stopped\)/);
    a.stdin.write('p');
    await tick(150);
    expect(src.actions.at(-1)).toBe('pause svc-00002');
    a.stdin.write('o');
    await tick(150);
    expect(a.lastFrame()).toMatch(/swapping is not supported/);
  });

  it('? shows the keys; q quits', async () => {
    const a = await start(new FakeSource(3));
    a.stdin.write('?');
    await tick();
    expect(a.lastFrame()).toMatch(/filter by name or state/);
    a.stdin.write('x');
    await tick();
    expect(a.lastFrame()).toMatch(/NAME.? +STATE/);
  });

  it('says clearly when the instance stops answering', async () => {
    const src = new FakeSource(3);
    const a = await start(src);
    src.down = true;
    await tick(200);
    expect(a.lastFrame()).toMatch(/instance host1 is not answering: connect ECONNREFUSED/);
  });
});

describe('top model', () => {
  it('rates are deltas over the interval; sorting is stable by id', () => {
    const v1 = vm(1, { cpuTimeUs: 0, instructionsRetired: 0 });
    const v2 = vm(2, { cpuTimeUs: 0, instructionsRetired: 0 });
    const s1: Sample = { instance: instance([v1, v2], 1), vms: [v1, v2], at: 1000 };
    const later = [{ ...v1, cpuTimeUs: 500_000, instructionsRetired: 2e6 }, { ...v2 }];
    const s2: Sample = { instance: instance(later, 3), vms: later, at: 3000 };
    const rows = computeRows(s1, s2);
    expect(rows[0]!.cpuPct).toBeCloseTo(25);
    expect(rows[0]!.workPerSec).toBeCloseTo(1e6);
    expect(rows[1]!.cpuPct).toBe(0);
    expect(arrange(rows, 'cpu', false, '').map((r) => r.vm.id)).toEqual([1, 2]);
    expect(arrange(rows, 'cpu', true, '').map((r) => r.vm.id)).toEqual([2, 1]);
    expect(arrange(rows, 'name', false, 'svc-00002').map((r) => r.vm.id)).toEqual([2]);
  });
});
