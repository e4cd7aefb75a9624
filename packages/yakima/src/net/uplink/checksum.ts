/**
 * The Internet checksum (RFC 1071): the 16-bit ones' complement of the ones' complement sum of
 * the data taken as big-endian 16-bit words (an odd final byte is padded with zero).
 */

/**
 * Ones' complement sum of `length` bytes of `data` from `offset`, added to `initial`, folded to
 * 16 bits (not complemented). Chain calls to sum discontiguous pieces; each piece but the last
 * must have even length.
 */
export function onesComplementSum(data: Uint8Array, offset: number, length: number, initial = 0): number {
  let sum = initial;
  const end = offset + length;
  let i = offset;
  for (; i + 1 < end; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i < end) sum += data[i]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field value for `length` bytes at `offset` (RFC 1071): `~sum & 0xffff`. */
export function internetChecksum(data: Uint8Array, offset: number, length: number, initial = 0): number {
  return ~onesComplementSum(data, offset, length, initial) & 0xffff;
}

/**
 * Sum of the TCP/UDP IPv4 pseudo-header (RFC 9293 section 3.1, RFC 768): source and
 * destination address (host-order 32-bit numbers), zero, protocol, and the segment length
 * in bytes. Pass the result as `initial` to `internetChecksum` over the segment.
 */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  let sum = (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}
