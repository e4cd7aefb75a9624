/**
 * Uplinks from Yakima's virtual switch to the host (`denali run --net user|tap`, `-p`).
 *
 * - `--net user` (default, no privileges): `attachUserModeUplink(yakima, forwards)` puts a
 *   virtual host (MAC 02:de:4e:ff:ff:fe, the gateway address) on the switch and listens on
 *   127.0.0.1:HOST_PORT for each `-p` forward (`parsePortForward`); each host connection is
 *   relayed through a user-space TCP connection (RFC 9293) to the guest's port; the sockets
 *   and that TCP run in a worker thread, the switch port on Yakima's thread (`RelayPort`).
 * - `--net tap` (root or CAP_NET_ADMIN): `attachTapUplink(yakima)` bridges the switch to a
 *   new TAP device holding the gateway address, so the host's kernel reaches each VM at its own
 *   address. The two modes are exclusive (both would own the gateway address).
 *
 * Both return an object with `close()`; call it after `yakima.run()` resolves. When a VM
 * finishes, call `userUplink.guestGone(yakima.net.addressOf(vm.id))` to reset its relayed
 * connections at once.
 */
export * from './checksum.js';
export { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, etherTypeOf, newFrame } from './frame.js';
export * from './ipv4.js';
export * from './arp.js';
export * from './tcp-segment.js';
export * from './tcp-endpoint.js';
export * from './virtual-host.js';
export * from './port-forward.js';
export * from './user-uplink.js';
export { FrameRing, MAX_RING_FRAME, type FrameRingStats } from './frame-ring.js';
export { RelayPort } from './relay-port.js';
export * from './tun.js';
export * from './tap-uplink.js';
export { claimAddress, releaseAddress } from './claims.js';
