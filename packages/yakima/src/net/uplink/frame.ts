import { ETH_HEADER } from '../ethernet.js';

/** EtherType of IPv4 (RFC 894). */
export const ETHERTYPE_IPV4 = 0x0800;
/** EtherType of ARP (RFC 826). */
export const ETHERTYPE_ARP = 0x0806;
/** The Ethernet broadcast address. */
export const BROADCAST_MAC = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/**
 * A new frame of `ETH_HEADER + payloadLength` bytes with its Ethernet II header written
 * (destination, source, EtherType); the caller fills the payload from offset 14.
 */
export function newFrame(dst: Uint8Array, src: Uint8Array, etherType: number, payloadLength: number): Uint8Array {
  const f = new Uint8Array(ETH_HEADER + payloadLength);
  f.set(dst.subarray(0, 6), 0);
  f.set(src.subarray(0, 6), 6);
  f[12] = etherType >>> 8;
  f[13] = etherType & 0xff;
  return f;
}

/** EtherType of a frame (bytes 12–13), or -1 when shorter than a header. */
export function etherTypeOf(frame: Uint8Array): number {
  return frame.length < ETH_HEADER ? -1 : (frame[12]! << 8) | frame[13]!;
}

/** Read a big-endian u16. */
export function rd16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
/** Read a big-endian u32 as an unsigned number. */
export function rd32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
/** Write a big-endian u16. */
export function wr16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}
/** Write a big-endian u32. */
export function wr32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
