import { internetChecksum, pseudoHeaderSum } from './checksum.js';
import { ETHERTYPE_IPV4, newFrame, rd16, rd32, wr16, wr32 } from './frame.js';
import { IPPROTO, IPV4_HEADER, writeIPv4Header } from './ipv4.js';

/** TCP header control bits (RFC 9293 section 3.1). */
export const TCP_FLAG = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;
/** Minimum TCP header length in bytes. */
export const TCP_HEADER = 20;

/** A TCP segment (RFC 9293 section 3.1). Sequence numbers are unsigned 32-bit numbers. */
export interface TcpSegment {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Bitwise OR of `TCP_FLAG` values. */
  flags: number;
  /** Window field (bytes; no window scaling is negotiated). */
  window: number;
  /** MSS option value in bytes, when present (RFC 9293 section 3.7.1). */
  mss?: number;
  /** Payload bytes (a view; copy before keeping). */
  payload: Uint8Array;
}

/** Why a TCP segment was rejected; each is a drop counter name. */
export type TcpDropReason = 'tcpTruncated' | 'tcpBadHeaderLength' | 'tcpBadChecksum' | 'tcpBadOption' | 'tcpBadPort';

/**
 * Parse and verify a TCP segment carried in an IPv4 packet from `src` to `dst` (host order):
 * header length, checksum over the pseudo-header (RFC 9293 3.1, RFC 1071), well-formed options
 * (RFC 9293 3.2: kinds 0 and 1 are one byte, others carry a length ≥ 2 within the header; MSS has
 * length 4). Never throws. `checksumVerified`: the checksum is already known correct (Yakima
 * computed or verified it: `FRAME_CSUM` flags), so it is not summed again.
 * @returns the segment, or the drop reason.
 */
export function parseTcpSegment(b: Uint8Array, src: number, dst: number, checksumVerified = false): TcpSegment | TcpDropReason {
  if (b.length < TCP_HEADER) return 'tcpTruncated';
  const hl = (b[12]! >>> 4) * 4;
  if (hl < TCP_HEADER || hl > b.length) return 'tcpBadHeaderLength';
  if (!checksumVerified && internetChecksum(b, 0, b.length, pseudoHeaderSum(src, dst, IPPROTO.TCP, b.length)) !== 0) return 'tcpBadChecksum';
  const srcPort = rd16(b, 0);
  const dstPort = rd16(b, 2);
  if (srcPort === 0 || dstPort === 0) return 'tcpBadPort';
  let mss: number | undefined;
  for (let i = TCP_HEADER; i < hl; ) {
    const kind = b[i]!;
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= hl) return 'tcpBadOption';
    const len = b[i + 1]!;
    if (len < 2 || i + len > hl) return 'tcpBadOption';
    if (kind === 2) {
      if (len !== 4) return 'tcpBadOption';
      mss = rd16(b, i + 2);
    }
    i += len;
  }
  const seg: TcpSegment = {
    srcPort,
    dstPort,
    seq: rd32(b, 4),
    ack: rd32(b, 8),
    flags: b[13]!,
    window: rd16(b, 14),
    payload: b.subarray(hl),
  };
  if (mss !== undefined) seg.mss = mss;
  return seg;
}

/** Addressing of a frame the virtual host sends: MACs (6 bytes) and host-order IPv4 addresses. */
export interface FrameAddress {
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  srcIp: number;
  dstIp: number;
}

/**
 * Build a complete Ethernet + IPv4 + TCP frame for `seg` (MSS option written when `seg.mss`
 * is set, padded to a 4-byte header), with both checksums: the sender forwards it with
 * `FRAME_CSUM.VALID`, so the NIC that receives it does not verify them again.
 */
export function buildTcpFrame(a: FrameAddress, seg: TcpSegment, ipId = 0): Uint8Array {
  const hl = TCP_HEADER + (seg.mss !== undefined ? 4 : 0);
  const tcpLen = hl + seg.payload.length;
  const f = newFrame(a.dstMac, a.srcMac, ETHERTYPE_IPV4, IPV4_HEADER + tcpLen);
  writeIPv4Header(f, 14, { src: a.srcIp, dst: a.dstIp, protocol: IPPROTO.TCP, payloadLength: tcpLen, id: ipId });
  const o = 14 + IPV4_HEADER;
  wr16(f, o, seg.srcPort);
  wr16(f, o + 2, seg.dstPort);
  wr32(f, o + 4, seg.seq);
  wr32(f, o + 8, seg.ack);
  f[o + 12] = (hl / 4) << 4;
  f[o + 13] = seg.flags;
  wr16(f, o + 14, Math.min(seg.window, 0xffff));
  if (seg.mss !== undefined) {
    f[o + 20] = 2;
    f[o + 21] = 4;
    wr16(f, o + 22, seg.mss);
  }
  f.set(seg.payload, o + hl);
  wr16(f, o + 16, internetChecksum(f, o, tcpLen, pseudoHeaderSum(a.srcIp, a.dstIp, IPPROTO.TCP, tcpLen)));
  return f;
}

/** Sequence-number comparison modulo 2^32 (RFC 9293 section 3.4): a < b. */
export function seqLt(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}
/** a ≤ b modulo 2^32. */
export function seqLe(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}
/** (a + n) mod 2^32. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}
/** b − a as a signed distance (|distance| < 2^31). */
export function seqDiff(b: number, a: number): number {
  return (b - a) | 0;
}
