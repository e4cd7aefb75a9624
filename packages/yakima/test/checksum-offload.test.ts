import { describe, expect, it } from 'vitest';
import { FRAME_DESC, FRAME_FLAG, HYPERCALL, HYPERCALL_PORT_BASE, LAYOUT, NET_ARGS, NET_FEATURE, VREG_RO } from '@denali/image-format';
import { totalDrops, vmCounters } from '../src/api/counters.js';
import { Yakima } from '../src/control/yakima.js';
import type { VcpuExit } from '../src/cpu/vcpu.js';
import { NicDevice } from '../src/net/nic.js';
import { FRAME_CSUM, checksumsValid, completeChecksums, fillChecksums } from '../src/net/checksum-offload.js';
import { VirtualNetwork } from '../src/net/network.js';
import type { SwitchPort } from '../src/net/switch.js';
import { buildTcpFrame, parseTcpSegment } from '../src/net/uplink/tcp-segment.js';
import { ScriptedVcpu, tinyImage } from './scripted-vcpu.js';

/**
 * Independent RFC 1071 checksum: the ones' complement sum as the integer sum of the 16-bit
 * big-endian words reduced modulo 0xffff (RFC 1071 section 2 (B)/(C): end-around carry is
 * arithmetic modulo 2^16 - 1), not the fold loop Yakima uses.
 */
function refChecksum(bytes: number[]): number {
  let total = 0;
  for (let i = 0; i < bytes.length; i += 2) total += bytes[i]! * 256 + (bytes[i + 1] ?? 0);
  const r = total % 0xffff;
  const sum = r === 0 && total !== 0 ? 0xffff : r;
  return 0xffff - sum;
}

const SRC_IP = [10, 73, 0, 2];
const DST_IP = [10, 73, 0, 1];

/** Ethernet + IPv4 + `l4` (protocol 6 or 17) with every checksum field set to `junk`. */
function ipFrame(src: Uint8Array, dst: Uint8Array, protocol: number, l4: number[], junk = 0xbeef): Uint8Array {
  const total = 20 + l4.length;
  const ip = [0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, protocol, junk >> 8, junk & 0xff, ...SRC_IP, ...DST_IP];
  const f = Uint8Array.from([...dst, ...src, 0x08, 0x00, ...ip, ...l4]);
  const field = 34 + (protocol === 6 ? 16 : 6);
  f[field] = junk >> 8;
  f[field + 1] = junk & 0xff;
  return f;
}
function tcpBytes(payload: string): number[] {
  return [0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0x20, 0, 0, 0, 0, 0, ...Buffer.from(payload)];
}
function udpBytes(payload: string): number[] {
  const len = 8 + payload.length;
  return [0x13, 0x88, 0, 53, len >> 8, len & 0xff, 0, 0, ...Buffer.from(payload)];
}
/** The checksums `f` should carry, computed with `refChecksum` over a zeroed field. */
function expected(f: Uint8Array): { ip: number; l4: number } {
  const b = Array.from(f);
  const hdr = b.slice(14, 34);
  hdr[10] = hdr[11] = 0;
  const protocol = b[23]!;
  const l4 = b.slice(34);
  const field = protocol === 6 ? 16 : 6;
  l4[field] = l4[field + 1] = 0;
  const pseudo = [...SRC_IP, ...DST_IP, 0, protocol, l4.length >> 8, l4.length & 0xff];
  let ck = refChecksum([...pseudo, ...l4]);
  if (protocol === 17 && ck === 0) ck = 0xffff;
  return { ip: refChecksum(hdr), l4: ck };
}
const be16 = (f: Uint8Array, o: number): number => (f[o]! << 8) | f[o + 1]!;

const MAC_A = Uint8Array.of(0x02, 0xde, 0x4e, 0, 0, 1);
const MAC_B = Uint8Array.of(0x02, 0xde, 0x4e, 0, 0, 2);

describe('NIC checksum offload (FRAME_FLAG.TX_CSUM)', () => {
  it('fills the IPv4, TCP and UDP checksums of a flagged frame (lazily); leaves unflagged and non-IP frames alone', () => {
    const nic = new NicDevice(MAC_A, () => {}, () => {});
    for (const f of [ipFrame(MAC_A, MAC_B, 6, tcpBytes('GET / HTTP/1.1\r\n\r\n')), ipFrame(MAC_A, MAC_B, 17, udpBytes('odd')), ipFrame(MAC_A, MAC_B, 6, tcpBytes(''))]) {
      expect(nic.transmit(f, FRAME_FLAG.TX_CSUM)).toBe(true);
      const flags = nic.tx.headFlags();
      const out = nic.tx.shift()!;
      expect(flags).toBe(FRAME_CSUM.PARTIAL); // Yakima's to fill, where a port needs them
      expect(completeChecksums(out, flags)).toBe(FRAME_CSUM.VALID);
      const want = expected(f);
      expect([be16(out, 24), be16(out, 34 + (f[23] === 6 ? 16 : 6))]).toEqual([want.ip, want.l4]);
      expect(be16(f, 24)).toBe(0xbeef); // the guest's bytes are not touched, only the NIC's copy
    }
    const plain = ipFrame(MAC_A, MAC_B, 6, tcpBytes('x'));
    nic.transmit(plain);
    expect(Array.from(nic.tx.shift()!)).toEqual(Array.from(plain));
    const arp = new Uint8Array(42).fill(7);
    arp.set([0x08, 0x06], 12);
    nic.transmit(arp, FRAME_FLAG.TX_CSUM);
    expect(Array.from(nic.tx.shift()!)).toEqual(Array.from(arp));
    expect(nic.stats.txCsumFilled).toBe(3);
  });

  it('drops and counts a frame whose FLAGS carry a bit that is not a Tx flag', () => {
    const nic = new NicDevice(MAC_A, () => {}, () => {});
    expect(nic.transmit(ipFrame(MAC_A, MAC_B, 6, tcpBytes('x')), FRAME_FLAG.RX_CSUM_VALID)).toBe(true);
    expect(nic.tx.length).toBe(0);
    expect(nic.stats.txBadFlags).toBe(1);
  });

  it('a malformed IPv4 header is sent as given (no checksum claimed)', () => {
    const f = ipFrame(MAC_A, MAC_B, 6, tcpBytes('x'));
    f[17] = 0xff; // total length beyond the frame
    const copy = f.slice();
    expect(fillChecksums(copy)).toBe(false);
    expect(Array.from(copy)).toEqual(Array.from(f));
  });
});

describe('checksumsValid (what NET_RECV reports as RX_CSUM_VALID)', () => {
  it('is true for correct TCP/UDP frames and false for a bad IP or TCP checksum, ICMP and truncation', () => {
    const good = ipFrame(MAC_B, MAC_A, 6, tcpBytes('hello'));
    fillChecksums(good);
    const fresh = good.slice(); // no flags: verified from the bytes
    expect(checksumsValid(fresh)).toBe(true);
    const corrupt = fresh.slice();
    corrupt[56] ^= 1;
    expect(checksumsValid(corrupt, FRAME_CSUM.VALID)).toBe(true); // VALID: the bytes are not read
    const badTcp = fresh.slice();
    badTcp[56] ^= 1; // a payload byte
    expect(checksumsValid(badTcp)).toBe(false);
    const badIp = fresh.slice();
    badIp[22] ^= 1; // TTL changed, header checksum not
    expect(checksumsValid(badIp)).toBe(false);
    const noSum = ipFrame(MAC_B, MAC_A, 17, udpBytes('none'), 0);
    fillChecksums(noSum);
    const zero = noSum.slice();
    zero[40] = zero[41] = 0; // UDP "no checksum" (RFC 768)
    expect(checksumsValid(zero)).toBe(true);
    const icmp = ipFrame(MAC_B, MAC_A, 1, [8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
    expect(checksumsValid(icmp)).toBe(false);
    expect(checksumsValid(fresh.subarray(0, 40))).toBe(false);
  });

  it('frames the -p relay builds carry correct checksums (sent as VALID, so neither the NIC nor the relay sums them again)', () => {
    const f = buildTcpFrame({ srcMac: MAC_A, dstMac: MAC_B, srcIp: 0x0a490001, dstIp: 0x0a490002 }, { srcPort: 80, dstPort: 40000, seq: 1, ack: 2, flags: 0x18, window: 1000, payload: Buffer.from('hi') });
    expect(checksumsValid(f)).toBe(true);
    expect(be16(f, 24)).toBe(expected(f).ip);
    // A trusted parse skips the sum: a corrupted checksum passes only when the caller vouches for it.
    const seg = f.slice(34);
    seg[16] ^= 0xff;
    expect(parseTcpSegment(seg, 0x0a490001, 0x0a490002)).toBe('tcpBadChecksum');
    expect(typeof parseTcpSegment(seg, 0x0a490001, 0x0a490002, true)).toBe('object');
  });
});

describe('NET_SEND with TX_CSUM and NET_RECV with RX_FLAGS between two VMs', () => {
  it('the receiver gets correct checksums and RX_CSUM_VALID for good frames only; an old-style descriptor gets the old u32 LEN', async () => {
    const ARGS = 0x3000;
    const DESCS = 0x3100;
    const BUFS = 0x4000;
    const out = (n: number): VcpuExit => ({ kind: 'io-out', port: HYPERCALL_PORT_BASE + n, value: ARGS, size: 4 });
    const got: { bytes: Uint8Array; lenWord: number }[] = [];
    const features: number[] = [];
    const steps = new Map<number, number>();
    const sent = [
      { f: ipFrame(MAC_A, MAC_B, 6, tcpBytes('offloaded')), flags: FRAME_FLAG.TX_CSUM },
      { f: ipFrame(MAC_A, MAC_B, 6, tcpBytes('bad sum')), flags: 0 }, // junk checksums, no offload
      { f: ipFrame(MAC_A, MAC_B, 17, udpBytes('udp')), flags: FRAME_FLAG.TX_CSUM },
      { f: ipFrame(MAC_A, MAC_B, 6, tcpBytes('old guest')), flags: FRAME_FLAG.TX_CSUM },
      { f: ipFrame(MAC_A, MAC_B, 6, tcpBytes('rx flag on tx')), flags: FRAME_FLAG.RX_CSUM_VALID }, // dropped: not a Tx flag
    ];
    const y = new Yakima({
      network: true,
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, () => {
          const id = mem.readU32(LAYOUT.VREG_RO_BASE + VREG_RO.VM_ID);
          const step = steps.get(id) ?? 0;
          steps.set(id, step + 1);
          if (step === 0) features.push(mem.readU32(LAYOUT.VREG_RO_BASE + VREG_RO.NET_FEATURES));
          if (id === 1) {
            if (step === 0) {
              sent.forEach(({ f, flags }, i) => {
                mem.u8.set(f, BUFS + i * 2048);
                mem.writeU32(DESCS + i * FRAME_DESC.SIZE + FRAME_DESC.ADDR, BUFS + i * 2048);
                mem.writeU32(DESCS + i * FRAME_DESC.SIZE + FRAME_DESC.LEN, f.length | (flags << 16));
              });
              mem.writeU32(ARGS + NET_ARGS.DESCS, DESCS);
              mem.writeU32(ARGS + NET_ARGS.COUNT, sent.length);
              return out(HYPERCALL.NET_SEND);
            }
            mem.writeU32(ARGS, 0);
            return out(HYPERCALL.EXIT);
          }
          if (step === 0) {
            mem.writeU32(ARGS, 0xffffffff);
            mem.writeU32(ARGS + 4, 0xffffffff);
            return out(HYPERCALL.IDLE);
          }
          if (step === 1) {
            for (let i = 0; i < 4; i++) {
              mem.writeU32(DESCS + i * FRAME_DESC.SIZE + FRAME_DESC.ADDR, BUFS + i * 2048);
              // The last descriptor is an old guest's: u32 capacity, no RX_FLAGS.
              mem.writeU32(DESCS + i * FRAME_DESC.SIZE + FRAME_DESC.LEN, i < 3 ? (2048 | (FRAME_FLAG.RX_FLAGS << 16)) >>> 0 : 2048);
            }
            mem.writeU32(ARGS + NET_ARGS.DESCS, DESCS);
            mem.writeU32(ARGS + NET_ARGS.COUNT, 4);
            return out(HYPERCALL.NET_RECV);
          }
          const n = mem.readU32(ARGS + NET_ARGS.DONE);
          for (let i = 0; i < n; i++) {
            const lenWord = mem.readU32(DESCS + i * FRAME_DESC.SIZE + FRAME_DESC.LEN);
            got.push({ bytes: mem.view(BUFS + i * 2048, lenWord & 0xffff).slice(), lenWord });
          }
          mem.writeU32(ARGS, 0);
          return out(HYPERCALL.EXIT);
        }),
    });
    const a = y.addVm(tinyImage('a'));
    const b = y.addVm(tinyImage('b'));
    await y.run();
    expect(features).toEqual([NET_FEATURE.CSUM, NET_FEATURE.CSUM]);
    expect(got).toHaveLength(4);
    const flagsOf = (g: { lenWord: number }): number => g.lenWord >>> 16;
    for (const i of [0, 2, 3]) {
      const want = expected(sent[i]!.f);
      const g = got[i]!.bytes;
      expect([be16(g, 24), be16(g, 34 + (g[23] === 6 ? 16 : 6))], `frame ${i}`).toEqual([want.ip, want.l4]);
    }
    expect(flagsOf(got[0]!)).toBe(FRAME_FLAG.RX_CSUM_VALID);
    expect(flagsOf(got[1]!)).toBe(0); // bad checksums: delivered, not vouched for
    expect(be16(got[1]!.bytes, 24)).toBe(0xbeef);
    expect(flagsOf(got[2]!)).toBe(FRAME_FLAG.RX_CSUM_VALID);
    expect(got[3]!.lenWord).toBe(sent[3]!.f.length); // old descriptor: plain u32 LEN, no flags
    expect(a.nic!.stats).toMatchObject({ txFrames: 4, txCsumFilled: 3 });
    expect(b.nic!.stats.rxCsumValid).toBe(2);
    // The control API reports the same counters, and the bad-flags frame as a drop.
    expect(vmCounters(a, undefined)).toMatchObject({ txChecksumsFilled: 3, drops: { txBadFlags: 1 } });
    expect(vmCounters(b, undefined)).toMatchObject({ rxChecksumsValid: 2 });
    expect(totalDrops(vmCounters(a, undefined).drops)).toBe(1);
  });
});

describe('the switch carries checksum flags (FRAME_CSUM) with each frame', () => {
  it('fills a PARTIAL frame for a VM NIC (which then reports it valid) but not for a port that takes partial checksums', () => {
    const net = new VirtualNetwork();
    const sender = net.attachNic('a', MAC_A, () => {});
    const receiver = net.attachNic('b', MAC_B, () => {});
    const f = ipFrame(MAC_A, MAC_B, 6, tcpBytes('GET / HTTP/1.1\r\n\r\n'));
    sender.transmit(f, FRAME_FLAG.TX_CSUM);
    net.pump();
    const flags = receiver.rx.headFlags();
    const got = receiver.rx.shift()!;
    expect(flags).toBe(FRAME_CSUM.VALID);
    const want = expected(f);
    expect([be16(got, 24), be16(got, 50)]).toEqual([want.ip, want.l4]);
    expect(receiver.rxFlags(got, got.length, flags)).toBe(FRAME_FLAG.RX_CSUM_VALID);

    const seen: Array<{ frame: Uint8Array; flags: number | undefined }> = [];
    const MAC_C = Uint8Array.of(0x02, 0xde, 0x4e, 0, 0, 3);
    const trusting: SwitchPort = { name: 'trusting', mac: MAC_C, partialChecksums: true, deliver: (frame, fl) => seen.push({ frame, flags: fl }) };
    net.switch.attach(trusting);
    sender.transmit(ipFrame(MAC_A, MAC_C, 6, tcpBytes('x')), FRAME_FLAG.TX_CSUM);
    net.pump();
    expect(seen).toHaveLength(1);
    expect(seen[0]!.flags).toBe(FRAME_CSUM.PARTIAL);
    expect(be16(seen[0]!.frame, 24)).toBe(0xbeef); // left for Yakima: nobody needed them
  });

  it('a frame without TX_CSUM travels with no flags and is verified from its bytes', () => {
    const net = new VirtualNetwork();
    const sender = net.attachNic('a', MAC_A, () => {});
    const receiver = net.attachNic('b', MAC_B, () => {});
    sender.transmit(ipFrame(MAC_A, MAC_B, 6, tcpBytes('x')));
    net.pump();
    expect(receiver.rx.headFlags()).toBe(0);
    const got = receiver.rx.shift()!;
    expect(receiver.rxFlags(got, got.length, 0)).toBe(0); // junk checksums are not reported valid
  });
});
