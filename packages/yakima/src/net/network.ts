import { NET_FEATURE } from '@denali/image-format';
import { NicDevice } from './nic.js';
import { PacketScheduler } from './packet-scheduler.js';
import { EthernetSwitch, type SwitchPort } from './switch.js';

/** IPv4 settings of a virtual network; addresses are 32-bit numbers in host order. */
export interface NetworkOptions {
  /**
   * Subnet in CIDR form; default `DEFAULT_SUBNET`. Yakima's gateway takes its first host
   * address (for the default subnet: `DEFAULT_GATEWAY`), VM n the gateway + n.
   */
  subnet?: string;
  /**
   * Offer NIC checksum offload (`NET_FEATURE.CSUM` in `VREG_RO.NET_FEATURES`). Default true.
   * False presents the ABI-1 NIC, which sums nothing: each guest computes and verifies every
   * checksum itself (useful to rule the offload out when debugging a guest's network stack).
   */
  checksumOffload?: boolean;
}

/**
 * Default subnet: a private /13 (524,286 host addresses), so 100,000 VMs and more fit on one
 * switch (issue 8: `denali swap-bench --vms 100000`). VM n is at `DEFAULT_GATEWAY` + n, the
 * same addresses the earlier /16 default gave the first 65,533 VMs (VM 1 at 10.73.0.2).
 */
export const DEFAULT_SUBNET = '10.72.0.0/13';

/** Yakima's address on the default subnet: 10.73.0.1 (the former /16's first host address). */
export const DEFAULT_GATEWAY = '10.73.0.1';

/** Parse "a.b.c.d" into a host-order number. @throws RangeError naming the text. */
export function parseIPv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    throw new RangeError(`'${text}' is not an IPv4 address`);
  }
  return parts.reduce((a, p) => a * 256 + Number(p), 0);
}

/** Host-order number to "a.b.c.d". */
export function formatIPv4(addr: number): string {
  return [24, 16, 8, 0].map((s) => (addr >>> s) & 0xff).join('.');
}

/** Parse "a.b.c.d/len" into network and netmask. @throws RangeError naming the text. */
export function parseCidr(text: string): { network: number; netmask: number; prefix: number } {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text);
  const prefix = m ? Number(m[2]) : NaN;
  if (!m || prefix < 8 || prefix > 30) throw new RangeError(`'${text}' is not a subnet like 10.72.0.0/13 (prefix 8 to 30)`);
  const netmask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { network: (parseIPv4(m[1]!) & netmask) >>> 0, netmask, prefix };
}

/**
 * A switch port fed from another thread (the user-mode uplink's relay worker): its frames wait
 * in a shared ring until the main thread moves them into the switch. Yakima's run loop polls it
 * on every `VirtualNetwork.pump`, and tells it when it stops polling, so that the other thread
 * wakes the main thread only then.
 */
export interface PolledPort {
  /**
   * Move the frames waiting from the other thread into the switch and let the other thread know
   * about frames delivered to this port since the last call. Cheap when there are none (a pair
   * of atomic loads). @returns frames moved into the switch.
   */
  poll(): number;
  /**
   * `true`: a run loop calls `poll` on every pass from now on; `false`: nobody polls (all VMs
   * idle, or Yakima not running), so the port must wake the main thread itself.
   */
  setPolled(polled: boolean): void;
}

/**
 * One Yakima instance's virtual Ethernet subnet: the switch, the packet scheduler and the IPv4
 * plan. VMs' NICs attach as switch ports; uplinks (user-mode relay, TAP) attach as ports too.
 */
export class VirtualNetwork {
  readonly switch = new EthernetSwitch();
  readonly network: number;
  readonly netmask: number;
  /** Yakima's own address on the subnet, the guests' default gateway. */
  readonly gateway: number;
  /** `NET_FEATURE` bits every VM on this network is offered (`NetworkOptions.checksumOffload`). */
  readonly netFeatures: number;
  private readonly ports = new Map<NicDevice, SwitchPort>();
  private readonly nics = new Map<SwitchPort, NicDevice>();
  private readonly polledPorts = new Set<PolledPort>();
  private polling = false;
  readonly scheduler = new PacketScheduler((nic, frame, flags) => {
    const port = this.ports.get(nic);
    if (port) this.switch.forward(port, frame, flags);
  });

  constructor(opts: NetworkOptions = {}) {
    const { network, netmask } = parseCidr(opts.subnet ?? DEFAULT_SUBNET);
    this.network = network;
    this.netmask = netmask;
    this.gateway = (opts.subnet ?? DEFAULT_SUBNET) === DEFAULT_SUBNET ? parseIPv4(DEFAULT_GATEWAY) : (network + 1) >>> 0;
    this.netFeatures = opts.checksumOffload === false ? 0 : NET_FEATURE.CSUM;
  }

  /** The subnet's broadcast address (host order). */
  get broadcast(): number {
    return (this.network | ~this.netmask) >>> 0;
  }

  /** The IPv4 address of VM `vmId` (host order). @throws RangeError when the subnet is full. */
  addressOf(vmId: number): number {
    const addr = this.gateway + vmId;
    if (addr >= this.broadcast) throw new RangeError(`subnet ${formatIPv4(this.network)} has no address left for VM ${vmId}`);
    return addr >>> 0;
  }

  /**
   * Give a VM a NIC on this network. `raiseRx` raises its NET_RX interrupt; `ipv4` (host order)
   * is the address Yakima assigned it, so ARP requests for it reach it alone.
   */
  attachNic(name: string, mac: Uint8Array, raiseRx: () => void, ipv4?: number): NicDevice {
    const nic = new NicDevice(mac, raiseRx, (n) => this.scheduler.ready(n));
    const port: SwitchPort = { name, mac, ipv4, deliver: (f, flags) => nic.deliver(f, flags) };
    this.ports.set(nic, port);
    this.nics.set(port, nic);
    this.switch.attach(port);
    this.switch.onSpoof ??= (p) => {
      const n = this.nics.get(p);
      if (n) n.stats.txSpoofDrops++;
    };
    return nic;
  }

  /** Remove a VM's NIC (the VM finished). Frames still in its Tx FIFO are discarded. */
  detachNic(nic: NicDevice): void {
    const port = this.ports.get(nic);
    if (port) {
      this.switch.detach(port);
      this.nics.delete(port);
    }
    this.ports.delete(nic);
  }

  /**
   * Run the packet scheduler (move queued Tx frames through the switch), then poll the ports fed
   * from other threads (after the scheduler, so frames it just delivered to them are announced
   * in the same pass). @returns frames moved.
   */
  pump(): number {
    let n = this.scheduler.pending ? this.scheduler.pump() : 0;
    if (this.polledPorts.size > 0) for (const p of this.polledPorts) n += p.poll();
    return n;
  }

  /** Poll `port` on every `pump` until `removePolledPort`. It is told the current polling state at once. */
  addPolledPort(port: PolledPort): void {
    this.polledPorts.add(port);
    port.setPolled(this.polling);
  }

  removePolledPort(port: PolledPort): void {
    this.polledPorts.delete(port);
  }

  /**
   * Yakima's run loop calls `pump` on every pass from now on (true), or stops doing so (false:
   * it waits for work or has ended). Ports fed from other threads wake the main thread only
   * while this is false.
   */
  setPolled(polled: boolean): void {
    if (polled === this.polling) return;
    this.polling = polled;
    for (const p of this.polledPorts) {
      // A port's frames can wake Yakima (and so set polling again) from inside its setPolled.
      if (this.polling !== polled) break;
      p.setPolled(polled);
    }
  }
}
