import { connect as netConnect, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Yakima } from '../../src/control/yakima.js';
import { VirtualNetwork, parseIPv4 } from '../../src/net/network.js';
import { claimAddress } from '../../src/net/uplink/claims.js';
import { UplinkError, attachUserModeUplink, type UserModeUplink } from '../../src/net/uplink/user-uplink.js';
import { VirtualHost } from '../../src/net/uplink/virtual-host.js';
import { chunkedWriter, makeLossy, randomData, sha256, waitFor } from './helpers.js';

// The "guest" is a second instance of the user-space endpoint in passive mode (a VirtualHost at
// 10.73.0.2 with listeners), so these tests need no privileges and no guest TCP stack.
const GUEST_IP = parseIPv4('10.73.0.2');
const tcp = { timeWaitMs: 50, minRtoMs: 20, initialRtoMs: 100 };

interface Result {
  got: Buffer;
  endedBy: string;
}
function exchange(port: number, data: Buffer, opts: { endAfterWrite?: boolean } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let endedBy = 'close';
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => (endedBy = 'fin'));
    s.on('error', (e: NodeJS.ErrnoException) => (endedBy = e.code ?? 'error'));
    s.on('close', () => resolve({ got: Buffer.concat(chunks), endedBy }));
    if (opts.endAfterWrite === false) s.write(data);
    else s.end(data);
  });
}

function guestServices(guest: VirtualHost, log: { resets: number; halfClosed: string[] }): void {
  // 80: echo (half-close aware).
  guest.listen(80, (c) => {
    c.onData = (d) => {
      c.write(d);
      c.release(d.length);
    };
    c.onEnd = () => c.end();
  });
  // 81: reads to EOF, then answers with the byte count as text (half-close).
  guest.listen(81, (c) => {
    let n = 0;
    c.onData = (d) => {
      n += d.length;
      c.release(d.length);
    };
    c.onEnd = () => {
      log.halfClosed.push(c.state);
      c.write(Buffer.from(`got ${n}`));
      c.end();
    };
  });
  // 82: resets on the first byte.
  guest.listen(82, (c) => {
    c.onData = () => c.abort();
  });
  // 85: a slow reader: releases nothing for 300 ms, then everything; answers with a byte count.
  guest.listen(85, (c) => {
    let n = 0;
    let hold = true;
    let held = 0;
    setTimeout(() => {
      hold = false;
      c.release(held);
    }, 300);
    c.onData = (d) => {
      n += d.length;
      if (hold) held += d.length;
      else c.release(d.length);
    };
    c.onEnd = () => {
      c.write(Buffer.from(`got ${n}`));
      c.end();
    };
  });
  // 86: sends 8 MB (more than loopback socket buffers hold) as fast as the window allows, then FIN.
  guest.listen(86, (c) => {
    c.onConnect = chunkedWriter(c, randomData(8 << 20, 86));
  });
  // 83: counts resets from the host.
  guest.listen(83, (c) => {
    c.onData = (d) => c.release(d.length);
    c.onAbort = (r) => {
      if (r === 'reset') log.resets++;
    };
  });
}

/** Wait until `cond` holds on fresh counters from the relay worker (they are mirrored, not live). */
async function settled(up: UserModeUplink, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    await up.refreshStats();
    if (cond()) return;
    if (Date.now() > end) throw new Error('settled: timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('user-mode uplink relay (loopback → virtual host → endpoint-as-guest)', () => {
  let net: VirtualNetwork;
  let guest: VirtualHost;
  let up: UserModeUplink;
  let port: (guestPort: number) => number;
  const log = { resets: 0, halfClosed: [] as string[] };

  beforeAll(async () => {
    net = new VirtualNetwork();
    guest = new VirtualHost(net, { name: 'guest', ip: GUEST_IP, mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 1]), tcp });
    guest.attach();
    guestServices(guest, log);
    up = await attachUserModeUplink(
      { net },
      [80, 81, 82, 83, 84, 85, 86].map((g) => ({ hostPort: 0, guestPort: g })),
      { resolveGuest: () => GUEST_IP, virtualHost: { tcp: { ...tcp, synRetries: 2 } } },
    );
    port = (g) => up.listening.find((l) => l.forward.guestPort === g)!.port;
  });
  afterAll(async () => {
    await up?.close();
    guest?.close();
  });

  it('relays 4 MB each way byte-exact and closes with FIN', async () => {
    const data = randomData(4 << 20, 41);
    const r = await exchange(port(80), data);
    expect(r.endedBy).toBe('fin');
    expect(sha256(r.got)).toBe(sha256(data));
  });

  it('half-close: host end() reaches the guest as FIN, guest still answers', async () => {
    const r = await exchange(port(81), randomData(300_000, 42));
    expect(r.got.toString()).toBe('got 300000');
    expect(r.endedBy).toBe('fin');
    expect(log.halfClosed).toContain('CLOSE-WAIT');
  });

  it('guest RST → host sees ECONNRESET; host reset → guest sees RST', async () => {
    const r = await exchange(port(82), Buffer.from('boom'));
    expect(r.endedBy).toBe('ECONNRESET');
    const s = netConnect({ host: '127.0.0.1', port: port(83) });
    s.on('error', () => {});
    await new Promise<void>((res) => s.on('connect', res));
    s.write('x');
    await new Promise((r2) => setTimeout(r2, 30));
    s.resetAndDestroy();
    await waitFor(() => log.resets === 1);
  });

  it('refused guest port: host connection reset promptly', async () => {
    const t0 = Date.now();
    const r = await exchange(port(84), Buffer.from('hello'));
    expect(r.endedBy).toBe('ECONNRESET');
    expect(Date.now() - t0).toBeLessThan(1000);
    await up.refreshStats(); // the counters are the worker's, mirrored
    expect(up.stats.connections.refused).toBeGreaterThan(0);
  });

  it('backpressure host → guest: a slow guest reader pauses the host socket; data intact', async () => {
    const pausesBefore = up.relay.hostPauses;
    const r = await exchange(port(85), randomData(2 << 20, 44));
    expect(r.got.toString()).toBe(`got ${2 << 20}`);
    await up.refreshStats();
    expect(up.relay.hostPauses).toBeGreaterThan(pausesBefore);
  });

  it('backpressure guest → host: a host client that does not read closes the window to the guest', async () => {
    const zeroBefore = up.stats.tcp.zeroWindowsAdvertised;
    const s = netConnect({ host: '127.0.0.1', port: port(86), allowHalfOpen: true });
    s.pause();
    // Loopback socket buffers absorb a few MB; then the relay's window to the guest must close.
    await waitFor(() => up.stats.tcp.zeroWindowsAdvertised > zeroBefore, 15_000);
    const chunks: Buffer[] = [];
    const done = new Promise<void>((res) => s.on('end', res));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.resume();
    await done;
    s.end();
    expect(sha256(Buffer.concat(chunks))).toBe(sha256(randomData(8 << 20, 86)));
  });

  it('guestGone resets relayed connections to that VM at once', async () => {
    await settled(up, () => up.relay.active === 0); // earlier tests' connections are over
    const s = netConnect({ host: '127.0.0.1', port: port(83) });
    const closed = new Promise<string>((res) => {
      s.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? 'error'));
      s.on('close', () => res('close'));
    });
    await new Promise<void>((res) => s.on('connect', res));
    s.write('x');
    await settled(up, () => up.relay.active === 1 && up.stats.connections.active > 0 && guest.connectionCount > 0);
    expect(up.guestGone(GUEST_IP)).toBe(1);
    expect(await closed).toBe('ECONNRESET');
    await waitFor(() => log.resets >= 1);
  });

  it('100 concurrent connections, each 64 KB echoed intact', async () => {
    const res = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const d = randomData(64 << 10, 1000 + i);
        return exchange(port(80), d).then((r) => r.endedBy === 'fin' && sha256(r.got) === sha256(d));
      }),
    );
    expect(res.filter(Boolean).length).toBe(100);
  });

  it('a bounded burst of 400 short connections (in waves of 100), then no timers left', async () => {
    let ok = 0;
    for (let wave = 0; wave < 4; wave++) {
      const rs = await Promise.all(Array.from({ length: 100 }, (_, i) => exchange(port(80), Buffer.from(`ping ${wave}.${i}`))));
      ok += rs.filter((r, i) => r.got.toString() === `ping ${wave}.${i}`).length;
    }
    expect(ok).toBe(400);
    await settled(up, () => up.relay.active === 0 && !up.busy && !guest.busy);
    expect(up.stats.drops['internalError'] ?? 0).toBe(0);
  });

  it('survives 5% seeded loss towards the guest: 1 MB echo completes intact', async () => {
    const net2 = new VirtualNetwork();
    const g2 = new VirtualHost(net2, { name: 'g2', ip: GUEST_IP, mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 1]), tcp });
    g2.attach();
    guestServices(g2, { resets: 0, halfClosed: [] });
    const loss = makeLossy(net2, g2, 0.05, 7);
    const up2 = await attachUserModeUplink({ net: net2 }, [{ hostPort: 0, guestPort: 80 }], {
      resolveGuest: () => GUEST_IP,
      virtualHost: { tcp: { ...tcp, synRetries: 8, dataRetries: 20 } },
    });
    try {
      const data = randomData(1 << 20, 43);
      const r = await exchange(up2.listening[0]!.port, data);
      expect(sha256(r.got)).toBe(sha256(data));
      expect(loss.dropped).toBeGreaterThan(10);
      await up2.refreshStats();
      expect(up2.stats.tcp.retransmits).toBeGreaterThan(0);
    } finally {
      await up2.close();
      g2.close();
    }
  }, 30_000);
});

describe('guest behind a real NIC (bounded Rx FIFO, slow drain)', () => {
  it('8 concurrent 256 KB echoes stay intact when the Rx FIFO overflows', async () => {
    const net = new VirtualNetwork();
    const mac = new Uint8Array([2, 0xde, 0x4e, 0, 0, 1]);
    const guest = new VirtualHost(net, { name: 'vm1', mac, ip: net.addressOf(1), tcp });
    guestServices(guest, { resets: 0, halfClosed: [] });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const drain = (): void => {
      timer = undefined;
      // Slow enough (2,000 frames/s) that eight streams' windows outrun it whatever the host's
      // speed and however the sender's ACK clock runs (delayed ACKs slow its window's growth).
      for (let i = 0; i < 8; i++) {
        const f = nic.rx.shift();
        if (!f) break;
        guest.deliver(f);
      }
      if (nic.rx.length > 0) timer = setTimeout(drain, 4);
    };
    // The NIC's NET_RX "interrupt" schedules a slow guest drain; the guest transmits directly.
    const nic = net.attachNic('vm1', mac, () => (timer ??= setTimeout(drain, 4)));
    const up = await attachUserModeUplink({ net, vms: [{ id: 1, name: 'vm1', finished: false }] }, [{ hostPort: 0, guestPort: 80 }], {
      virtualHost: { tcp: { ...tcp, dataRetries: 20 } },
    });
    try {
      const res = await Promise.all(
        Array.from({ length: 8 }, (_, i) => {
          const d = randomData(256 << 10, 500 + i);
          return exchange(up.listening[0]!.port, d).then((r) => r.endedBy === 'fin' && sha256(r.got) === sha256(d));
        }),
      );
      expect(res.every(Boolean)).toBe(true);
      await up.refreshStats();
      console.log(`[uplink/relay] NIC Rx FIFO drops ${nic.stats.rxFifoDrops}, uplink retransmits ${up.stats.tcp.retransmits}`);
      expect(nic.stats.rxFifoDrops).toBeGreaterThan(0);
      expect(up.stats.tcp.retransmits).toBeGreaterThan(0);
    } finally {
      await up.close();
      guest.close();
      if (timer) clearTimeout(timer);
    }
  }, 30_000);
});

describe('attachUserModeUplink errors and VM selection', () => {
  it('a guest address nobody answers ARP for: host connection reset after ARP gives up', async () => {
    const net = new VirtualNetwork();
    const up = await attachUserModeUplink({ net }, [{ hostPort: 0, guestPort: 80 }], {
      resolveGuest: () => parseIPv4('10.73.0.99'),
      virtualHost: { arp: { retryMs: 50, maxRequests: 3 } },
    });
    try {
      const t0 = Date.now();
      const r = await exchange(up.listening[0]!.port, Buffer.from('x'));
      expect(r.endedBy).toBe('ECONNRESET');
      expect(Date.now() - t0).toBeLessThan(1000);
      await up.refreshStats();
      expect(up.stats.connections.refused).toBe(1);
    } finally {
      await up.close();
    }
  });

  it('EADDRINUSE: one clear line naming the port, nothing left open', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    const net = new VirtualNetwork();
    const err = await attachUserModeUplink({ net }, [{ hostPort: 0, guestPort: 1 }, { hostPort: taken, guestPort: 80 }]).catch((e) => e);
    blocker.close();
    expect(err).toBeInstanceOf(UplinkError);
    expect(err.code).toBe('EADDRINUSE');
    expect(err.message).toBe(`-p ${taken}:80: cannot listen on 127.0.0.1:${taken}: address already in use`);
    // The address claim was released: a second attach works.
    const ok = await attachUserModeUplink({ net }, [{ hostPort: 0, guestPort: 80 }]);
    await ok.close();
  });

  it('is exclusive with an uplink holding the gateway address (TAP)', async () => {
    const net = new VirtualNetwork();
    claimAddress(net, net.gateway, 'TAP device test0');
    await expect(attachUserModeUplink({ net }, [])).rejects.toThrow(/exclusive/);
  });

  it('with a real Yakima and no VM: the host connection is reset (no guest)', async () => {
    const y = new Yakima({ network: true });
    const up = await attachUserModeUplink(y, [{ hostPort: 0, guestPort: 80 }]);
    try {
      const r = await exchange(up.listening[0]!.port, Buffer.from('x'));
      expect(r.endedBy).toBe('ECONNRESET');
      await up.refreshStats();
      expect(up.relay.noGuest).toBe(1);
    } finally {
      await up.close();
    }
    await expect(attachUserModeUplink(new Yakima(), [])).rejects.toThrow(/networking/);
  });
});
