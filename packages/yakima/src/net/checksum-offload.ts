import { ETH_HEADER } from './ethernet.js';
import { onesComplementSum, pseudoHeaderSum } from './uplink/checksum.js';
import { ETHERTYPE_IPV4 } from './uplink/frame.js';
import { IPPROTO } from './uplink/ipv4.js';

/**
 * Checksum offload of the virtual NIC (`FRAME_FLAG.TX_CSUM`, `FRAME_FLAG.RX_CSUM_VALID` in
 * abi.ts; the model is virtio-net's NEEDS_CSUM / DATA_VALID). Yakima is the host, so checksums
 * it computed or verified are trusted. What Yakima knows about a frame's checksums travels with
 * the frame as a `FRAME_CSUM` flags word: from a NIC's Tx FIFO through the switch to each port
 * (`SwitchPort.deliver(frame, flags)`) and into a NIC's Rx FIFO, so later consumers (a VM's
 * NET_RECV, the user-mode uplink's parser) skip verifying it again.
 */
export const FRAME_CSUM = {
  /** The IPv4 header and TCP/UDP checksums are present and correct (Yakima computed or checked them). */
  VALID: 1,
  /**
   * The frame is an unfragmented IPv4 TCP/UDP frame a guest sent with `TX_CSUM` whose checksums
   * Yakima has not filled in yet (virtio's NEEDS_CSUM): the switch fills them before delivering
   * it to a port that does not declare `SwitchPort.partialChecksums` (a VM's NIC, a TAP device).
   */
  PARTIAL: 2,
} as const;

/**
 * Whether `fillChecksums(f)` would fill a TCP or UDP checksum (an unfragmented IPv4 TCP/UDP
 * frame with consistent lengths): such a frame may travel as `FRAME_CSUM.PARTIAL`.
 */
export function checksumsFillable(f: Uint8Array): boolean {
  const s = locate(f);
  return s !== undefined && s.l4Len >= 0;
}

/**
 * The flags of a frame about to be delivered to a port that needs complete checksums: a
 * `PARTIAL` frame gets them filled in now, in place, and becomes `VALID`. Other flags pass.
 */
export function completeChecksums(f: Uint8Array, flags: number): number {
  if (!(flags & FRAME_CSUM.PARTIAL)) return flags;
  return fillChecksums(f) ? FRAME_CSUM.VALID : 0;
}

/** Where a TCP/UDP segment sits in an IPv4 frame; undefined for anything the offload does not cover. */
interface L4Span {
  /** Offset of the IPv4 header and its length in bytes. */
  ip: number;
  ipLen: number;
  /** Offset of the TCP/UDP header, the bytes the checksum covers, and the checksum field's offset. */
  l4: number;
  l4Len: number;
  field: number;
  protocol: number;
}

/**
 * Locate the IPv4 header (RFC 791: version 4, 20 ≤ IHL×4 ≤ total length ≤ bytes in the frame)
 * and, for an unfragmented TCP or UDP packet, the segment. For UDP the checksum covers the UDP
 * length field's bytes (8 ≤ length ≤ IP payload), as the receiver computes it (RFC 768).
 * @returns undefined when the frame is not IPv4 or its header lengths are inconsistent; `l4Len`
 *   is -1 when the packet is IPv4 but not a TCP/UDP segment the offload covers.
 */
function locate(f: Uint8Array): L4Span | undefined {
  if (f.length < ETH_HEADER + 20 || ((f[12]! << 8) | f[13]!) !== ETHERTYPE_IPV4) return undefined;
  const ip = ETH_HEADER;
  if (f[ip]! >>> 4 !== 4) return undefined;
  const ipLen = (f[ip]! & 15) * 4;
  const total = (f[ip + 2]! << 8) | f[ip + 3]!;
  if (ipLen < 20 || total < ipLen || ip + total > f.length) return undefined;
  const protocol = f[ip + 9]!;
  const l4 = ip + ipLen;
  const fragmented = (((f[ip + 6]! << 8) | f[ip + 7]!) & 0x3fff) !== 0;
  let l4Len = -1;
  let field = 0;
  if (!fragmented && protocol === IPPROTO.TCP && total - ipLen >= 20) {
    l4Len = total - ipLen;
    field = l4 + 16;
  } else if (!fragmented && protocol === IPPROTO.UDP && total - ipLen >= 8) {
    const ulen = (f[l4 + 4]! << 8) | f[l4 + 5]!;
    if (ulen >= 8 && ulen <= total - ipLen) {
      l4Len = ulen;
      field = l4 + 6;
    }
  }
  return { ip, ipLen, l4, l4Len, field, protocol };
}

function ipv4Address(f: Uint8Array, o: number): number {
  return ((f[o]! << 24) | (f[o + 1]! << 16) | (f[o + 2]! << 8) | f[o + 3]!) >>> 0;
}

function l4Sum(f: Uint8Array, s: L4Span): number {
  const pseudo = pseudoHeaderSum(ipv4Address(f, s.ip + 12), ipv4Address(f, s.ip + 16), s.protocol, s.l4Len);
  return onesComplementSum(f, s.l4, s.l4Len, pseudo);
}

/**
 * Fill in the checksums of a frame a guest sent with `FRAME_FLAG.TX_CSUM` (a host-owned copy:
 * modified in place). IPv4 frames get their header checksum; unfragmented TCP and UDP segments
 * their TCP/UDP checksum (RFC 1071 over the pseudo-header, RFC 9293 3.1 / RFC 768; a UDP result
 * of 0 is sent as 0xffff since 0 means "no checksum"). Other frames are left as they are.
 * @returns true when the frame now carries checksums Yakima computed (it is marked valid).
 */
export function fillChecksums(f: Uint8Array): boolean {
  const s = locate(f);
  if (!s) return false;
  f[s.ip + 10] = f[s.ip + 11] = 0;
  const ipSum = ~onesComplementSum(f, s.ip, s.ipLen) & 0xffff;
  f[s.ip + 10] = ipSum >>> 8;
  f[s.ip + 11] = ipSum & 0xff;
  if (s.l4Len < 0) return false;
  f[s.field] = f[s.field + 1] = 0;
  let ck = ~l4Sum(f, s) & 0xffff;
  if (ck === 0 && s.protocol === IPPROTO.UDP) ck = 0xffff;
  f[s.field] = ck >>> 8;
  f[s.field + 1] = ck & 0xff;
  return true;
}

/**
 * Whether `f` is an IPv4 TCP or UDP frame whose IPv4 header checksum and TCP/UDP checksum are
 * correct (a UDP checksum of 0, "none", counts as correct: RFC 768). With `flags` carrying
 * `FRAME_CSUM.VALID` no bytes are read. Never throws; false for every other frame (the guest
 * then verifies as usual).
 */
export function checksumsValid(f: Uint8Array, flags = 0): boolean {
  if (flags & FRAME_CSUM.VALID) return true;
  const s = locate(f);
  if (!s || s.l4Len < 0) return false;
  if (onesComplementSum(f, s.ip, s.ipLen) !== 0xffff) return false;
  if (s.protocol === IPPROTO.UDP && f[s.field] === 0 && f[s.field + 1] === 0) return true;
  return l4Sum(f, s) === 0xffff;
}
