import { Box, Text, useApp, useInput, useStdout, type Key } from 'ink';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import sparkly from 'sparkly';
import type { VmCounters } from '../control/client.js';
import { formatBytes, formatCount, formatDuration } from '../control/format.js';
import { arrange, COLUMNS, computeRows, pushHistory, summarize, type Row, type Sample, type SortKey, type Summary, type VmSummary } from './model.js';

/** What `TopApp` watches: an instance behind its control socket (or a fake one in tests). */
export interface TopSource {
  readonly name: string;
  /** Poll the instance. @throws when it cannot be reached. */
  sample(): Promise<Sample>;
  /** A lifecycle action on a VM. @throws with the API's message when refused. */
  action(vm: string, action: 'stop' | 'pause' | 'resume' | 'swap-out' | 'swap-in'): Promise<VmCounters>;
  /** All counters of one VM (the detail view). */
  vm(name: string): Promise<VmCounters>;
  /** The last `bytes` of a VM's console. */
  consoleTail(vm: string, bytes: number): Promise<string>;
}

export interface TopProps {
  source: TopSource;
  /** Refresh period, ms. */
  intervalMs?: number;
  /** Use colors (false under NO_COLOR). */
  color?: boolean;
  /** Fixed terminal size (tests); default the terminal's, following resizes. */
  size?: { columns: number; rows: number };
}

const NO_KEY: Key = {
  upArrow: false,
  downArrow: false,
  leftArrow: false,
  rightArrow: false,
  pageDown: false,
  pageUp: false,
  home: false,
  end: false,
  return: false,
  escape: false,
  ctrl: false,
  shift: false,
  tab: false,
  backspace: false,
  delete: false,
  meta: false,
} as Key;

type Mode = 'table' | 'filter' | 'help' | 'detail' | 'confirm';

/** Lines above the table: title, CPU, VMs, memory/network, status, column header. */
const HEADER_LINES = 6;

const STATE_COLORS: Record<string, string> = {
  runnable: 'green',
  idle: 'cyan',
  paused: 'yellow',
  swapped: 'magenta',
  exited: 'gray',
  faulted: 'red',
  stopped: 'gray',
};

const HELP: [string, string][] = [
  ['↑ ↓ j k PgUp PgDn g G', 'move the selection'],
  ['< >  or 1-9, 0', 'sort by the previous/next column, or by column N (0 = 10th)'],
  ['r', 'reverse the sort'],
  ['/', 'filter by name or state (Enter applies, Esc clears)'],
  ['Enter', "drill into the selected VM: its counters and console tail"],
  ['Esc  Backspace', 'back to the table (or clear the filter)'],
  ['s', 'stop the selected VM (asks first)'],
  ['p', 'pause / resume the selected VM'],
  ['o  i', 'swap the selected VM out / in'],
  ['?', 'this help'],
  ['q  Ctrl-C', 'quit'],
];

/**
 * State that key handlers read through a ref: keys typed faster than React re-renders (a paste,
 * tmux send-keys) must see the state the previous key left, not the last render's.
 */
function useRefState<T>(initial: T): [T, (v: T | ((old: T) => T)) => void, { current: T }] {
  const [value, setValue] = useState(initial);
  const ref = useRef(initial);
  const set = useCallback((v: T | ((old: T) => T)) => {
    ref.current = typeof v === 'function' ? (v as (old: T) => T)(ref.current) : v;
    setValue(ref.current);
  }, []);
  return [value, set, ref];
}

/** Terminal size now, following resizes. */
function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = () => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return size;
}

/** Squeeze `values` into `width` buckets (averages) and draw them as a sparkline. */
function spark(values: number[], width: number, maximum?: number): string {
  if (values.length === 0 || width <= 0) return '';
  const buckets: number[] = [];
  const per = Math.max(1, values.length / width);
  for (let i = 0; i < values.length; i += per) {
    const slice = values.slice(Math.floor(i), Math.max(Math.floor(i) + 1, Math.floor(i + per)));
    buckets.push(slice.reduce((a, b) => a + b, 0) / slice.length);
  }
  return sparkly(buckets.slice(-width), { minimum: 0, maximum: maximum ?? Math.max(1e-9, ...buckets) });
}

function fit(text: string, width: number): string {
  if (text.length > width) return width <= 1 ? text.slice(0, width) : text.slice(0, width - 1) + '…';
  return text;
}

function cell(text: string, width: number, right: boolean): string {
  const t = fit(text, width);
  return right ? t.padStart(width) : t.padEnd(width);
}

/** The cells of one row, in `COLUMNS` order. */
function rowCells(r: Row): string[] {
  const v = r.vm;
  return [
    v.name,
    v.state,
    r.cpuPct.toFixed(1),
    formatCount(r.workPerSec),
    formatBytes(v.residentBytes),
    formatBytes(r.rxPerSec),
    formatBytes(r.txPerSec),
    formatCount(r.drops),
    formatCount(v.swapIns),
    formatDuration(v.uptimeSeconds),
  ];
}

/**
 * `denali top`: a live view of one Yakima instance (header with host CPU, VMs by state,
 * memory against the budget, swap-ins/s and frames/s with sparklines of the last minute; a
 * table of VMs; a detail view). Renders only the rows that fit the terminal and polls once a
 * period, so 10,000 VMs cost one request and one sort a second.
 */
export function TopApp({ source, intervalMs = 1000, color = true, size }: TopProps) {
  const { exit } = useApp();
  const terminal = useTerminalSize();
  const { columns, rows: termRows } = size ?? terminal;
  const c = (name: string | undefined) => (color ? name : undefined);

  const prevSample = useRef<Sample | undefined>(undefined);
  const [sample, setSample] = useState<Sample | undefined>(undefined);
  const [allRows, setAllRows] = useState<Row[]>([]);
  const [summary, setSummary] = useState<Summary>({ hostCpuPct: 0, yakimaCpuPct: 0, swapInsPerSec: 0, framesPerSec: 0 });
  const [hist, setHist] = useState({ cpu: [] as number[], mem: [] as number[], swap: [] as number[], frames: [] as number[] });
  const [lost, setLost] = useState<string | undefined>(undefined);

  const [sortKey, setSortKey] = useState<SortKey>('cpu');
  const [reverse, setReverse] = useState(false);
  const [filter, setFilter] = useState('');
  const [draft, setDraft, draftRef] = useRefState('');
  const [mode, setMode, modeRef] = useRefState<Mode>('table');
  const [selectedId, setSelectedId] = useState<number | undefined>(undefined);
  const [offset, setOffset] = useState(0);
  const [message, setMessage] = useState('');
  const [tail, setTail] = useState('');
  const [detail, setDetail] = useState<VmCounters | undefined>(undefined);

  const poll = useCallback(async () => {
    let s: Sample;
    try {
      s = await source.sample();
    } catch (e) {
      setLost(`instance ${source.name} is not answering: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    const p = prevSample.current;
    prevSample.current = s;
    const sum = summarize(p, s);
    setLost(undefined);
    setSample(s);
    setAllRows(computeRows(p, s));
    setSummary(sum);
    if (p) {
      setHist((h) => ({
        cpu: pushHistory(h.cpu, sum.hostCpuPct),
        mem: pushHistory(h.mem, s.instance.totals.residentBytes),
        swap: pushHistory(h.swap, sum.swapInsPerSec),
        frames: pushHistory(h.frames, sum.framesPerSec),
      }));
    }
  }, [source]);

  useEffect(() => {
    let busy = false;
    const tick = async () => {
      if (busy) return;
      busy = true;
      try {
        await poll();
      } finally {
        busy = false;
      }
    };
    void tick();
    const t = setInterval(() => void tick(), intervalMs);
    return () => clearInterval(t);
  }, [poll, intervalMs]);

  const shown = useMemo(() => arrange(allRows, sortKey, reverse, filter), [allRows, sortKey, reverse, filter]);
  const tableHeight = Math.max(1, termRows - HEADER_LINES - 1);
  let selIndex = shown.findIndex((r) => r.vm.id === selectedId);
  if (selIndex < 0) selIndex = shown.length > 0 ? 0 : -1;
  const selected = selIndex >= 0 ? shown[selIndex] : undefined;
  // Keep the selection on screen; clamp when the list shrinks.
  let top = Math.min(offset, Math.max(0, shown.length - tableHeight));
  if (selIndex >= 0 && selIndex < top) top = selIndex;
  if (selIndex >= top + tableHeight) top = selIndex - tableHeight + 1;

  useEffect(() => {
    if (mode !== 'detail' || !selected) return;
    let live = true;
    source
      .consoleTail(selected.vm.name, 4096)
      .then((t) => live && setTail(t))
      .catch(() => live && setTail(''));
    source
      .vm(selected.vm.name)
      .then((v) => live && setDetail(v))
      .catch(() => live && setDetail(undefined));
    return () => {
      live = false;
    };
  }, [mode, selected?.vm.name, sample, source]);

  const act = (action: 'stop' | 'pause' | 'resume' | 'swap-out' | 'swap-in', vm: VmSummary) => {
    setMessage(`${action} ${vm.name}…`);
    source.action(vm.name, action).then(
      (after) => {
        setMessage(`${vm.name}: ${action} done (now ${after.state})`);
        void poll();
      },
      (e: unknown) => setMessage(`${vm.name}: ${e instanceof Error ? e.message : String(e)}`),
    );
  };

  const moveTo = (i: number) => {
    const j = Math.max(0, Math.min(shown.length - 1, i));
    if (shown[j]) setSelectedId(shown[j].vm.id);
    if (j < top) setOffset(j);
    else if (j >= top + tableHeight) setOffset(j - tableHeight + 1);
    else setOffset(top);
  };

  // A fast typist, a paste or tmux send-keys can deliver several keys in one input chunk.
  useInput((input, key) => {
    if (input.length > 1 && !key.ctrl && !key.meta) {
      for (const ch of input) {
        const special = ch === '\r' || ch === '\x7f' || ch === '\b' || ch === '\x1b';
        onKey(special ? '' : ch, { ...NO_KEY, return: ch === '\r', backspace: ch === '\x7f' || ch === '\b', escape: ch === '\x1b' });
      }
    } else {
      onKey(input, key);
    }
  });
  function onKey(input: string, key: Key): void {
    if (key.ctrl && input === 'c') return exit();
    const mode = modeRef.current;
    if (mode === 'filter') {
      if (key.return) {
        setFilter(draftRef.current);
        setMode('table');
      } else if (key.escape) {
        setDraft('');
        setFilter('');
        setMode('table');
      } else if (key.backspace || key.delete) setDraft((d) => d.slice(0, -1));
      else if (input && !key.ctrl && !key.meta && input >= ' ') setDraft((d) => (d + input).slice(0, 64));
      return;
    }
    if (mode === 'confirm') {
      if (input === 'y' && selected) act('stop', selected.vm);
      else setMessage('not stopped');
      setMode(prevMode.current === 'detail' ? 'detail' : 'table');
      return;
    }
    if (input === 'q') return exit();
    if (mode === 'help') {
      setMode('table');
      return;
    }
    if (mode === 'detail' && (key.escape || key.backspace || key.delete || key.leftArrow)) {
      setMode('table');
      return;
    }
    if (input === '?') return setMode('help');
    if (selected) {
      if (input === 's') {
        prevMode.current = mode;
        setMessage('');
        return setMode('confirm');
      }
      if (input === 'p') return act(selected.vm.state === 'paused' ? 'resume' : 'pause', selected.vm);
      if (input === 'o') return act('swap-out', selected.vm);
      if (input === 'i') return act('swap-in', selected.vm);
    }
    if (mode === 'detail') return;
    if (key.upArrow || input === 'k') return moveTo(selIndex - 1);
    if (key.downArrow || input === 'j') return moveTo(selIndex + 1);
    if (key.pageUp) return moveTo(selIndex - tableHeight);
    if (key.pageDown) return moveTo(selIndex + tableHeight);
    if (key.home || input === 'g') return moveTo(0);
    if (key.end || input === 'G') return moveTo(shown.length - 1);
    if (key.return && selected) {
      setTail('');
      setDetail(undefined);
      return setMode('detail');
    }
    if (input === '/') {
      setDraft(filter);
      return setMode('filter');
    }
    if (key.escape) return setFilter('');
    if (input === 'r') return setReverse((r) => !r);
    const idx = COLUMNS.findIndex((col) => col.key === sortKey);
    if (input === '<' || input === ',') return setSortKey(COLUMNS[(idx + COLUMNS.length - 1) % COLUMNS.length]!.key);
    if (input === '>' || input === '.') return setSortKey(COLUMNS[(idx + 1) % COLUMNS.length]!.key);
    if (/^[0-9]$/.test(input)) {
      const n = input === '0' ? 9 : Number(input) - 1;
      if (COLUMNS[n]) {
        if (COLUMNS[n].key === sortKey) setReverse((r) => !r);
        else setSortKey(COLUMNS[n].key);
      }
    }
  }
  const prevMode = useRef<Mode>('table');

  const width = Math.max(40, columns);
  if (!sample) {
    return <Text>{lost ? `denali top: ${lost}` : `denali top: connecting to ${source.name}…`}</Text>;
  }
  const inst = sample.instance;
  const t = inst.totals;
  const kvm = inst.backend === 'kvm';
  const b = t.byState;
  const budget = t.memoryBudgetBytes;
  const sparkW = Math.max(5, Math.min(30, width - 52));
  const title = `denali top · ${inst.name} (${inst.backend}, pid ${inst.pid}) · up ${formatDuration(inst.uptimeSeconds)}`;
  const keysHint = '? help  q quit';
  const fixed = COLUMNS.reduce((a, col) => a + col.width + 1, 0);
  const nameW = Math.max(6, width - fixed);
  const widths = COLUMNS.map((col) => (col.key === 'name' ? nameW : col.width));
  const header = COLUMNS.map((col, i) => {
    const mark = col.key === sortKey ? (reverse ? '↑' : '↓') : '';
    const title2 = col.key === 'work' && kvm ? 'EXITS/s' : col.title;
    return cell(title2 + mark, widths[i]!, i > 1);
  }).join(' ');

  const status =
    mode === 'filter'
      ? `/${draft}▏  (Enter applies, Esc clears)`
      : mode === 'confirm' && selected
        ? `stop ${selected.vm.name}? (y/N)`
        : message || `${shown.length}/${allRows.length} VMs${filter ? ` matching '${filter}'` : ''} · sorted by ${COLUMNS.find((x) => x.key === sortKey)!.title}${reverse ? ' (reversed)' : ''}`;

  const headerBlock = (
    <>
      <Box width={width} justifyContent="space-between">
        <Text bold>{fit(title, width - keysHint.length - 1)}</Text>
        <Text dimColor>{keysHint}</Text>
      </Box>
      <Text>
        {fit(`CPU host ${summary.hostCpuPct.toFixed(1).padStart(5)}% of ${inst.host.cpus} · yakima ${summary.yakimaCpuPct.toFixed(1).padStart(5)}% `, width - sparkW)}
        <Text color={c('green')}>{spark(hist.cpu, sparkW, 100)}</Text>
      </Text>
      <Text>
        {fit(
          `VMs ${t.vms}: ${b.runnable} runnable, ${b.idle} idle, ${b.paused} paused, ${b.swapped} swapped, ${b.exited} exited, ${b.faulted} faulted, ${b.stopped} stopped`,
          width,
        )}
      </Text>
      <Text>
        {`MEM ${formatBytes(t.residentBytes)} of ${budget !== null ? `${formatBytes(budget)} budget` : `${formatBytes(inst.host.totalMemoryBytes)} host`} `}
        <Text color={c('blue')}>{spark(hist.mem, Math.min(10, sparkW), budget ?? undefined)}</Text>
        {` swap-ins/s ${formatCount(summary.swapInsPerSec)} `}
        <Text color={c('magenta')}>{spark(hist.swap, Math.min(8, sparkW))}</Text>
        {` frames/s ${formatCount(summary.framesPerSec)} `}
        <Text color={c('cyan')}>{spark(hist.frames, Math.min(8, sparkW))}</Text>
      </Text>
      <Text color={c(lost ? 'red' : mode === 'confirm' ? 'yellow' : undefined)} bold={lost !== undefined || mode === 'confirm'}>
        {fit(lost ?? status, width)}
      </Text>
    </>
  );

  if (mode === 'help') {
    return (
      <Box flexDirection="column" width={width}>
        {headerBlock}
        <Text inverse>{cell('Keys (any key returns)', width, false)}</Text>
        {HELP.map(([k, d]) => (
          <Text key={k}>
            <Text bold>{k.padEnd(24)}</Text>
            {fit(d, width - 24)}
          </Text>
        ))}
      </Box>
    );
  }

  if (mode === 'detail' && selected) {
    const v = detail && detail.id === selected.vm.id ? { ...detail, ...selected.vm } : undefined;
    if (!v) {
      return (
        <Box flexDirection="column" width={width}>
          {headerBlock}
          <Text inverse>{cell(`VM ${selected.vm.name} (id ${selected.vm.id}) · Esc back`, width, false)}</Text>
          <Text dimColor>loading…</Text>
        </Box>
      );
    }
    const pairs: [string, string][] = [
      ['state', v.state + (v.exitStatus !== null ? ` (status ${v.exitStatus})` : '') + (v.fault ? ` (${v.fault.cause}: ${v.fault.detail})` : '')],
      ['image', v.image],
      ['CPU', `${selected.cpuPct.toFixed(1)}% now, ${(v.cpuShare * 100).toFixed(1)}% over life, ${(v.cpuTimeUs / 1e6).toFixed(2)} s`],
      [kvm ? 'exits/s' : 'instr/s', `${formatCount(selected.workPerSec)} (${formatCount(kvm ? v.exits : v.instructionsRetired)} in all)`],
      ['exits', `${formatCount(v.exits)} (hypercalls ${formatCount(v.hypercalls)}, idles ${formatCount(v.idles)}, preemptions ${formatCount(v.preemptions)})`],
      ['memory', `${formatBytes(v.residentBytes)} resident of ${formatBytes(v.memoryBytes)}`],
      ['network', `rx ${formatCount(v.rxFrames)} frames ${formatBytes(v.rxBytes)}, tx ${formatCount(v.txFrames)} frames ${formatBytes(v.txBytes)}`],
      ['drops', `tx fifo ${v.drops.txFifoFull}, bad length ${v.drops.txBadLength}, bad flags ${v.drops.txBadFlags}, spoofed ${v.drops.txSpoofed}, rx fifo ${v.drops.rxFifoFull}`],
      ['checksum offload', `tx filled ${v.txChecksumsFilled}, rx valid ${v.rxChecksumsValid}`],
      ['swap', `${v.swapIns} in, ${v.swapOuts} out`],
      ['uptime', formatDuration(v.uptimeSeconds)],
    ];
    const tailLines = tail.split('\n');
    if (tailLines[tailLines.length - 1] === '') tailLines.pop();
    const room = Math.max(1, termRows - HEADER_LINES - pairs.length - 2);
    return (
      <Box flexDirection="column" width={width}>
        {headerBlock}
        <Text inverse>{cell(`VM ${v.name} (id ${v.id}) · Esc back · s stop · p pause/resume · o/i swap`, width, false)}</Text>
        {pairs.map(([k, val]) => (
          <Text key={k}>
            <Text bold>{k.padEnd(9)}</Text>
            <Text color={k === 'state' ? c(STATE_COLORS[v.state]) : undefined}>{fit(val, width - 9)}</Text>
          </Text>
        ))}
        <Text dimColor>{cell(`── console (last ${room} lines) `, width, false).replace(/ /g, (m, i: number) => (i > 20 ? '─' : m))}</Text>
        {tailLines.slice(-room).map((l, i) => (
          <Text key={i}>{fit(l.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '?'), width)}</Text>
        ))}
      </Box>
    );
  }

  const visible = shown.slice(top, top + tableHeight);
  return (
    <Box flexDirection="column" width={width}>
      {headerBlock}
      <Text inverse bold>
        {cell(header, width, false)}
      </Text>
      {visible.length === 0 ? (
        <Text dimColor>{allRows.length === 0 ? 'no VMs yet: add one with denali run --host ' + inst.name + ' IMAGE' : `no VM matches '${filter}'`}</Text>
      ) : (
        visible.map((r) => {
          const cells = rowCells(r);
          const isSel = r.vm.id === selected?.vm.id;
          return (
            <Text key={r.vm.id} inverse={isSel}>
              {cell(cells[0]!, widths[0]!, false)}{' '}
              <Text color={c(STATE_COLORS[r.vm.state])}>{cell(cells[1]!, widths[1]!, false)}</Text>{' '}
              {cells
                .slice(2)
                .map((x, i) => cell(x, widths[i + 2]!, true))
                .join(' ')}
            </Text>
          );
        })
      )}
    </Box>
  );
}
