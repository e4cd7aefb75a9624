import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImageFile, type DenaliImage } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';
import {
  HttpLoadGenerator,
  HttpResponseReader,
  UniformPicker,
  Yakima,
  ZipfPicker,
  createPicker,
  defaultMac,
  type ConsoleSink,
} from '@denali/yakima';
import { root } from './helpers.js';

const DOC = join(root, 'examples/httpd/assets/doc-2k.html');

describe('request pickers (HotOS Figure 3 distributions)', () => {
  it('Zipf(0.8) picks target k with probability (k+1)^-0.8 / H', () => {
    const n = 100;
    const z = new ZipfPicker(n, 0.8, 7);
    const counts = new Float64Array(n);
    const draws = 400_000;
    for (let i = 0; i < draws; i++) counts[z.next()]!++;
    let h = 0;
    for (let k = 1; k <= n; k++) h += k ** -0.8;
    for (const k of [0, 1, 9, 99]) {
      const p = (k + 1) ** -0.8 / h;
      expect(z.probability(k)).toBeCloseTo(p, 12);
      // within 5 standard deviations of the binomial count
      expect(Math.abs(counts[k]! - draws * p)).toBeLessThan(5 * Math.sqrt(draws * p * (1 - p)));
    }
    // heavy head: the first 10% of targets take far more than 10% of the requests
    const head = counts.slice(0, 10).reduce((a, b) => a + b, 0) / draws;
    expect(head).toBeGreaterThan(0.4);
  });

  it('uniform picks every target about equally, including with n not a power of two', () => {
    const n = 3;
    const u = new UniformPicker(n, 3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 300_000; i++) counts[u.next()]!++;
    for (const c of counts) expect(Math.abs(c - 100_000)).toBeLessThan(1500);
  });

  it('is deterministic per seed and rejects bad parameters', () => {
    const a = createPicker('zipf', 1000, 0.8, 42);
    const b = createPicker('zipf', 1000, 0.8, 42);
    expect(Array.from({ length: 50 }, () => a.next())).toEqual(Array.from({ length: 50 }, () => b.next()));
    expect(() => createPicker('zipf', 0)).toThrow(/positive integer/);
    expect(() => createPicker('zipf', 10, -1)).toThrow(/Zipf exponent/);
    expect(() => createPicker('pareto' as 'zipf', 10)).toThrow(/unknown request distribution/);
  });
});

describe('HTTP response reader', () => {
  it('frames by Content-Length across chunks and bounds everything', () => {
    const r = new HttpResponseReader(100);
    expect(r.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Len'))).toBeUndefined();
    expect(r.push(Buffer.from('gth: 5\r\n\r\nhel'))).toBeUndefined();
    const done = r.push(Buffer.from('lo'));
    expect(done).toMatchObject({ status: 200 });
    expect(Buffer.from((done as { body: Uint8Array }).body).toString()).toBe('hello');
    expect(new HttpResponseReader(100).push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n'))).toBe('too-long');
    expect(new HttpResponseReader(100).push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toBe('malformed');
    expect(new HttpResponseReader(100).push(Buffer.from('SSH-2.0\r\n\r\n'))).toBe('malformed');
    expect(new HttpResponseReader(100).push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab'))).toBe('too-long');
    expect(new HttpResponseReader(100).push(Buffer.alloc(17 * 1024, 0x41))).toBe('malformed');
  });
});

describe('closed-loop load generator on the virtual switch, against httpd VMs', () => {
  const VMS = 4;
  let dir: string;
  let image: DenaliImage;
  let doc: Buffer;
  let yakima: Yakima;
  let running: Promise<void>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'denali-loadgen-'));
    image = await readImageFile((await buildService(join(root, 'examples/httpd'), { out: join(dir, 'httpd.dni'), quiet: true })).imagePath);
    doc = await readFile(DOC);
    let ready = 0;
    let resolveReady!: () => void;
    const allReady = new Promise<void>((r) => (resolveReady = r));
    const sink: ConsoleSink = {
      write(_name, bytes) {
        // Only the first VM runs main (the others are copy-on-write clones of it at its first IDLE).
        if (Buffer.from(bytes).includes('listening') && ++ready === 1) resolveReady();
      },
      close() {},
    };
    yakima = new Yakima({ network: true, sink });
    yakima.addVms(image, VMS, { args: ['80', '2'] });
    running = yakima.run();
    await allReady;
  }, 120_000);

  afterAll(async () => {
    yakima?.stop();
    await running;
    await yakima?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const targets = (): Array<{ ip: number; mac: Uint8Array }> => yakima.vms.map((vm) => ({ ip: yakima.net!.addressOf(vm.id), mac: defaultMac(vm.id) }));

  it.each(['batched', 'inline'] as const)('fetches the 2 KB document byte-exactly from every VM, with no errors and no ARP broadcast (answering %s)', async (answer) => {
    expect(doc.length).toBe(2048);
    const flooded = yakima.net!.switch.stats.flooded;
    const gen = new HttpLoadGenerator(yakima.net!, { path: '/doc-2k.html', expectedBody: doc, concurrency: 4, answer });
    try {
      const r = await gen.run({ targets: targets(), durationMs: 1500, distribution: 'random', seed: 5 });
      expect(r.errors).toBe(0);
      expect(r.requests).toBeGreaterThan(20);
      expect(r.bodyBytes).toBe(r.requests * 2048);
      for (const h of r.hits) expect(h).toBeGreaterThan(0);
      expect(r.latencyUs.p50).toBeGreaterThan(0);
      expect(r.latencyUs.p99).toBeGreaterThanOrEqual(r.latencyUs.p50);
      expect(r.requestsPerSecond).toBeCloseTo(r.requests / 1.5, 6);
      // Neither side had to broadcast ARP: the VMs learned our MAC from unicast requests.
      expect(yakima.net!.switch.stats.flooded).toBe(flooded);
      expect(gen.stats.tcp.retransmits).toBe(0);
    } finally {
      gen.close();
    }
  }, 60_000);

  /** IDLE sleeps of one VM per request, one request in flight at a time. */
  const idlesPerRequest = async (answer: 'batched' | 'inline'): Promise<number> => {
    const gen = new HttpLoadGenerator(yakima.net!, { path: '/doc-2k.html', expectedBody: doc, concurrency: 1, answer });
    const vm = yakima.vms[1]!;
    try {
      await gen.run({ targets: [targets()[1]!], durationMs: 300, seed: 3 }); // ARP and first-connection work out of the way
      const idles = vm.stats.idles;
      const r = await gen.run({ targets: [targets()[1]!], durationMs: 1000, seed: 4 });
      expect(r.errors).toBe(0);
      expect(r.requests).toBeGreaterThan(10);
      return (vm.stats.idles - idles) / r.requests;
    } finally {
      gen.close();
    }
  };

  it('answering inline, answers before the VM sleeps: a request costs the VM about one IDLE sleep, not one per step of the exchange', async () => {
    // SYN, request and FIN each found the generator's answer pending at IDLE.
    expect(await idlesPerRequest('inline')).toBeLessThan(1.5);
  }, 60_000);

  it('answering batched (the default), answers when the scheduler lets the event loop in: each step of the exchange is a sleep of its own', async () => {
    // The SYN-ACK, the response and the FIN each wait for the generator's batch.
    expect(await idlesPerRequest('batched')).toBeGreaterThan(2);
  }, 60_000);

  it('Zipf requests favour the first VMs as the distribution says (α = 2 for a clear skew over 4 VMs)', async () => {
    const gen = new HttpLoadGenerator(yakima.net!, { path: '/doc-2k.html', expectedBody: doc, concurrency: 4 });
    try {
      const r = await gen.run({ targets: targets(), durationMs: 2000, distribution: 'zipf', alpha: 2, seed: 9 });
      expect(r.errors).toBe(0);
      const total = r.hits.reduce((a, b) => a + b, 0);
      expect(total).toBe(r.requests);
      // α = 2 over 4 targets: P = 0.70, 0.18, 0.08, 0.04
      expect(r.hits[0]! / total).toBeGreaterThan(0.55);
      expect(r.hits[0]!).toBeGreaterThan(r.hits[1]!);
      expect(r.hits[1]!).toBeGreaterThan(r.hits[3]!);
    } finally {
      gen.close();
    }
  }, 60_000);

  it('counts wrong bodies, missing documents and dead targets as errors', async () => {
    const wrong = Buffer.from(doc);
    wrong[100] ^= 1;
    const g1 = new HttpLoadGenerator(yakima.net!, { path: '/doc-2k.html', expectedBody: wrong, concurrency: 1 });
    const r1 = await g1.run({ targets: targets().slice(0, 1), durationMs: 300 }).finally(() => g1.close());
    expect(r1.requests).toBe(0);
    expect(r1.errorsByKind.body).toBeGreaterThan(0);

    const g2 = new HttpLoadGenerator(yakima.net!, { path: '/no-such.html', concurrency: 1 });
    const r2 = await g2.run({ targets: targets().slice(0, 1), durationMs: 300 }).finally(() => g2.close());
    expect(r2.errorsByKind.status).toBeGreaterThan(0);

    // An address with no VM behind it: the known MAC goes nowhere, SYNs time out.
    const ghost = { ip: yakima.net!.addressOf(VMS + 50), mac: defaultMac(VMS + 50) };
    const g3 = new HttpLoadGenerator(yakima.net!, { path: '/doc-2k.html', concurrency: 1, requestTimeoutMs: 400 });
    const r3 = await g3.run({ targets: [ghost], durationMs: 300 }).finally(() => g3.close());
    expect(r3.requests).toBe(0);
    expect(r3.errorsByKind['request-timeout']).toBe(1);
  }, 60_000);

  it('visits every VM once (readiness check) and rejects bad options with a clear message', async () => {
    const gen = new HttpLoadGenerator(yakima.net!, { path: '/doc-2k.html', expectedBody: doc, concurrency: 2 });
    try {
      const seen: number[] = [];
      const v = await gen.visitAll({ targets: targets(), from: 1, timeoutMs: 10_000, onProgress: (d) => seen.push(d) });
      expect(v).toEqual({ answered: VMS - 1, unanswered: [], lastError: undefined });
      expect(seen).toEqual([1, 2, 3]);
      await expect(gen.run({ targets: [], durationMs: 100 })).rejects.toThrow(/at least one target/);
      await expect(gen.run({ targets: targets(), durationMs: 0 })).rejects.toThrow(/duration/);
      await expect(gen.run({ targets: targets(), durationMs: 100, distribution: 'zipf', alpha: -1 })).rejects.toThrow(/Zipf exponent/);
    } finally {
      gen.close();
    }
    await expect(gen.run({ targets: targets(), durationMs: 100 })).rejects.toThrow(/closed/);
    expect(() => new HttpLoadGenerator(yakima.net!, { path: '/', concurrency: 0 })).toThrow(/concurrency/);
    expect(() => new HttpLoadGenerator(yakima.net!, { path: 'x y' })).toThrow(/request target/);
    expect(() => new HttpLoadGenerator(yakima.net!, { path: '/', port: 0 })).toThrow(/server port 0/);
  });
});
