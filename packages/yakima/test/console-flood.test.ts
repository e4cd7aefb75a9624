import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Yakima } from '../src/control/yakima.js';
import { CONSOLE_OUTPUT_LIMIT } from '../src/devices/console.js';
import { CONSOLE_LINE_MAX, MEMORY_SINK_LIMIT, MemoryConsoleSink, StreamConsoleSink } from '../src/devices/console-sink.js';
import { admitVm, CapacityError, HeapAdmission, heapEmergency, VM_HEAP_ESTIMATE } from '../src/sched/heap-admission.js';
import { FLOOD_ARGS as ARGS, FLOOD_WRITE_LEN, floodImage, rawImage } from './images.js';

const BUF_LEN = FLOOD_WRITE_LEN;

/** A guest that spins forever (`jmp $`), to show other VMs keep being scheduled. */
const spinImage = () => rawImage('spin', [0xeb, 0xfe]);

const lines = (i: number): number => (i % 64 === 63 ? 0x0a : 0x41 + (i % 26));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('console backpressure (a guest flooding its console)', () => {
  it('a sink that does not drain slows the guest, never grows host memory; draining resumes it', async () => {
    const out = new PassThrough({ highWaterMark: 16 * 1024 }); // nobody reads: like a stuck pipe
    const sink = new StreamConsoleSink(out, true);
    const y = new Yakima({ sink });
    const flood = y.addVm(floodImage('flood', lines));
    const spin = y.addVm(spinImage());
    const run = y.run();
    await sleep(300);
    const held = out.writableLength + out.readableLength + flood.console.pendingOutput;
    // Bounded: the PassThrough's two 16 KiB high-water marks + one chunk of the per-VM buffer
    // (+ line prefixes) + the VM's own buffer, whatever the guest asks to write.
    expect(held).toBeLessThanOrEqual(2 * 16 * 1024 + 2 * CONSOLE_OUTPUT_LIMIT + 1024);
    expect(flood.state).toBe('idle'); // waiting for room, like IDLE
    expect(flood.stats.consoleWaits).toBeGreaterThan(0);
    const spinEntries = spin.stats.entries;
    await sleep(100);
    expect(spin.stats.entries).toBeGreaterThan(spinEntries); // the neighbour keeps running
    const before = flood.stats.consoleBytes;
    let got = 0;
    out.on('data', (d: Buffer) => (got += d.length)); // the reader starts reading
    await sleep(200);
    expect(flood.stats.consoleBytes).toBeGreaterThan(before + BUF_LEN); // woken when it drained
    expect(got).toBeGreaterThan(BUF_LEN);
    const t0 = performance.now();
    y.stop();
    await run;
    expect(performance.now() - t0).toBeLessThan(100); // a stop is seen within a quantum's few ms
    await y.close();
  });

  it('charges console bytes to the quantum and caps each quantum in wall-clock time', async () => {
    let bytes = 0;
    const sink = { write: (_n: string, b: Uint8Array) => void (bytes += b.length), close: () => {} }; // never full: the flood runs flat out
    const y = new Yakima({ sink, quantumInstructions: 50_000_000 });
    const flood = y.addVm(floodImage('flood', lines));
    const spin = y.addVm(spinImage());
    const run = y.run();
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }, 1);
    await sleep(1000);
    clearInterval(timer);
    y.stop();
    await run;
    await y.close();
    // Even with a 50M-instruction quantum, the event loop gets in every few ms (the median
    // turn; single turns on this shared machine also wait for the OS scheduler and the GC).
    gaps.sort((a, b) => a - b);
    expect(gaps.length).toBeGreaterThan(40);
    expect(gaps[Math.floor(gaps.length / 2)]!).toBeLessThan(15);
    // 50M instruction-equivalents would take seconds; the wall-clock cap (100 ms) ends each quantum.
    expect(flood.stats.preemptions).toBeGreaterThanOrEqual(3);
    expect(spin.stats.entries).toBeGreaterThanOrEqual(3);
    expect(bytes).toBe(flood.stats.consoleBytes);
  });

  it('a partial write completes partially: the guest sees DONE < LEN and continues', async () => {
    const sink = new MemoryConsoleSink();
    const y = new Yakima({ sink });
    const vm = y.addVm(floodImage('flood', lines));
    const run = y.run();
    await sleep(50);
    // Read DONE while the VM lives: a finished VM's guest memory goes back to the host.
    const done = vm.memory.readU32(ARGS + 8);
    y.stop();
    await run;
    await y.close();
    const text = sink.text('flood');
    expect(text.length).toBeGreaterThan(BUF_LEN);
    expect(text.length).toBeLessThanOrEqual(MEMORY_SINK_LIMIT); // the in-memory sink is bounded too
    expect(vm.stats.consoleBytes).toBe(text.length + (sink.truncated.get('flood') ?? 0));
    // This guest ignores DONE and always writes from the start of its buffer: so each write
    // took CONSOLE_OUTPUT_LIMIT bytes (the room of an empty buffer) and said so in DONE.
    expect(done).toBe(CONSOLE_OUTPUT_LIMIT);
    for (let i = 0; i < text.length; i += 997) expect(text.charCodeAt(i)).toBe(lines(i % CONSOLE_OUTPUT_LIMIT));
  });
});

describe('StreamConsoleSink', () => {
  function collect(): { out: Writable; text: () => string } {
    const chunks: Buffer[] = [];
    const out = new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        cb();
      },
    });
    return { out, text: () => Buffer.concat(chunks).toString('latin1') };
  }

  it('flushes an unfinished line at CONSOLE_LINE_MAX bytes and at close, with its prefix', () => {
    const { out, text } = collect();
    const sink = new StreamConsoleSink(out, true);
    const big = Buffer.alloc(CONSOLE_LINE_MAX * 2 + 100, 'x');
    for (let i = 0; i < big.length; i += 1000) sink.write('a', big.subarray(i, i + 1000));
    sink.write('b', Buffer.from('one\ntw'));
    sink.close('a');
    sink.close('b');
    const got = text().split('\n').filter((l) => l !== '');
    expect(got).toEqual([
      `a | ${'x'.repeat(CONSOLE_LINE_MAX)}`,
      `a | ${'x'.repeat(CONSOLE_LINE_MAX)}`,
      'b | one',
      `a | ${'x'.repeat(100)}`,
      'b | tw',
    ]);
  });

  it('no-newline output of two VMs: at most CONSOLE_LINE_MAX bytes held per VM, so work and memory stay linear', () => {
    let out = 0;
    const sink = new StreamConsoleSink(new Writable({ write: (c: Buffer, _e, cb) => ((out += c.length), cb()) }), true);
    const chunk = Buffer.alloc(CONSOLE_OUTPUT_LIMIT, 'y');
    const perLine = 'a | \n'.length;
    let written = 0;
    for (let i = 0; i < (32 << 20) / chunk.length; i++) {
      sink.write('a', chunk);
      sink.write('b', chunk);
      written += 2 * chunk.length;
      // Everything but the held-back tails (each < CONSOLE_LINE_MAX) is already out, prefixed.
      const lineCount = Math.floor(written / 2 / CONSOLE_LINE_MAX) * 2;
      expect(out).toBe(written - 2 * ((written / 2) % CONSOLE_LINE_MAX) + lineCount * perLine);
    }
  });

  it('EPIPE: drops and counts from then on, says so once, keeps writers moving', async () => {
    const logs: string[] = [];
    const out = new PassThrough();
    const sink = new StreamConsoleSink(out, false, { log: (l) => logs.push(l) });
    out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(sink.closed).toBe(true);
    expect(sink.write('a', Buffer.alloc(10))).toBe(true);
    out.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
    expect(logs).toEqual(['denali: console output dropped from now on: stdout failed (EPIPE)']);
  });
});

describe('heap admission', () => {
  const MiB = 1 << 20;
  const stats = (used: number, limit: number) => ({ used_heap_size: used * MiB, heap_size_limit: limit * MiB }) as ReturnType<typeof import('node:v8').getHeapStatistics>;

  it('refuses a VM with one line when the heap is near its limit; admits otherwise', () => {
    expect(() => admitVm('web', 10, stats(100, 4096))).not.toThrow();
    expect(() => admitVm('web-5001', 5000, stats(3100, 4096))).toThrow(CapacityError);
    expect(() => admitVm('web-5001', 5000, stats(3100, 4096))).toThrow(/^not enough memory for VM web-5001: .*of its 4096 MiB limit with 5001 VMs; .*--max-old-space-size/);
    // VMs just booted count at their estimated size, even before their heap has grown.
    const a = new HeapAdmission(stats(100, 1000));
    const fits = Math.floor((750 - 100) / (VM_HEAP_ESTIMATE / MiB)) - 1;
    expect(() => a.admit('x', fits - 1, stats(100, 1000))).not.toThrow();
    expect(() => a.admit('x', fits + 1, stats(100, 1000))).toThrow(CapacityError);
    expect(heapEmergency(stats(100, 4096))).toBeUndefined();
    expect(heapEmergency(stats(4000, 4096))).toMatch(/stopping all VMs/);
  });

  it('Yakima.addVm applies it', () => {
    const y = new Yakima();
    expect(() => y.addVm(spinImage())).not.toThrow();
  });
});
