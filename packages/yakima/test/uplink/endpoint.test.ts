import { afterEach, describe, expect, it } from 'vitest';
import { VirtualNetwork, parseIPv4 } from '../../src/net/network.js';
import { VirtualHost, type VirtualHostOptions } from '../../src/net/uplink/virtual-host.js';
import type { TcpConnection } from '../../src/net/uplink/tcp-endpoint.js';
import { makeLossy, randomData, sha256, waitFor } from './helpers.js';

/** Two virtual hosts on one switch: A (10.73.0.1) and B (10.73.0.200). */
function pair(opts: { tcp?: VirtualHostOptions['tcp']; arp?: VirtualHostOptions['arp'] } = {}) {
  const net = new VirtualNetwork();
  const a = new VirtualHost(net, { name: 'A', tcp: opts.tcp, arp: opts.arp });
  const b = new VirtualHost(net, { name: 'B', ip: parseIPv4('10.73.0.200'), mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 0xc8]), tcp: opts.tcp, arp: opts.arp });
  a.attach();
  b.attach();
  hosts.push(a, b);
  return { net, a, b };
}
const hosts: VirtualHost[] = [];
afterEach(() => {
  for (const h of hosts.splice(0)) h.close();
});

/** Collect everything a connection receives; resolves at FIN. Releases as it goes. */
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

/** Write `data` respecting backpressure, then end. */
function pump(c: TcpConnection, data: Buffer, chunk = 16_384): void {
  let off = 0;
  const go = (): void => {
    while (off < data.length) {
      const ok = c.write(data.subarray(off, off + chunk));
      off += chunk;
      if (!ok) return;
    }
    c.end();
  };
  c.onDrain = go;
  if (c.state === 'ESTABLISHED') go();
  else c.onConnect = go;
}

describe('user-space TCP endpoint against itself', () => {
  it('transfers 4 MB each way, closes cleanly, leaves no timers', async () => {
    const { a, b } = pair();
    const up = randomData(4 << 20, 1);
    const down = randomData(4 << 20, 2);
    let server!: TcpConnection;
    const serverGot = new Promise<Buffer>((resolve) => {
      b.listen(80, (c) => {
        server = c;
        void collect(c).then(resolve);
        pump(c, down);
      });
    });
    const client = a.connect(b.ip, 80);
    const clientGot = collect(client);
    pump(client, up);
    const [s, cl] = await Promise.all([serverGot, clientGot]);
    expect(sha256(s)).toBe(sha256(up));
    expect(sha256(cl)).toBe(sha256(down));
    await waitFor(() => client.isClosed && server.isClosed, 5000);
    expect(a.stats.tcp.retransmits).toBe(0);
    expect(a.stats.tcp.bytesAcked).toBe(up.length);
    expect(b.stats.tcp.bytesReceived).toBe(up.length);
    await waitFor(() => !a.busy && !b.busy, 5000);
  });

  it('refused connection (no listener) aborts with "refused"', async () => {
    const { a, b } = pair();
    const c = a.connect(b.ip, 81);
    const r = await new Promise<string>((res) => (c.onAbort = res));
    expect(r).toBe('refused');
    expect(b.stats.drops['tcpNoConnection']).toBe(1);
  });

  it('no answer: SYN retried then the open fails', async () => {
    const { net, a } = pair({ tcp: { initialRtoMs: 20, synRetries: 2 } });
    const c = a.connect(parseIPv4('10.73.0.77'), 80); // nobody: ARP never resolves
    const t0 = Date.now();
    const r = await new Promise<string>((res) => (c.onAbort = res));
    expect(r).toBe('refused');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(net.switch.stats.flooded).toBeGreaterThan(0);
  });

  it('RST from the peer aborts with "reset"; half-close keeps the other direction', async () => {
    const { a, b } = pair();
    const accepted = new Promise<TcpConnection>((res) => b.listen(80, res));
    const client = a.connect(b.ip, 80);
    const srv = await accepted;
    await waitFor(() => client.state === 'ESTABLISHED' && srv.state === 'ESTABLISHED');
    const got = collect(srv);
    client.write(Buffer.from('hello'));
    client.end();
    const data = await got; // FIN seen after data
    expect(data.toString()).toBe('hello');
    await waitFor(() => client.state === 'FIN-WAIT-2');
    // The half-closed side can still send.
    const back: Buffer[] = [];
    client.onData = (d) => {
      back.push(Buffer.from(d));
      client.release(d.length);
    };
    srv.write(Buffer.from('still here'));
    await waitFor(() => Buffer.concat(back).toString() === 'still here');
    const reason = new Promise<string>((res) => (client.onAbort = res));
    srv.abort();
    expect(await reason).toBe('reset');
    expect(a.stats.connections.reset).toBe(1);
  });

  it('flow control: a receiver that does not release stalls the sender at its window, then resumes', async () => {
    const { a, b } = pair({ tcp: { receiveBuffer: 8192, minRtoMs: 20, initialRtoMs: 50, maxProbeIntervalMs: 50 } });
    const accepted = new Promise<TcpConnection>((res) => b.listen(80, res));
    const client = a.connect(b.ip, 80);
    const srv = await accepted;
    const held: Buffer[] = [];
    srv.onData = (d) => held.push(Buffer.from(d)); // no release: window closes
    const data = randomData(100_000, 3);
    await waitFor(() => client.state === 'ESTABLISHED');
    client.write(data);
    client.end();
    await new Promise((r) => setTimeout(r, 300));
    expect(Buffer.concat(held).length).toBe(8192);
    expect(srv.receiveWindow).toBe(0);
    expect(a.stats.tcp.zeroWindowProbes).toBeGreaterThan(0);
    // Release everything from now on.
    const rest = new Promise<void>((res) => (srv.onEnd = res));
    srv.onData = (d) => {
      held.push(Buffer.from(d));
      srv.release(d.length);
    };
    srv.release(8192);
    await rest;
    expect(sha256(Buffer.concat(held))).toBe(sha256(data));
  });

  it.each([11, 15, 6])('completes intact with 10 percent seeded frame loss each way, seed %i (RTO, fast retransmit, reassembly)', async (seed) => {
    const { net, a, b } = pair({ tcp: { minRtoMs: 10, initialRtoMs: 50, dataRetries: 30, synRetries: 10 }, arp: { retryMs: 50, maxRequests: 20 } });
    const la = makeLossy(net, a, 0.1, seed);
    const lb = makeLossy(net, b, 0.1, seed + 1000);
    const up = randomData(512 << 10, 4);
    const down = randomData(256 << 10, 5);
    const serverGot = new Promise<Buffer>((resolve, reject) => {
      b.listen(80, (c) => {
        collect(c).then(resolve, reject);
        pump(c, down);
      });
    });
    const client = a.connect(b.ip, 80);
    const clientGot = collect(client);
    pump(client, up);
    const [s, cl] = await Promise.all([serverGot, clientGot]);
    expect(sha256(s)).toBe(sha256(up));
    expect(sha256(cl)).toBe(sha256(down));
    expect(la.dropped + lb.dropped).toBeGreaterThan(50);
    expect(a.stats.tcp.retransmits + b.stats.tcp.retransmits).toBeGreaterThan(0);
  }, 20_000);

  it('delayed ACK: a reply carries the ACK of the request, so a keep-alive exchange costs one segment each way per message', async () => {
    // Replies come a turn of the event loop later, as from a host socket (the uplink) or a
    // guest; 500 ms keeps a loaded machine from turning this into a timing test (and the RTO
    // floor goes above it, so the last reply is not retransmitted before its delayed ACK).
    const { a, b } = pair({ tcp: { delayedAckMs: 500, minRtoMs: 2000 } });
    const ROUNDS = 20;
    const RESPONSE = 2200; // two segments (1460 + 740), like an httpd page
    let served = 0;
    b.listen(80, (c) => {
      c.onData = (d) => {
        c.release(d.length);
        served++;
        setImmediate(() => c.write(randomData(RESPONSE, served)));
      };
    });
    const client = a.connect(b.ip, 80);
    await new Promise<void>((res) => (client.onConnect = res));
    await new Promise((r) => setTimeout(r, 50)); // the handshake's last ACK has been processed
    const outA = a.stats.framesOut;
    const outB = b.stats.framesOut;
    await new Promise<void>((resolve, reject) => {
      let got = 0;
      let rounds = 0;
      client.onAbort = (r) => reject(new Error(`aborted: ${r}`));
      client.onData = (d) => {
        client.release(d.length);
        got += d.length;
        if (got < RESPONSE) return;
        got = 0;
        if (++rounds === ROUNDS) return resolve();
        setImmediate(() => client.write(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
      };
      client.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    });
    // Each request is one segment (it acknowledges the last reply); each reply two segments
    // (the first acknowledges the request). No pure ACKs, no window updates in between.
    expect(a.stats.framesOut - outA).toBe(ROUNDS);
    expect(b.stats.framesOut - outB).toBe(2 * ROUNDS);
    // The last reply is acknowledged by the delayed-ACK timer.
    await waitFor(() => a.stats.tcp.delayedAcks === 1, 5000);
    expect(a.stats.framesOut - outA).toBe(ROUNDS + 1);
  });

  it('delayed ACK: data after an unacknowledged small segment is acknowledged at once (no Nagle stall)', async () => {
    const { a, b } = pair({ tcp: { delayedAckMs: 500, minRtoMs: 2000 } });
    let server!: TcpConnection;
    b.listen(80, (c) => (server = c));
    const client = a.connect(b.ip, 80);
    await new Promise<void>((res) => (client.onConnect = res));
    await waitFor(() => server !== undefined, 5000);
    await new Promise((r) => setTimeout(r, 50));
    const got: Buffer[] = [];
    server.onData = (d) => {
      got.push(Buffer.from(d));
      server.release(d.length);
    };
    const outB = b.stats.framesOut;
    client.write(randomData(1460, 1)); // full-sized: sets what "small" means
    await waitFor(() => got.length === 1, 5000);
    expect(b.stats.framesOut - outB).toBe(0); // delayed
    client.write(randomData(100, 2)); // small: still only one full segment's worth unacknowledged
    await waitFor(() => got.length === 2, 5000);
    expect(b.stats.framesOut - outB).toBe(0);
    client.write(randomData(100, 3)); // more data behind a small unacknowledged segment: ACK now
    await waitFor(() => got.length === 3 && b.stats.framesOut - outB === 1, 5000);
    expect(b.stats.tcp.delayedAcks).toBe(0);
    expect(client.bufferedBytes).toBe(0);
  });
});
