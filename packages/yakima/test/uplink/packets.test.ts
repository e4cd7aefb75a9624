import { describe, expect, it } from 'vitest';
import { VirtualNetwork, parseIPv4 } from '../../src/net/network.js';
import { ARP_OP, ArpCache, buildArpFrame, parseArp } from '../../src/net/uplink/arp.js';
import { internetChecksum, onesComplementSum, pseudoHeaderSum } from '../../src/net/uplink/checksum.js';
import { BROADCAST_MAC, ETHERTYPE_IPV4, newFrame } from '../../src/net/uplink/frame.js';
import { IPPROTO, parseIPv4Packet, writeIPv4Header } from '../../src/net/uplink/ipv4.js';
import { TCP_FLAG, buildTcpFrame, parseTcpSegment, seqLt } from '../../src/net/uplink/tcp-segment.js';
import { VirtualHost, VIRTUAL_HOST_MAC } from '../../src/net/uplink/virtual-host.js';
import { formatPortForward, parsePortForward } from '../../src/net/uplink/port-forward.js';
import { guestAddressOf } from '../../src/net/uplink/user-uplink.js';
import { rng } from './helpers.js';

const GUEST_MAC = new Uint8Array([2, 0xde, 0x4e, 0, 0, 1]);
const GUEST_IP = parseIPv4('10.73.0.2');
const GW = parseIPv4('10.73.0.1');

describe('RFC 1071 checksum', () => {
  it('matches the RFC 1071 section 3 example and verifies to zero', () => {
    const d = new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(onesComplementSum(d, 0, d.length)).toBe(0xddf2);
    expect(internetChecksum(d, 0, d.length)).toBe(0x220d);
    const withSum = new Uint8Array([...d, 0x22, 0x0d]);
    expect(internetChecksum(withSum, 0, withSum.length)).toBe(0);
  });
  it('pads odd lengths with a zero byte and folds carries', () => {
    expect(onesComplementSum(new Uint8Array([0xff, 0xff, 0xff]), 0, 3)).toBe(0xff00 + 0xffff - 0xffff);
    expect(pseudoHeaderSum(0xffffffff, 0xffffffff, 6, 0xffff)).toBeLessThanOrEqual(0xffff);
  });
  it('sequence comparison wraps modulo 2^32', () => {
    expect(seqLt(0xfffffff0, 5)).toBe(true);
    expect(seqLt(5, 0xfffffff0)).toBe(false);
  });
});

function tcpFrame(flags: number, payload = new Uint8Array(0), opts: { seq?: number; ack?: number; dport?: number; mss?: number } = {}): Uint8Array {
  return buildTcpFrame(
    { srcMac: GUEST_MAC, dstMac: VIRTUAL_HOST_MAC, srcIp: GUEST_IP, dstIp: GW },
    { srcPort: 40000, dstPort: opts.dport ?? 80, seq: opts.seq ?? 1000, ack: opts.ack ?? 0, flags, window: 65535, payload, ...(opts.mss ? { mss: opts.mss } : {}) },
  );
}

describe('IPv4 / TCP / ARP build and parse', () => {
  it('round-trips a TCP segment with MSS option through IPv4', () => {
    const f = tcpFrame(TCP_FLAG.SYN, new Uint8Array([1, 2, 3]), { mss: 1460, seq: 0xfffffffe });
    const ip = parseIPv4Packet(f, 14);
    if (typeof ip === 'string') throw new Error(ip);
    expect(ip.src).toBe(GUEST_IP);
    expect(ip.dst).toBe(GW);
    expect(ip.protocol).toBe(IPPROTO.TCP);
    const seg = parseTcpSegment(ip.payload, ip.src, ip.dst);
    if (typeof seg === 'string') throw new Error(seg);
    expect(seg).toMatchObject({ srcPort: 40000, dstPort: 80, seq: 0xfffffffe, flags: TCP_FLAG.SYN, mss: 1460, window: 65535 });
    expect([...seg.payload]).toEqual([1, 2, 3]);
  });
  it('ignores link padding after the IPv4 total length', () => {
    const f = tcpFrame(TCP_FLAG.ACK);
    const padded = new Uint8Array(f.length + 10);
    padded.set(f);
    const ip = parseIPv4Packet(padded, 14);
    if (typeof ip === 'string') throw new Error(ip);
    expect(parseTcpSegment(ip.payload, ip.src, ip.dst)).not.toBeTypeOf('string');
  });
  it('rejects malformed IPv4 with a reason', () => {
    const f = tcpFrame(TCP_FLAG.ACK);
    const mut = (fn: (b: Uint8Array) => void, fix = true) => {
      const b = f.slice();
      fn(b);
      if (fix) {
        b[24] = 0;
        b[25] = 0;
        const c = internetChecksum(b, 14, (b[14]! & 0xf) * 4 <= b.length - 14 ? (b[14]! & 0xf) * 4 : 20);
        b[24] = c >> 8;
        b[25] = c & 0xff;
      }
      return parseIPv4Packet(b, 14);
    };
    expect(parseIPv4Packet(f.subarray(0, 30), 14)).toBe('ipTruncated');
    expect(mut((b) => (b[14] = 0x65))).toBe('ipBadVersion');
    expect(mut((b) => (b[14] = 0x44))).toBe('ipBadHeaderLength');
    expect(mut((b) => (b[16] = 0xff))).toBe('ipBadTotalLength');
    expect(mut((b) => (b[17] = 10))).toBe('ipBadTotalLength');
    expect(mut((b) => (b[22] = 77), false)).toBe('ipBadChecksum');
    expect(mut((b) => (b[20] = 0x20))).toBe('ipFragment');
    expect(mut((b) => (b[21] = 1))).toBe('ipFragment');
  });
  it('rejects malformed TCP with a reason', () => {
    const f = tcpFrame(TCP_FLAG.ACK, new Uint8Array(10));
    const tcp = f.slice(34);
    expect(parseTcpSegment(tcp.subarray(0, 19), GUEST_IP, GW)).toBe('tcpTruncated');
    const bad = tcp.slice();
    bad[25] ^= 1;
    expect(parseTcpSegment(bad, GUEST_IP, GW)).toBe('tcpBadChecksum');
    expect(parseTcpSegment(tcp, GUEST_IP, GW + 1)).toBe('tcpBadChecksum'); // pseudo-header covers addresses
    const hl = tcp.slice();
    hl[12] = 0xf0; // 60-byte header > 30 bytes
    expect(parseTcpSegment(hl, GUEST_IP, GW)).toBe('tcpBadHeaderLength');
  });
  it('round-trips ARP and rejects other hardware types', () => {
    const f = buildArpFrame(BROADCAST_MAC, GUEST_MAC, { op: ARP_OP.REQUEST, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: new Uint8Array(6), targetIp: GW });
    const a = parseArp(f, 14)!;
    expect(a.op).toBe(ARP_OP.REQUEST);
    expect(a.senderIp).toBe(GUEST_IP);
    expect(a.targetIp).toBe(GW);
    const g = f.slice();
    g[15] = 6; // hardware type 6
    expect(parseArp(g, 14)).toBeUndefined();
    expect(parseArp(f.subarray(0, 30), 14)).toBeUndefined();
  });
});

describe('ARP cache', () => {
  it('queues while resolving (bounded), releases on reply, expires entries, gives up after retries', () => {
    let now = 0;
    const requests: number[] = [];
    const arp = new ArpCache((ip) => requests.push(ip), { now: () => now, ttlMs: 1000, maxQueuedPerAddress: 2, maxRequests: 2, retryMs: 100, maxRetryMs: 100 });
    const sent: string[] = [];
    arp.resolve(GUEST_IP, () => sent.push('a'));
    arp.resolve(GUEST_IP, () => sent.push('b'));
    arp.resolve(GUEST_IP, () => sent.push('c')); // drops 'a'
    expect(requests).toEqual([GUEST_IP]);
    expect(arp.dropped).toBe(1);
    arp.learn(GUEST_IP, GUEST_MAC);
    expect(sent).toEqual(['b', 'c']);
    expect(arp.lookup(GUEST_IP)).toEqual(GUEST_MAC);
    now = 1001;
    expect(arp.lookup(GUEST_IP)).toBeUndefined();
    arp.resolve(GUEST_IP + 1, () => sent.push('x'));
    now += 100;
    arp.tick();
    expect(requests.length).toBe(3);
    now += 100;
    arp.tick();
    expect(arp.hasPending).toBe(false);
    expect(arp.dropped).toBe(2);
  });

  it('backs off exponentially and by default keeps asking for about 40 s (a guest busy booting among thousands)', () => {
    let now = 0;
    const at: number[] = [];
    let gaveUp = -1;
    const arp = new ArpCache(() => at.push(now), { now: () => now }, () => (gaveUp = now));
    arp.resolve(GUEST_IP, () => {});
    for (; now <= 60_000 && gaveUp < 0; now += 100) arp.tick();
    expect(at.slice(0, 5)).toEqual([0, 500, 1500, 3500, 7500]);
    expect(at).toHaveLength(12);
    expect(gaveUp).toBeGreaterThan(30_000);
    // A reply after 20 s still releases the queued packet.
    const late = new ArpCache(() => {}, { now: () => now });
    let sent = false;
    now = 0;
    late.resolve(GUEST_IP, () => (sent = true));
    for (; now < 20_000; now += 100) late.tick();
    late.learn(GUEST_IP, GUEST_MAC);
    expect(sent).toBe(true);
  });
});

describe('virtual host input handling', () => {
  function setup() {
    const net = new VirtualNetwork();
    const host = new VirtualHost(net);
    host.attach();
    const out: Uint8Array[] = [];
    net.switch.attach({ name: 'guest', mac: GUEST_MAC, deliver: (f) => out.push(f) });
    return { net, host, out };
  }

  it('answers ARP for the gateway and ICMP echo', () => {
    const { host, out } = setup();
    host.deliver(buildArpFrame(BROADCAST_MAC, GUEST_MAC, { op: ARP_OP.REQUEST, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: new Uint8Array(6), targetIp: GW }));
    const icmp = new Uint8Array([8, 0, 0, 0, 0x12, 0x34, 0, 1, 0xaa, 0xbb]);
    const c = internetChecksum(icmp, 0, icmp.length);
    icmp[2] = c >> 8;
    icmp[3] = c & 0xff;
    const f = newFrame(VIRTUAL_HOST_MAC, GUEST_MAC, ETHERTYPE_IPV4, 20 + icmp.length);
    writeIPv4Header(f, 14, { src: GUEST_IP, dst: GW, protocol: IPPROTO.ICMP, payloadLength: icmp.length });
    f.set(icmp, 34);
    host.deliver(f);
    host.processBatch();
    expect(out.length).toBe(2);
    const reply = parseArp(out[0]!, 14)!;
    expect(reply.op).toBe(ARP_OP.REPLY);
    expect(reply.senderIp).toBe(GW);
    expect([...reply.senderMac]).toEqual([...VIRTUAL_HOST_MAC]);
    const ip = parseIPv4Packet(out[1]!, 14);
    if (typeof ip === 'string') throw new Error(ip);
    expect(ip.dst).toBe(GUEST_IP);
    expect(ip.payload[0]).toBe(0); // echo reply
    expect(internetChecksum(ip.payload, 0, ip.payload.length)).toBe(0);
    expect([...ip.payload.subarray(4)]).toEqual([0x12, 0x34, 0, 1, 0xaa, 0xbb]);
    expect(host.stats.pingsAnswered).toBe(1);
  });

  it('answers a SYN to a closed port with RST+ACK (RFC 9293 3.10.7.1)', () => {
    const { host, out } = setup();
    host.deliver(buildArpFrame(VIRTUAL_HOST_MAC, GUEST_MAC, { op: ARP_OP.REPLY, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: VIRTUAL_HOST_MAC, targetIp: GW }));
    host.deliver(tcpFrame(TCP_FLAG.SYN, new Uint8Array(0), { seq: 500 }));
    host.processBatch();
    const ip = parseIPv4Packet(out.at(-1)!, 14);
    if (typeof ip === 'string') throw new Error(ip);
    const seg = parseTcpSegment(ip.payload, ip.src, ip.dst);
    if (typeof seg === 'string') throw new Error(seg);
    expect(seg.flags).toBe(TCP_FLAG.RST | TCP_FLAG.ACK);
    expect(seg.ack).toBe(501);
  });

  it('drops and counts malformed and hostile input without throwing (fuzz, seeded)', () => {
    const { host } = setup();
    const r = rng(99);
    host.listen(80, (c) => {
      c.onData = (d) => c.release(d.length);
    });
    const valid = [
      tcpFrame(TCP_FLAG.SYN, new Uint8Array(0), { mss: 1460 }),
      tcpFrame(TCP_FLAG.ACK, new Uint8Array(100), { seq: 1001, ack: 5 }),
      tcpFrame(TCP_FLAG.FIN | TCP_FLAG.ACK, new Uint8Array(0), { seq: 1101 }),
      buildArpFrame(BROADCAST_MAC, GUEST_MAC, { op: ARP_OP.REQUEST, senderMac: GUEST_MAC, senderIp: GUEST_IP, targetMac: new Uint8Array(6), targetIp: GW }),
    ];
    let n = 0;
    for (let i = 0; i < 20_000; i++) {
      let f: Uint8Array;
      const kind = r();
      if (kind < 0.3) {
        f = new Uint8Array(Math.floor(r() * 120));
        for (let j = 0; j < f.length; j++) f[j] = Math.floor(r() * 256);
        if (f.length > 14) f.set(VIRTUAL_HOST_MAC, 0);
        if (f.length > 14 && r() < 0.5) f[12] = 8, f[13] = 0;
      } else {
        f = valid[Math.floor(r() * valid.length)]!.slice();
        const flips = 1 + Math.floor(r() * 4);
        for (let j = 0; j < flips; j++) f[14 + Math.floor(r() * (f.length - 14))] = Math.floor(r() * 256);
        if (r() < 0.3) f = f.subarray(0, 14 + Math.floor(r() * (f.length - 14)));
      }
      host.deliver(f); // a throw fails the test
      if (++n % 100 === 0) host.processBatch();
    }
    host.processBatch();
    const d = host.stats.drops;
    expect(d['internalError'] ?? 0).toBe(0);
    expect((d['ipBadChecksum'] ?? 0) + (d['tcpBadChecksum'] ?? 0)).toBeGreaterThan(100);
    expect(d['ethTruncated'] ?? 0).toBeGreaterThan(0);
    expect(Object.values(d).reduce((a, b) => a + b, 0)).toBeGreaterThan(10_000);
    host.close();
    expect(host.busy).toBe(false);
  });

  it('bounds its input queue', () => {
    const net = new VirtualNetwork();
    const host = new VirtualHost(net, { maxQueuedFrames: 10 });
    for (let i = 0; i < 15; i++) host.deliver(new Uint8Array(20));
    expect(host.stats.drops['rxQueueFull']).toBe(5);
    host.close();
  });

  it('refuses an address outside the subnet', () => {
    expect(() => new VirtualHost(new VirtualNetwork(), { ip: parseIPv4('10.80.0.1') })).toThrow(RangeError);
  });
});

describe('parsePortForward', () => {
  it('parses the documented forms', () => {
    expect(parsePortForward('8080:80')).toEqual({ hostPort: 8080, guestPort: 80 });
    expect(parsePortForward('8080:web:80')).toEqual({ hostPort: 8080, guestPort: 80, guest: 'web' });
    expect(parsePortForward('8081:2:80/tcp')).toEqual({ hostPort: 8081, guestPort: 80, guest: 2 });
    expect(formatPortForward({ hostPort: 1, guestPort: 2, guest: 'x' })).toBe('1:x:2');
  });
  it.each(['80', '0:80', '8080:70000', 'a:80', '8080:80/udp', '1:2:3:4', '8080::80', '8080:0:80', ''])('rejects %j with a RangeError', (t) => {
    expect(() => parsePortForward(t)).toThrow(RangeError);
  });
  it('picks VMs: first by default, by 1-based index, by name; none when finished', () => {
    const net = new VirtualNetwork();
    const vms = [
      { id: 1, name: 'web', finished: false },
      { id: 2, name: 'db', finished: false },
      { id: 3, name: 'old', finished: true },
    ];
    const t = { net, vms };
    expect(guestAddressOf(t, { hostPort: 1, guestPort: 80 })).toBe(parseIPv4('10.73.0.2'));
    expect(guestAddressOf(t, { hostPort: 1, guestPort: 80, guest: 2 })).toBe(parseIPv4('10.73.0.3'));
    expect(guestAddressOf(t, { hostPort: 1, guestPort: 80, guest: 'db' })).toBe(parseIPv4('10.73.0.3'));
    expect(guestAddressOf(t, { hostPort: 1, guestPort: 80, guest: 'old' })).toBeUndefined();
    expect(guestAddressOf(t, { hostPort: 1, guestPort: 80, guest: 9 })).toBeUndefined();
  });
});
