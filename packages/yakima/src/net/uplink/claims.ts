import type { VirtualNetwork } from '../network.js';
import { formatIPv4 } from '../network.js';

const claims = new WeakMap<VirtualNetwork, Map<number, string>>();

/**
 * Record that `owner` answers for IPv4 address `ip` (host order) on `net`: the user-mode
 * virtual host and a TAP uplink's host side must not both claim the gateway.
 * @throws Error naming both owners when the address is taken.
 */
export function claimAddress(net: VirtualNetwork, ip: number, owner: string): void {
  let m = claims.get(net);
  if (!m) claims.set(net, (m = new Map()));
  const prev = m.get(ip);
  if (prev !== undefined) {
    throw new Error(`${owner} cannot use ${formatIPv4(ip)}: ${prev} already does (--net user and --net tap are exclusive)`);
  }
  m.set(ip, owner);
}

/** Undo `claimAddress`. */
export function releaseAddress(net: VirtualNetwork, ip: number): void {
  claims.get(net)?.delete(ip);
}
