/** Ethernet II framing helpers (IEEE 802.3). Frames carry no FCS inside Yakima. */

/** Length of the Ethernet header in bytes: destination MAC, source MAC, EtherType. */
export const ETH_HEADER = 14;

/** A MAC address as the 48-bit number it spells, for map keys (fits a JS number exactly). */
export function macKey(frame: Uint8Array, offset: number): number {
  return (
    frame[offset]! * 2 ** 40 +
    frame[offset + 1]! * 2 ** 32 +
    frame[offset + 2]! * 2 ** 24 +
    ((frame[offset + 3]! << 16) | (frame[offset + 4]! << 8) | frame[offset + 5]!)
  );
}

/** `macKey` of a 6-byte MAC. */
export function macKeyOf(mac: Uint8Array): number {
  return macKey(mac, 0);
}

/** True for group (broadcast or multicast) destination addresses: the I/G bit of the first octet. */
export function isGroupMac(frame: Uint8Array, offset = 0): boolean {
  return (frame[offset]! & 1) === 1;
}

/** "02:de:4e:00:00:01" */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}
