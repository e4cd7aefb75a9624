/** ARP requests go to the VM owning the address and the uplinks, not to every VM (so they do not swap every VM in). */
import { describe, expect, it } from 'vitest';
import { EthernetSwitch, type SwitchPort } from '../../src/net/switch.js';

const mac = (n: number): Uint8Array => Uint8Array.of(2, 0xde, 0x4e, 0, 0, n);

/** An Ethernet/IPv4 ARP request (RFC 826) from `sha`/`spa` asking for `tpa`. */
function arpRequest(sha: Uint8Array, spa: number, tpa: number): Uint8Array {
  const f = new Uint8Array(60);
  f.fill(0xff, 0, 6);
  f.set(sha, 6);
  f.set([0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1], 12);
  f.set(sha, 22);
  new DataView(f.buffer).setUint32(28, spa);
  new DataView(f.buffer).setUint32(38, tpa);
  return f;
}

describe('ARP requests on the switch', () => {
  it('reach only the owner of the target address and the uplinks; other broadcasts flood', () => {
    const sw = new EthernetSwitch();
    const got = new Map<string, number>();
    const port = (name: string, n?: number): SwitchPort => {
      const p: SwitchPort = { name, mac: n === undefined ? undefined : mac(n), ipv4: n === undefined ? undefined : 0x0a490000 + n, deliver: () => got.set(name, (got.get(name) ?? 0) + 1) };
      sw.attach(p);
      return p;
    };
    const vms = [2, 3, 4, 5].map((n) => port(`vm${n}`, n));
    const uplink = port('uplink');
    // The uplink asks for VM 4: only VM 4 hears it.
    sw.forward(uplink, arpRequest(Uint8Array.of(2, 0xde, 0x4e, 0xff, 0xff, 0xfe), 0x0a490001, 0x0a490004));
    expect(Object.fromEntries(got)).toEqual({ vm4: 1 });
    got.clear();
    // VM 2 asks for the gateway (no VM owns it): only the uplink hears it.
    sw.forward(vms[0]!, arpRequest(mac(2), 0x0a490002, 0x0a490001));
    expect(Object.fromEntries(got)).toEqual({ uplink: 1 });
    got.clear();
    // VM 2 asks for VM 3: VM 3 and the uplink.
    sw.forward(vms[0]!, arpRequest(mac(2), 0x0a490002, 0x0a490003));
    expect(Object.fromEntries(got)).toEqual({ vm3: 1, uplink: 1 });
    got.clear();
    // Any other broadcast still floods.
    const other = arpRequest(mac(2), 0x0a490002, 0x0a490003);
    other[13] = 0x00; // IPv4 ethertype: not ARP
    sw.forward(vms[0]!, other);
    expect(Object.fromEntries(got)).toEqual({ vm3: 1, vm4: 1, vm5: 1, uplink: 1 });
  });
});
