import { createHash } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Yakima } from '../../src/control/yakima.js';
import { parseIPv4 } from '../../src/net/network.js';
import { attachTapUplink, probeTap, type TapUplink } from '../../src/net/uplink/tap-uplink.js';
import type { TcpConnection } from '../../src/net/uplink/tcp-endpoint.js';
import { attachUserModeUplink, type UserModeUplink } from '../../src/net/uplink/user-uplink.js';
import { VirtualHost } from '../../src/net/uplink/virtual-host.js';
import { chunkedWriter, randomData, sha256, waitFor } from './helpers.js';
import { KernelPeer, cleanupStaleNetns, createNetns, deleteNetns, inNetns } from './netns.js';


// The Linux kernel's TCP (inside a network namespace made here, behind a TAP device bridged to
// the virtual switch) is the oracle for Yakima's user-space TCP endpoint. Kernel side: 10.73.0.1
// (the TAP address); Yakima's virtual host: 10.73.0.250. No traffic leaves the namespace/TAP.
const probe = probeTap();
const NS = `dnup${process.pid}`;
const VH_IP = parseIPv4('10.73.0.250');
const KERNEL = parseIPv4('10.73.0.1');
if (!probe.usable) console.log(`[uplink/tap] skipped: ${probe.reason}`);

describe.skipIf(!probe.usable)('TAP uplink: user-space TCP endpoint vs the Linux kernel', () => {
  let yakima: Yakima;
  let tap: TapUplink;
  let vh: VirtualHost;
  let peer: KernelPeer;

  beforeAll(async () => {
    cleanupStaleNetns('dnup');
    createNetns(NS);
    // Small kernel receive buffers so a slow reader closes its window quickly.
    inNetns(NS, ['sysctl', '-q', '-w', 'net.ipv4.tcp_rmem=4096 65536 262144']);
    yakima = new Yakima({ network: true });
    tap = await attachTapUplink(yakima, { netns: NS, name: 'dnup%d' });
    vh = new VirtualHost(yakima.net!, { ip: VH_IP, mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 0xfa]), name: 'vh' });
    vh.attach();
    peer = new KernelPeer(NS);
    await peer.ready;
    const modes: Array<[number, string, Record<string, unknown>]> = [
      [7001, 'sink', {}],
      [7002, 'source', { bytes: 8 << 20 }],
      [7003, 'echo', {}],
      [7004, 'replyAfterEnd', { bytes: 1 << 20 }],
      [7005, 'reset', {}],
      [7006, 'slowsink', { firstPauseMs: 400, pauseMs: 5 }],
    ];
    for (const [port, mode, extra] of modes) await peer.call({ op: 'listen', port, mode, host: '10.73.0.1', ...extra });
  });

  afterAll(async () => {
    peer?.kill();
    vh?.close();
    await tap?.close();
    deleteNetns(NS);
  });

  function open(port: number): TcpConnection {
    return vh.connect(KERNEL, port);
  }
  function collect(c: TcpConnection): Promise<Buffer> {
    const chunks: Buffer[] = [];
    return new Promise((resolve, reject) => {
      c.onData = (d) => {
        chunks.push(Buffer.from(d));
        c.release(d.length);
      };
      c.onEnd = () => resolve(Buffer.concat(chunks));
      c.onAbort = (r) => reject(new Error(`aborted: ${r}`));
    });
  }
  function pump(c: TcpConnection, data: Buffer, end = true): Promise<number> {
    let fulls = 0;
    return new Promise((resolve) => {
      const go = chunkedWriter(c, data, { end, onFull: () => fulls++, onDone: () => resolve(fulls) });
      if (c.state === 'ESTABLISHED') go();
      else c.onConnect = go;
    });
  }

  it('sends 16 MB to a kernel sink intact (SHA-256), and receives 8 MB from a kernel source', async () => {
    const data = randomData(16 << 20, 21);
    const t0 = performance.now();
    const c = open(7001);
    const back = collect(c);
    await pump(c, data);
    const ev = await peer.nextEvent((e) => e.port === 7001);
    const upMs = performance.now() - t0;
    await back;
    expect(ev.received).toBe(data.length);
    expect(ev.sha256).toBe(sha256(data));
    expect(vh.stats.arpRequestsAnswered + vh.stats.framesIn).toBeGreaterThan(0);
    const t1 = performance.now();
    const c2 = open(7002);
    const got = await collect(c2);
    const downMs = performance.now() - t1;
    c2.end();
    const ev2 = await peer.nextEvent((e) => e.port === 7002);
    expect(got.length).toBe(8 << 20);
    expect(sha256(got)).toBe(ev2.sentSha256);
    console.log(
      `[uplink/tap] endpoint→kernel ${((data.length / upMs) * 1e3 / 1e6).toFixed(1)} MB/s, kernel→endpoint ${((got.length / downMs) * 1e3 / 1e6).toFixed(1)} MB/s`,
    );
  });

  it('passive open: the kernel connects to our listener; echo of 4 MB is byte-exact', async () => {
    vh.listen(9000, (c) => {
      c.onData = (d) => {
        c.write(d);
        c.release(d.length);
      };
      c.onEnd = () => c.end();
    });
    const r = await peer.call({ op: 'connect', host: '10.73.0.250', port: 9000, bytes: 4 << 20 });
    expect(r.received).toBe(4 << 20);
    expect(r.sha256).toBe(r.sentSha256);
    expect(r.endedBy).toBe('fin');
  });

  it('half-close: we FIN first and still receive 1 MB the kernel sends afterwards', async () => {
    const c = open(7004);
    const got = collect(c);
    const data = randomData(100_000, 22);
    await pump(c, data);
    const buf = await got;
    expect(['FIN-WAIT-2', 'TIME-WAIT', 'CLOSED']).toContain(c.state);
    const ev = await peer.nextEvent((e) => e.port === 7004);
    expect(ev.sha256).toBe(sha256(data));
    expect(sha256(buf)).toBe(ev.sentSha256);
    await waitFor(() => c.state === 'TIME-WAIT' || c.state === 'CLOSED');
  });

  it('RST both ways: the kernel resets us; we reset the kernel', async () => {
    const c = open(7005);
    const reason = new Promise<string>((res) => (c.onAbort = res));
    c.onConnect = () => c.write(Buffer.from('hello'));
    expect(await reason).toBe('reset');
    await peer.nextEvent((e) => e.port === 7005);
    const c2 = open(7001);
    await new Promise<void>((res) => (c2.onConnect = res));
    c2.write(Buffer.from('partial'));
    await new Promise((r) => setTimeout(r, 20));
    c2.abort();
    const ev = await peer.nextEvent((e) => e.port === 7001);
    expect(ev.endedBy).toBe('reset');
  });

  it('flow control: a slow kernel reader closes its window; we probe and finish intact', async () => {
    const data = randomData(2 << 20, 23);
    const c = open(7006);
    const back = collect(c);
    const fulls = await pump(c, data);
    const ev = await peer.nextEvent((e) => e.port === 7006, 30_000);
    await back;
    expect(ev.sha256).toBe(sha256(data));
    expect(fulls).toBeGreaterThan(0); // write() pushed back
  }, 40_000);

  describe('user-mode relay: 127.0.0.1 → virtual host → kernel "guest"', () => {
    let up: UserModeUplink;
    let ports: Record<string, number>;
    beforeAll(async () => {
      up = await attachUserModeUplink(
        yakima,
        [
          { hostPort: 0, guestPort: 7003 },
          { hostPort: 0, guestPort: 7004 },
          { hostPort: 0, guestPort: 7005 },
          { hostPort: 0, guestPort: 7999 },
        ],
        { virtualHost: { ip: parseIPv4('10.73.0.251'), mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 0xfb]) }, resolveGuest: () => KERNEL },
      );
      ports = { echo: up.listening[0]!.port, reply: up.listening[1]!.port, reset: up.listening[2]!.port, closed: up.listening[3]!.port };
    });
    afterAll(async () => up?.close());

    function client(port: number): Socket {
      return netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
    }
    function exchange(port: number, data: Buffer): Promise<{ got: Buffer; endedBy: string }> {
      return new Promise((resolve) => {
        const s = client(port);
        const chunks: Buffer[] = [];
        let endedBy = 'close';
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('end', () => (endedBy = 'fin'));
        s.on('error', (e: NodeJS.ErrnoException) => (endedBy = e.code ?? 'error'));
        s.on('close', () => resolve({ got: Buffer.concat(chunks), endedBy }));
        s.end(data);
      });
    }

    it('echo of 8 MB through the relay is byte-exact', async () => {
      const data = randomData(8 << 20, 31);
      const t0 = performance.now();
      const r = await exchange(ports['echo']!, data);
      const ms = performance.now() - t0;
      expect(r.endedBy).toBe('fin');
      expect(r.got.length).toBe(data.length);
      expect(sha256(r.got)).toBe(sha256(data));
      console.log(`[uplink/tap] relay echo ${(((2 * data.length) / ms) * 1e3 / 1e6).toFixed(1)} MB/s (both directions counted)`);
    });

    it('half-close through the relay: client ends, then the guest answers 1 MB', async () => {
      const data = randomData(50_000, 32);
      const r = await exchange(ports['reply']!, data);
      const ev = await peer.nextEvent((e) => e.port === 7004);
      expect(ev.sha256).toBe(sha256(data));
      expect(createHash('sha256').update(r.got).digest('hex')).toBe(ev.sentSha256);
      expect(r.endedBy).toBe('fin');
    });

    it('guest reset reaches the host client as ECONNRESET; refused port too', async () => {
      const r = await exchange(ports['reset']!, Buffer.from('x'));
      expect(r.endedBy).toBe('ECONNRESET');
      const t0 = Date.now();
      const r2 = await exchange(ports['closed']!, Buffer.from('y'));
      expect(r2.endedBy).toBe('ECONNRESET');
      expect(Date.now() - t0).toBeLessThan(2000);
      await peer.nextEvent((e) => e.port === 7005);
    });

    it('50 concurrent connections of 256 KB each, all byte-exact', async () => {
      const runs = Array.from({ length: 50 }, (_, i) => {
        const data = randomData(256 << 10, 100 + i);
        return exchange(ports['echo']!, data).then((r) => sha256(r.got) === sha256(data) && r.endedBy === 'fin');
      });
      const ok = await Promise.all(runs);
      expect(ok.every(Boolean)).toBe(true);
      await waitFor(() => up.relay.active === 0, 10_000);
    });
  });
});
