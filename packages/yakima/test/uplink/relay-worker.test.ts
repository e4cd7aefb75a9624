import { createHash } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { VirtualNetwork, parseIPv4 } from '../../src/net/network.js';
import { attachUserModeUplink } from '../../src/net/uplink/user-uplink.js';
import { VirtualHost } from '../../src/net/uplink/virtual-host.js';
import { chunkedWriter, randomData, sha256, waitFor } from './helpers.js';

// The relay (servers, host sockets, TCP stack) runs in the uplink's worker thread; the "guest"
// is a user-space endpoint on this thread's switch, so every byte crosses both frame rings.
const GUEST_IP = parseIPv4('10.73.0.2');
const GUEST_MAC = new Uint8Array([2, 0xde, 0x4e, 0, 0, 1]);
const tcp = { timeWaitMs: 50, minRtoMs: 20, initialRtoMs: 100 };
const UP = 1 << 20;
const DOWN = randomData(1 << 20, 77);

/** Port 90: reads the upload to EOF, then sends its SHA-256 (64 hex chars) and the 1 MB download. */
function serveUpDown(guest: VirtualHost): void {
  guest.listen(90, (c) => {
    const h = createHash('sha256');
    c.onData = (d) => {
      h.update(d);
      c.release(d.length);
    };
    c.onEnd = () => {
      chunkedWriter(c, Buffer.concat([Buffer.from(h.digest('hex')), DOWN]))();
    };
  });
  guest.listen(91, (c) => {
    c.onData = (d) => c.release(d.length);
  });
}

function setup(): { net: VirtualNetwork; guest: VirtualHost } {
  const net = new VirtualNetwork();
  const guest = new VirtualHost(net, { name: 'guest', ip: GUEST_IP, mac: GUEST_MAC, tcp });
  guest.attach();
  serveUpDown(guest);
  return { net, guest };
}

describe('user-mode uplink relay in its worker thread', () => {
  it('carries a 1 MB upload and a 1 MB download byte-exact; counters and ring counts are visible', async () => {
    const { net, guest } = setup();
    const up = await attachUserModeUplink({ net }, [{ hostPort: 0, guestPort: 90 }], { resolveGuest: () => GUEST_IP, virtualHost: { tcp } });
    try {
      const upload = randomData(UP, 76);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const s = netConnect({ host: '127.0.0.1', port: up.listening[0]!.port, allowHalfOpen: true });
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => chunks.push(d));
        s.on('error', reject);
        s.on('end', () => {
          s.end();
          resolve(Buffer.concat(chunks));
        });
        s.end(upload);
      });
      expect(got.subarray(0, 64).toString()).toBe(sha256(upload));
      expect(sha256(got.subarray(64))).toBe(sha256(DOWN));
      await up.refreshStats();
      expect(up.relay.accepted).toBe(1);
      expect(up.stats.tcp.bytesReceived).toBeGreaterThanOrEqual(64 + DOWN.length);
      expect(up.stats.tcp.bytesAcked).toBeGreaterThanOrEqual(UP);
      // At least one frame per MSS each way crossed the rings; nothing was dropped there.
      expect(up.rings.toMain.frames).toBeGreaterThan(UP / 1460);
      expect(up.rings.toWorker.frames).toBeGreaterThan(DOWN.length / 1460);
      expect(up.rings.toMain.drops + up.rings.toWorker.drops).toBe(0);
    } finally {
      await up.close();
      guest.close();
    }
  }, 30_000);

  it('guestGone counts and resets that guest’s connections; close() stops listening and resets the rest', async () => {
    const { net, guest } = setup();
    const up = await attachUserModeUplink({ net }, [{ hostPort: 0, guestPort: 91 }], { resolveGuest: () => GUEST_IP, virtualHost: { tcp } });
    const port = up.listening[0]!.port;
    const open = (): Promise<{ closed: Promise<string> }> =>
      new Promise((resolve) => {
        const s = netConnect({ host: '127.0.0.1', port });
        const closed = new Promise<string>((res) => {
          s.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? 'error'));
          s.on('close', () => res('close'));
        });
        s.on('connect', () => {
          s.write('x');
          resolve({ closed });
        });
      });
    try {
      const a = await open();
      const b = await open();
      await waitFor(() => guest.connectionCount === 2);
      expect(up.guestGone(parseIPv4('10.73.0.9'))).toBe(0);
      expect(up.guestGone(GUEST_IP)).toBe(2);
      expect(await a.closed).toBe('ECONNRESET');
      expect(await b.closed).toBe('ECONNRESET');
      await waitFor(() => guest.connectionCount === 0);
      await up.refreshStats();
      expect(up.relay.active).toBe(0);
      const c = await open();
      await waitFor(() => guest.connectionCount === 1);
      await up.close();
      expect(await c.closed).toBe('ECONNRESET');
      // The RST the worker sent while closing reached the guest through the ring.
      await waitFor(() => guest.connectionCount === 0);
      const refused = await new Promise<string>((res) => {
        const s = netConnect({ host: '127.0.0.1', port });
        s.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? 'error'));
        s.on('connect', () => res('connected'));
      });
      expect(refused).toBe('ECONNREFUSED');
      await up.close(); // idempotent
    } finally {
      await up.close();
      guest.close();
    }
  }, 30_000);
});
