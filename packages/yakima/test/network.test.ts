import { describe, expect, it } from 'vitest';
import { FRAME_DESC, HYPERCALL, HYPERCALL_PORT_BASE, IRQ, LAYOUT, NET_ARGS, VREG_RO, VREG_RW } from '@denali/image-format';
import { Yakima } from '../src/control/yakima.js';
import type { VcpuExit } from '../src/cpu/vcpu.js';
import { NIC_FIFO_FRAMES, NicDevice } from '../src/net/nic.js';
import { EthernetSwitch, type SwitchPort } from '../src/net/switch.js';
import { formatIPv4, parseCidr, VirtualNetwork } from '../src/net/network.js';
import { ScriptedVcpu, tinyImage } from './scripted-vcpu.js';

const mac = (n: number): Uint8Array => Uint8Array.of(2, 0, 0, 0, 0, n);
function frame(dst: Uint8Array, src: Uint8Array, payload = 'hi'): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x08;
  f.set(Buffer.from(payload), 14);
  return f;
}
const BROADCAST = new Uint8Array(6).fill(0xff);

function port(name: string, m?: Uint8Array): SwitchPort & { got: Uint8Array[] } {
  const got: Uint8Array[] = [];
  return { name, mac: m, got, deliver: (f) => got.push(f) };
}

describe('EthernetSwitch', () => {
  it('forwards by destination MAC, floods broadcast, and drops spoofed sources', () => {
    const sw = new EthernetSwitch();
    const a = port('a', mac(1));
    const b = port('b', mac(2));
    const c = port('c', mac(3));
    [a, b, c].forEach((p) => sw.attach(p));
    expect(sw.forward(a, frame(mac(2), mac(1)))).toBe(true);
    expect(b.got).toHaveLength(1);
    expect(c.got).toHaveLength(0);
    sw.forward(a, frame(BROADCAST, mac(1)));
    expect([a.got.length, b.got.length, c.got.length]).toEqual([0, 2, 1]);
    // a claims to be c: dropped and counted, nobody receives it.
    expect(sw.forward(a, frame(mac(2), mac(3)))).toBe(false);
    expect(sw.stats.spoofDrops).toBe(1);
    expect(b.got).toHaveLength(2);
    expect(sw.forward(a, frame(mac(9), mac(1)))).toBe(false);
    expect(sw.stats.unknownDestination).toBe(1);
  });

  it('learns uplink addresses but never lets an uplink take a VM MAC', () => {
    const sw = new EthernetSwitch();
    const vm = port('vm', mac(1));
    const up = port('uplink');
    sw.attach(vm);
    sw.attach(up);
    sw.forward(up, frame(mac(1), mac(0x42)));
    expect(vm.got).toHaveLength(1);
    sw.forward(vm, frame(mac(0x42), mac(1)));
    expect(up.got).toHaveLength(1);
    sw.forward(up, frame(mac(0x42), mac(1))); // uplink forges the VM's MAC as source
    sw.forward(up, frame(mac(1), mac(0x43)));
    expect(vm.got).toHaveLength(2);
  });
});

describe('NicDevice', () => {
  it('bounds its FIFOs and counts every drop', () => {
    let irqs = 0;
    const nic = new NicDevice(mac(1), () => irqs++, () => {});
    for (let i = 0; i < NIC_FIFO_FRAMES + 5; i++) nic.deliver(frame(mac(1), mac(2)));
    expect(nic.rx.length).toBe(NIC_FIFO_FRAMES);
    expect(nic.stats.rxFifoDrops).toBe(5);
    expect(irqs).toBe(NIC_FIFO_FRAMES);
    let taken = 0;
    while (nic.transmit(frame(mac(2), mac(1)))) taken++;
    expect(taken).toBe(NIC_FIFO_FRAMES);
    expect(nic.stats.txFifoFull).toBe(1);
    expect(nic.transmit(new Uint8Array(10))).toBe(true);
    expect(nic.stats.txBadLength).toBe(1);
  });
});

describe('VirtualNetwork addressing', () => {
  it('hands out addresses in the default /13 with Yakima as gateway, room for 100,000 VMs and more', () => {
    const net = new VirtualNetwork();
    expect(formatIPv4(net.gateway)).toBe('10.73.0.1');
    expect(formatIPv4(net.netmask)).toBe('255.248.0.0');
    expect(formatIPv4(net.addressOf(1))).toBe('10.73.0.2');
    expect(formatIPv4(net.addressOf(300))).toBe('10.73.1.45');
    expect(formatIPv4(net.addressOf(100_000))).toBe('10.74.134.161');
    expect(formatIPv4(net.addressOf(458_749))).toBe('10.79.255.254');
    expect(() => net.addressOf(458_750)).toThrow(/no address left/);
    expect(formatIPv4(new VirtualNetwork({ subnet: '192.168.0.0/16' }).addressOf(1))).toBe('192.168.0.2');
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/not a subnet/);
    expect(() => new VirtualNetwork({ subnet: '10.0.0.0/30' }).addressOf(3)).toThrow(/no address left/);
  });
});

describe('NET_SEND / NET_RECV hypercalls between two VMs', () => {
  it('moves a batch of frames from one VM to another, raising one NET_RX batch', async () => {
    const ARGS = 0x3000;
    const DESCS = 0x3100;
    const BUFS = 0x4000;
    const out = (n: number): VcpuExit => ({ kind: 'io-out', port: HYPERCALL_PORT_BASE + n, value: ARGS, size: 4 });
    const received: string[] = [];
    let pendingAtRecv = 0;
    let sentDone = -1;
    const steps = new Map<number, number>();
    const y = new Yakima({
      network: true,
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, () => {
          const id = mem.readU32(LAYOUT.VREG_RO_BASE + VREG_RO.VM_ID);
          const step = steps.get(id) ?? 0;
          steps.set(id, step + 1);
          const myMac = mem.view(LAYOUT.VREG_RO_BASE + VREG_RO.MAC, 6);
          if (id === 1) {
            if (step === 0) {
              const peer = Uint8Array.of(0x02, 0xde, 0x4e, 0, 0, 2);
              // Three good frames, one spoofed, one too short: one virtual instruction.
              const frames = [frame(peer, myMac, 'one'), frame(peer, myMac, 'two'), frame(peer, mac(7), 'evil'), new Uint8Array(5), frame(peer, myMac, 'three')];
              frames.forEach((f, i) => {
                mem.u8.set(f, BUFS + i * 2048);
                mem.writeU32(DESCS + i * FRAME_DESC.SIZE + FRAME_DESC.ADDR, BUFS + i * 2048);
                mem.writeU32(DESCS + i * FRAME_DESC.SIZE + FRAME_DESC.LEN, f.length);
              });
              mem.writeU32(ARGS + NET_ARGS.DESCS, DESCS);
              mem.writeU32(ARGS + NET_ARGS.COUNT, frames.length);
              return out(HYPERCALL.NET_SEND);
            }
            sentDone = mem.readU32(ARGS + NET_ARGS.DONE);
            mem.writeU32(ARGS, 0);
            return out(HYPERCALL.EXIT);
          }
          // VM 2: idle until NET_RX, then receive everything.
          if (step === 0) {
            mem.writeU32(ARGS, 0xffffffff);
            mem.writeU32(ARGS + 4, 0xffffffff);
            return out(HYPERCALL.IDLE);
          }
          if (step === 1) {
            pendingAtRecv = mem.readU32(LAYOUT.VREG_RW_BASE + VREG_RW.PENDING);
            for (let i = 0; i < 8; i++) {
              mem.writeU32(DESCS + i * 8, BUFS + i * 2048);
              mem.writeU32(DESCS + i * 8 + 4, 2048);
            }
            mem.writeU32(ARGS + NET_ARGS.DESCS, DESCS);
            mem.writeU32(ARGS + NET_ARGS.COUNT, 8);
            return out(HYPERCALL.NET_RECV);
          }
          const n = mem.readU32(ARGS + NET_ARGS.DONE);
          for (let i = 0; i < n; i++) {
            const len = mem.readU32(DESCS + i * 8 + 4);
            received.push(Buffer.from(mem.view(BUFS + i * 2048 + 14, len - 14)).toString());
          }
          mem.writeU32(ARGS, 0);
          return out(HYPERCALL.EXIT);
        }),
    });
    const a = y.addVm(tinyImage('a'));
    const b = y.addVm(tinyImage('b'));
    await y.run();
    expect(sentDone).toBe(5);
    expect(received).toEqual(['one', 'two', 'three']);
    expect(pendingAtRecv & IRQ.NET_RX).toBe(IRQ.NET_RX);
    expect(a.nic!.stats).toMatchObject({ txFrames: 4, txSpoofDrops: 1, txBadLength: 1 });
    expect(b.nic!.stats).toMatchObject({ rxFrames: 3, rxFifoDrops: 0 });
    expect(y.net!.switch.stats.spoofDrops).toBe(1);
  });
});

describe('frames cross the switch once per scheduling round (emulator: one VM at a time)', () => {
  const ARGS = 0x3000;
  const DESCS = 0x3100;
  const BUFS = 0x4000;
  const out = (n: number): VcpuExit => ({ kind: 'io-out', port: HYPERCALL_PORT_BASE + n, value: ARGS, size: 4 });
  const PEER = mac(9);

  /** VM 1's script: send one frame to PEER, then sleep in IDLE for good. Other VMs run `other`. */
  function yakimaWith(other: (cpu: ScriptedVcpu, max: number, step: number) => VcpuExit): Yakima {
    const steps = new Map<number, number>();
    return new Yakima({
      network: true,
      quantumInstructions: 1000,
      createVcpu: (mem) =>
        new ScriptedVcpu(mem, (cpu, max) => {
          const id = mem.readU32(LAYOUT.VREG_RO_BASE + VREG_RO.VM_ID);
          const step = steps.get(id) ?? 0;
          steps.set(id, step + 1);
          cpu.instructionsRetired += 1;
          if (id !== 1) return other(cpu, max, step);
          if (step === 0) {
            const f = frame(PEER, mem.view(LAYOUT.VREG_RO_BASE + VREG_RO.MAC, 6), 'hello');
            mem.u8.set(f, BUFS);
            mem.writeU32(DESCS + FRAME_DESC.ADDR, BUFS);
            mem.writeU32(DESCS + FRAME_DESC.LEN, f.length);
            mem.writeU32(ARGS + NET_ARGS.DESCS, DESCS);
            mem.writeU32(ARGS + NET_ARGS.COUNT, 1);
            return out(HYPERCALL.NET_SEND);
          }
          mem.writeU32(ARGS, 0xffffffff);
          mem.writeU32(ARGS + 4, 0xffffffff);
          return out(HYPERCALL.IDLE);
        }),
    });
  }

  it('a frame leaves after the other runnable VMs have had their turn, not between them', async () => {
    const peer = port('peer', PEER);
    const seenByBusyVm: number[] = [];
    const y = yakimaWith((cpu, max, step) => {
      seenByBusyVm.push(peer.got.length);
      if (step < 3) {
        cpu.instructionsRetired += max;
        return { kind: 'quantum' };
      }
      return { kind: 'halt' };
    });
    y.net!.switch.attach(peer);
    const sender = y.addVm(tinyImage('sender'));
    y.addVm(tinyImage('busy'));
    const running = y.run();
    const deadline = performance.now() + 2000;
    await new Promise<void>((r) => {
      const poll = (): void => ((peer.got.length > 0 && sender.state === 'idle') || performance.now() > deadline ? r() : void setTimeout(poll, 5));
      poll();
    });
    y.stop();
    await running;
    // The busy VM ran four times after the sender had queued its frame, and never saw it gone.
    expect(seenByBusyVm).toEqual([0, 0, 0, 0]);
    expect(peer.got.map((f) => Buffer.from(f.subarray(14)).toString())).toEqual(['hello']);
    expect(sender.nic!.stats.txFrames).toBe(1);
  });

  it(`a VM that never stops being runnable holds other VMs' frames back for at most about one quantum of time`, async () => {
    const peer = port('peer', PEER);
    let spins = 0;
    let spinsAtArrival = -1;
    const y = yakimaWith((cpu, max) => {
      // Each quantum of the spinner takes 1 ms of host time.
      const until = performance.now() + 1;
      while (performance.now() < until);
      spins++;
      cpu.instructionsRetired += max;
      return { kind: 'quantum' };
    });
    const arrived = new Promise<number>((r) => {
      peer.deliver = (f) => {
        peer.got.push(f);
        spinsAtArrival = spins;
        r(performance.now());
      };
    });
    y.net!.switch.attach(peer);
    y.addVm(tinyImage('sender'));
    y.addVm(tinyImage('spinner'));
    const t0 = performance.now();
    const running = y.run();
    const timeout = setTimeout(() => y.stop(), 5000);
    const at = await Promise.race([arrived, running.then(() => -1)]);
    clearTimeout(timeout);
    y.stop();
    await running;
    expect(at).toBeGreaterThan(0); // it arrived while the spinner still spun
    expect(spinsAtArrival).toBeGreaterThan(1); // held for the round, not sent at once
    expect(at - t0).toBeLessThan(1000); // ROUND_MAX_MS is 10 ms; generous for a loaded host
  });
});
