import { completeChecksums } from './checksum-offload.js';
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
  /**
   * The IPv4 address (host order) Yakima assigned to this port's VM. ARP requests for it go to
   * this port only instead of being flooded, so a broadcast does not wake (and swap in) every VM.
   */
  readonly ipv4?: number;
  /**
   * The port takes `FRAME_CSUM.PARTIAL` frames as they are (it trusts them as Yakima's own and
   * does not read their checksum fields: the user-mode uplink). For other ports the switch
   * fills such a frame's checksums before delivering it.
   */
  readonly partialChecksums?: boolean;
  /**
   * Take a frame from the switch. The frame must not be modified by the port. `flags`:
   * `FRAME_CSUM` bits, what Yakima knows about its checksums (0: nothing).
   */
  deliver(frame: Uint8Array, flags?: number): void;
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
  /** Ports by their assigned IPv4 address (ARP requests are delivered to the owner only). */
  private readonly ipOwners = new Map<number, SwitchPort>();
  /** Ports without an assigned address (uplinks): they still see every ARP request. */
  private readonly unaddressed = new Set<SwitchPort>();
  readonly stats: SwitchStats = { forwarded: 0, flooded: 0, spoofDrops: 0, unknownDestination: 0 };
  /** Called for each spoofed frame dropped, with the port it came from. */
  onSpoof?: (port: SwitchPort) => void;

  attach(port: SwitchPort): void {
    this.ports.add(port);
    if (port.mac) this.table.set(macKeyOf(port.mac), port);
    if (port.ipv4 !== undefined) this.ipOwners.set(port.ipv4, port);
    else this.unaddressed.add(port);
  }

  detach(port: SwitchPort): void {
    this.ports.delete(port);
    if (port.mac && this.table.get(macKeyOf(port.mac)) === port) this.table.delete(macKeyOf(port.mac));
    else for (const [k, p] of this.table) if (p === port) this.table.delete(k);
    if (port.ipv4 !== undefined && this.ipOwners.get(port.ipv4) === port) this.ipOwners.delete(port.ipv4);
    this.unaddressed.delete(port);
  }

  /**
   * Forward one frame that arrived on `from`, with its `FRAME_CSUM` flags. Returns false when
   * it was dropped.
   */
  forward(from: SwitchPort, frame: Uint8Array, flags = 0): boolean {
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
      const target = this.arpRequestTarget(frame);
      if (target !== undefined) {
        // Only the VM that owns the address (if any) and the uplinks can answer.
        const owner = this.ipOwners.get(target);
        if (owner !== undefined && owner !== from) owner.deliver(frame, flags);
        for (const p of this.unaddressed) if (p !== from) p.deliver(frame, flags);
        this.stats.forwarded++;
        return true;
      }
      for (const p of this.ports) {
        if (p === from) continue;
        if (!p.partialChecksums) flags = completeChecksums(frame, flags);
        p.deliver(frame, flags);
      }
      this.stats.flooded++;
      return true;
    }
    const to = this.table.get(macKey(frame, 0));
    if (!to || to === from) {
      this.stats.unknownDestination++;
      return false;
    }
    to.deliver(frame, to.partialChecksums ? flags : completeChecksums(frame, flags));
    this.stats.forwarded++;
    return true;
  }

  /**
   * The target address (host order) of an ARP request (RFC 826) in `frame`, when ports with
   * assigned addresses exist (else such requests are flooded like any broadcast).
   */
  private arpRequestTarget(frame: Uint8Array): number | undefined {
    // Ethernet type 0x0806, operation 1 (request); the target protocol address is at byte 38.
    if (frame.length < 42 || frame[12] !== 0x08 || frame[13] !== 0x06 || frame[20] !== 0 || frame[21] !== 1) return undefined;
    if (this.ipOwners.size === 0) return undefined;
    return ((frame[38]! << 24) | (frame[39]! << 16) | (frame[40]! << 8) | frame[41]!) >>> 0;
  }
}
