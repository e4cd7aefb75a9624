import { isGroupMac, macKey, macKeyOf } from './ethernet.js';

/** Something attached to the virtual switch: a VM's NIC or an uplink to the host. */
export interface SwitchPort {
  /** Display name for statistics. */
  readonly name: string;
  /**
   * The one source MAC this port may send from (a VM's NIC), or undefined for an uplink,
   * which may carry many addresses and whose addresses the switch learns.
   */
  readonly mac?: Uint8Array;
  /** Take a frame from the switch. The frame must not be modified by the port. */
  deliver(frame: Uint8Array): void;
}

/** Switch-wide counters. */
export interface SwitchStats {
  forwarded: number;
  flooded: number;
  /** Frames whose source MAC is not the sending VM's own (impersonation attempts). */
  spoofDrops: number;
  /** Unicast frames to an address no port owns or was learned on (dropped). */
  unknownDestination: number;
}

/**
 * Yakima's virtual Ethernet switch (paper 3.2): joins every VM of an instance and the uplinks.
 * Forwards unicast by destination MAC (VM MACs are known statically, uplink addresses are
 * learned), floods group addresses to every other port, and drops any frame from a VM port
 * whose source MAC is not that VM's — a VM cannot impersonate another (paper 2.1: the MAC
 * namespace is the only shared one).
 */
export class EthernetSwitch {
  private readonly ports = new Set<SwitchPort>();
  private readonly table = new Map<number, SwitchPort>();
  readonly stats: SwitchStats = { forwarded: 0, flooded: 0, spoofDrops: 0, unknownDestination: 0 };
  /** Called for each spoofed frame dropped, with the port it came from. */
  onSpoof?: (port: SwitchPort) => void;

  attach(port: SwitchPort): void {
    this.ports.add(port);
    if (port.mac) this.table.set(macKeyOf(port.mac), port);
  }

  detach(port: SwitchPort): void {
    this.ports.delete(port);
    for (const [k, p] of this.table) if (p === port) this.table.delete(k);
  }

  /** Forward one frame that arrived on `from`. Returns false when it was dropped. */
  forward(from: SwitchPort, frame: Uint8Array): boolean {
    if (frame.length < 14) return false;
    const src = macKey(frame, 6);
    if (from.mac) {
      if (src !== macKeyOf(from.mac)) {
        this.stats.spoofDrops++;
        this.onSpoof?.(from);
        return false;
      }
    } else if (!isGroupMac(frame, 6) && this.table.get(src)?.mac === undefined) {
      // Learn uplink addresses, but never let an uplink take over a VM's MAC.
      this.table.set(src, from);
    }
    if (isGroupMac(frame, 0)) {
      for (const p of this.ports) if (p !== from) p.deliver(frame);
      this.stats.flooded++;
      return true;
    }
    const to = this.table.get(macKey(frame, 0));
    if (!to || to === from) {
      this.stats.unknownDestination++;
      return false;
    }
    to.deliver(frame);
    this.stats.forwarded++;
    return true;
  }
}
