import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { FRAME_CSUM } from '../../src/net/checksum-offload.js';
import { VirtualNetwork } from '../../src/net/network.js';
import { FrameRing, MAX_RING_FRAME, consumeOnBell } from '../../src/net/uplink/frame-ring.js';
import { RelayPort } from '../../src/net/uplink/relay-port.js';
import { newRelayRings } from '../../src/net/uplink/relay-protocol.js';
import { waitFor } from './helpers.js';

function frame(len: number, seed: number): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (seed * 31 + i * 7) & 0xff;
  return f;
}

function ringPair(capacity = 4096): { producer: FrameRing; consumer: FrameRing } {
  const sab = new SharedArrayBuffer(FrameRing.bytesFor(capacity));
  return { producer: new FrameRing(sab, 0, capacity), consumer: new FrameRing(sab, 0, capacity) };
}

describe('FrameRing (shared-memory SPSC frame ring)', () => {
  it('keeps frames, their order and flags across many wrap-arounds', () => {
    const { producer, consumer } = ringPair(8192);
    const got: Array<[Uint8Array, number]> = [];
    let sent = 0;
    // Odd sizes make records straddle the end of the data area, so wrap markers are exercised.
    for (let round = 0; round < 500; round++) {
      for (let k = 0; k < 3; k++) {
        const len = 60 + ((round * 3 + k) * 97) % (MAX_RING_FRAME - 60);
        expect(producer.push(frame(len, sent), sent % 3)).toBe(true);
        sent++;
      }
      consumer.drain((f, flags) => got.push([f, flags]));
    }
    expect(got.length).toBe(sent);
    got.forEach(([f, flags], i) => {
      const len = 60 + ((Math.floor(i / 3) * 3 + (i % 3)) * 97) % (MAX_RING_FRAME - 60);
      expect(f).toEqual(frame(len, i));
      expect(flags).toBe(i % 3 & (FRAME_CSUM.VALID | FRAME_CSUM.PARTIAL));
    });
    expect(consumer.usedBytes).toBe(0);
    expect(consumer.stats).toEqual({ frames: sent, drops: 0 });
  });

  it('a full ring drops and counts instead of growing; space comes back once drained', () => {
    const { producer, consumer } = ringPair(4096);
    let accepted = 0;
    for (let i = 0; i < 10; i++) if (producer.push(frame(1000, i))) accepted++;
    // 1008-byte records: four fit in 4096 bytes, the other six are dropped.
    expect(accepted).toBe(4);
    expect(producer.stats.drops).toBe(6);
    expect(producer.usedBytes).toBeLessThanOrEqual(4096);
    const out: Uint8Array[] = [];
    expect(consumer.drain((f) => out.push(f), 2)).toBe(2);
    expect(out[0]).toEqual(frame(1000, 0));
    // Two records freed at the start; the next one must wrap past the tail record to offset 0.
    expect(producer.push(frame(1000, 100))).toBe(true);
    expect(producer.push(frame(1000, 101))).toBe(true);
    expect(producer.push(frame(1000, 102))).toBe(false);
    consumer.drain((f) => out.push(f));
    expect(out.map((f) => f[0])).toEqual([0, 1, 2, 3, 100, 101].map((s) => frame(1000, s)[0]));
    expect(producer.stats).toEqual({ frames: 6, drops: 7 });
  });

  it('refuses empty and oversized frames (counted) and bad geometry (RangeError)', () => {
    const { producer } = ringPair();
    expect(producer.push(new Uint8Array(0))).toBe(false);
    expect(producer.push(new Uint8Array(MAX_RING_FRAME + 1))).toBe(false);
    expect(producer.stats.drops).toBe(2);
    expect(() => new FrameRing(new SharedArrayBuffer(8192), 0, 3000)).toThrow(/power of two/);
    expect(() => new FrameRing(new SharedArrayBuffer(4096), 0, 4096)).toThrow(/does not fit/);
  });

  it('rings only a sleeping consumer, once per sleep', () => {
    const { producer, consumer } = ringPair();
    const bell = consumer.bell;
    consumer.awake();
    producer.push(frame(64, 1));
    producer.wakeConsumer();
    expect(consumer.bell).toBe(bell); // a polling consumer costs the producer no notify
    consumer.sleep();
    producer.wakeConsumer();
    producer.wakeConsumer();
    expect(consumer.bell).toBe(bell + 1);
  });

  it('wakes a sleeping consumer on another thread; every frame arrives in order', async () => {
    const capacity = 1 << 16;
    const sab = new SharedArrayBuffer(FrameRing.bytesFor(capacity) + 8);
    const consumer = new FrameRing(sab, 0, capacity);
    const got: number[] = [];
    let batches = 0;
    const stop = consumeOnBell(consumer, (f) => got.push(f[0]!), () => batches++);
    const ctl = new Int32Array(sab, FrameRing.bytesFor(capacity), 2);
    // The producer thread pushes 200 frames of 100 bytes, ringing after each.
    const w = new Worker(
      `const { workerData: d } = require('node:worker_threads');
       const { FrameRing } = require(d.mod);
       const ring = new FrameRing(d.sab, 0, d.capacity);
       for (let i = 0; i < 200; i++) { const f = new Uint8Array(100); f[0] = i; ring.push(f); ring.wakeConsumer(); }
       Atomics.store(d.ctl, 0, 1);`,
      { eval: true, workerData: { sab, capacity, ctl, mod: ringModuleForWorker() } },
    );
    await new Promise((r) => w.on('exit', r));
    await waitFor(() => got.length === 200, 5000);
    stop();
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThanOrEqual(200);
  });
});

/** A CommonJS build of frame-ring.ts the eval'd test worker can require (built with esbuild). */
function ringModuleForWorker(): string {
  return builtRing;
}
const builtRing = await (async () => {
  const { build } = await import('esbuild');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const out = join(mkdtempSync(join(tmpdir(), 'frame-ring-')), 'frame-ring.cjs');
  await build({ entryPoints: [new URL('../../src/net/uplink/frame-ring.ts', import.meta.url).pathname], bundle: true, platform: 'node', format: 'cjs', outfile: out, logLevel: 'error' });
  return out;
})();

describe('RelayPort (the main thread half of the user-mode uplink)', () => {
  it('frames from the worker side enter the switch on poll while polled, and by themselves while not', async () => {
    const net = new VirtualNetwork();
    const rings = newRelayRings(1 << 16);
    const entered: Uint8Array[] = [];
    const port = new RelayPort('relay', new Uint8Array([2, 0xde, 0x4e, 0xff, 0xff, 0xfe]), rings, (_p, f) => entered.push(f));
    const workerSide = new FrameRing(rings.sab, rings.toMain.offset, rings.toMain.capacity);
    const fromSwitch = new FrameRing(rings.sab, rings.toWorker.offset, rings.toWorker.capacity);
    net.addPolledPort(port);
    try {
      // Polled (Yakima's run loop pumps): no wake-up; the frame waits for the next pump.
      net.setPolled(true);
      workerSide.push(frame(64, 1));
      workerSide.wakeConsumer();
      await new Promise((r) => setTimeout(r, 20));
      expect(entered.length).toBe(0);
      expect(net.pump()).toBe(1);
      expect(entered.length).toBe(1);
      // Not polled (all VMs idle): the producer's ring brings the frame in.
      net.setPolled(false);
      workerSide.push(frame(64, 2));
      workerSide.wakeConsumer();
      await waitFor(() => entered.length === 2, 2000);
      expect(entered[1]).toEqual(frame(64, 2));
      // Frames the switch delivers to the port go to the worker's ring, flags kept.
      port.deliver(frame(70, 3), FRAME_CSUM.PARTIAL);
      const toWorker: Array<[Uint8Array, number]> = [];
      fromSwitch.drain((f, fl) => toWorker.push([f, fl]));
      expect(toWorker).toEqual([[frame(70, 3), FRAME_CSUM.PARTIAL]]);
    } finally {
      net.removePolledPort(port);
      port.stop();
    }
  });
});
