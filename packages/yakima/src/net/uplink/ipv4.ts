import { internetChecksum } from './checksum.js';
import { rd16, rd32, wr16, wr32 } from './frame.js';

/** IP protocol numbers used here. */
export const IPPROTO = { ICMP: 1, TCP: 6, UDP: 17 } as const;
/** Minimum IPv4 header length in bytes (IHL 5). */
export const IPV4_HEADER = 20;
/** Default TTL of packets the virtual host sends. */
export const DEFAULT_TTL = 64;

/** A parsed IPv4 packet (RFC 791 section 3.1). Addresses are host-order numbers. */
export interface IPv4Packet {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** Header length in bytes (IHL × 4). */
  headerLength: number;
  /** Total length field in bytes. */
  totalLength: number;
  /** The payload (view into the frame; trailing link padding excluded). */
  payload: Uint8Array;
}

/** Why an IPv4 packet was rejected; each is a drop counter name. */
export type IPv4DropReason = 'ipTruncated' | 'ipBadVersion' | 'ipBadHeaderLength' | 'ipBadTotalLength' | 'ipBadChecksum' | 'ipFragment' | 'ipBadAddress';

/**
 * Parse an IPv4 packet strictly (RFC 791): version 4, 20 ≤ IHL×4 ≤ total length ≤ bytes
 * available, valid header checksum (RFC 1071), not a fragment (MF set or offset ≠ 0: Yakima
 * does not reassemble), source not multicast/broadcast. Never throws.
 * @param checksumVerified the header checksum is already known correct (Yakima computed or
 *   verified it: `FRAME_CSUM` flags), so it is not summed again.
 * @returns the packet, or the drop reason.
 */
export function parseIPv4Packet(buf: Uint8Array, offset = 0, checksumVerified = false): IPv4Packet | IPv4DropReason {
  const avail = buf.length - offset;
  if (avail < IPV4_HEADER) return 'ipTruncated';
  const vihl = buf[offset]!;
  if (vihl >>> 4 !== 4) return 'ipBadVersion';
  const headerLength = (vihl & 0xf) * 4;
  if (headerLength < IPV4_HEADER || headerLength > avail) return 'ipBadHeaderLength';
  const totalLength = rd16(buf, offset + 2);
  if (totalLength < headerLength || totalLength > avail) return 'ipBadTotalLength';
  if (!checksumVerified && internetChecksum(buf, offset, headerLength) !== 0) return 'ipBadChecksum';
  const flagsFrag = rd16(buf, offset + 6);
  if ((flagsFrag & 0x2000) !== 0 || (flagsFrag & 0x1fff) !== 0) return 'ipFragment';
  const src = rd32(buf, offset + 12);
  const dst = rd32(buf, offset + 16);
  if (src >>> 28 === 14 || src === 0xffffffff) return 'ipBadAddress';
  return {
    src,
    dst,
    protocol: buf[offset + 9]!,
    ttl: buf[offset + 8]!,
    headerLength,
    totalLength,
    payload: buf.subarray(offset + headerLength, offset + totalLength),
  };
}

/**
 * Write a 20-byte IPv4 header (no options, DF set, the given identification) at `offset` for a
 * payload of `payloadLength` bytes, with its checksum.
 */
export function writeIPv4Header(
  buf: Uint8Array,
  offset: number,
  h: { src: number; dst: number; protocol: number; payloadLength: number; id?: number; ttl?: number },
): void {
  buf[offset] = 0x45;
  buf[offset + 1] = 0;
  wr16(buf, offset + 2, IPV4_HEADER + h.payloadLength);
  wr16(buf, offset + 4, (h.id ?? 0) & 0xffff);
  wr16(buf, offset + 6, 0x4000);
  buf[offset + 8] = h.ttl ?? DEFAULT_TTL;
  buf[offset + 9] = h.protocol;
  wr16(buf, offset + 10, 0);
  wr32(buf, offset + 12, h.src);
  wr32(buf, offset + 16, h.dst);
  wr16(buf, offset + 10, internetChecksum(buf, offset, IPV4_HEADER));
}
