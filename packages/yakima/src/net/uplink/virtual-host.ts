import { randomFillSync } from 'node:crypto';
import { ETH_HEADER } from '../ethernet.js';
import { formatIPv4 } from '../network.js';
import type { EthernetSwitch, SwitchPort } from '../switch.js';
import { ARP_OP, ArpCache, buildArpFrame, parseArp, type ArpCacheOptions } from './arp.js';
import { FRAME_CSUM } from '../checksum-offload.js';
import { internetChecksum } from './checksum.js';
import { BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, etherTypeOf, newFrame, wr16 } from './frame.js';
import { IPPROTO, IPV4_HEADER, parseIPv4Packet, writeIPv4Header } from './ipv4.js';
import { TcpConnection, resolveTcpOptions, type TcpCounters, type TcpEndpointOptions, type TcpLink } from './tcp-endpoint.js';
import { TCP_FLAG, buildTcpFrame, parseTcpSegment, seqAdd, type TcpSegment } from './tcp-segment.js';

/** MAC of Yakima's user-mode virtual host: locally administered, unicast. */
export const VIRTUAL_HOST_MAC = new Uint8Array([0x02, 0xde, 0x4e, 0xff, 0xff, 0xfe]);

/** First ephemeral port of active opens (RFC 6335 dynamic range 49152–65535). */
export const EPHEMERAL_FIRST = 49_152;
/** Last ephemeral port. */
export const EPHEMERAL_LAST = 65_535;

/**
 * What a `VirtualHost` needs of its network (IPv4 plan in host order, and a switch): a
 * `VirtualNetwork`, or in the user-mode uplink's relay worker a stand-in whose `forward`
 * puts frames into the ring to the main thread.
 */
export interface VirtualHostNet {
  readonly network: number;
  readonly netmask: number;
  readonly gateway: number;
  readonly switch: Pick<EthernetSwitch, 'attach' | 'detach' | 'forward'>;
}

/**
 * Check that `ip` (host order) can be a host's address on `net`'s subnet.
 * @throws RangeError naming the address when it is outside the subnet or is its network/broadcast address.
 */
export function checkHostAddress(net: VirtualHostNet, ip: number): void {
  const broadcast = (net.network | ~net.netmask) >>> 0;
  if (((ip & net.netmask) >>> 0) !== net.network || ip === net.network || ip === broadcast) {
    throw new RangeError(`virtual host address ${formatIPv4(ip)} is not a host address of the virtual subnet`);
  }
}

/** Options of `VirtualHost`. */
export interface VirtualHostOptions {
  /** Our MAC. Default `VIRTUAL_HOST_MAC`. */
  mac?: Uint8Array;
  /** Our IPv4 address (host order). Default the network's gateway. Must be inside the subnet. */
  ip?: number;
  /** Switch port name. Default 'user-uplink'. */
  name?: string;
  /** TCP tunables for every connection. */
  tcp?: TcpEndpointOptions;
  /** ARP cache tunables. */
  arp?: ArpCacheOptions;
  /** Answer ICMP echo requests to our address (RFC 792). Default true. */
  answerPing?: boolean;
  /** Most simultaneous connections (further opens fail / SYNs are refused). Default 4096. */
  maxConnections?: number;
  /** Frames waiting to be processed before new ones are dropped. Default 8192. */
  maxQueuedFrames?: number;
  /**
   * MACs known in advance (Yakima assigns every VM's: `defaultMac`), like static ARP entries:
   * a packet to such an address goes out at once, preceded the first time (and whenever the
   * cache entry has expired or been evicted) by a unicast ARP request to that MAC
   * (RFC 1122 2.3.2.1), from which the peer learns ours. So no broadcast ARP is needed in
   * either direction, which would wake every VM on the switch. Return undefined for others.
   */
  knownMac?: (ip: number) => Uint8Array | undefined;
}

/** Counters of a virtual host. Bytes are TCP payload bytes. */
export interface VirtualHostStats {
  framesIn: number;
  framesOut: number;
  /** Connections opened (either way), currently open, refused or timed out at open, reset by the peer. */
  connections: { opened: number; active: number; refused: number; reset: number; timedOut: number };
  arpRequestsAnswered: number;
  pingsAnswered: number;
  tcp: TcpCounters;
  /** Dropped input, by reason (malformed headers, bad checksums, fragments, unknown protocols …). */
  drops: Record<string, number>;
}

/** A `VirtualHostStats` with every counter at zero. */
export function newVirtualHostStats(): VirtualHostStats {
  return {
    framesIn: 0,
    framesOut: 0,
    connections: { opened: 0, active: 0, refused: 0, reset: 0, timedOut: 0 },
    arpRequestsAnswered: 0,
    pingsAnswered: 0,
    tcp: {
      retransmits: 0,
      fastRetransmits: 0,
      timeouts: 0,
      zeroWindowProbes: 0,
      zeroWindowsAdvertised: 0,
      unacceptable: 0,
      outOfOrderQueued: 0,
      outOfOrderDropped: 0,
      challengeAcks: 0,
      bytesAcked: 0,
      bytesReceived: 0,
      delayedAcks: 0,
    },
    drops: {},
  };
}

/** Handler of new passive connections on a listening port. */
export type TcpAcceptHandler = (conn: TcpConnection) => void;

/** Options of `VirtualHost.connect`. */
export interface ConnectOptions {
  /** Our port; default the next free ephemeral port. */
  localPort?: number;
  /** Per-connection TCP tunables (merged over the host's). */
  tcp?: TcpEndpointOptions;
}

/**
 * A small user-space IPv4 host on the virtual switch (Yakima's half of the user-mode uplink):
 * ARP (RFC 826) for its address and a resolver cache for peers, strict IPv4 input (RFC 791;
 * no fragments, no options needed), ICMP echo replies (RFC 792) and a TCP endpoint
 * (RFC 9293) with active and passive opens. It is a `SwitchPort` with its own MAC.
 *
 * An active open to an address that does not answer ARP (RFC 826; 4 requests 500 ms apart by
 * default) fails with 'refused' at once rather than after all SYN retransmissions.
 *
 * Input is queued by `deliver` and processed in a `setImmediate` batch, so frames sent while
 * processing never re-enter the switch recursively; ACKs are coalesced per batch. Anything
 * malformed is dropped and counted in `stats.drops`; no input can throw out of `deliver`.
 */
export class VirtualHost implements SwitchPort {
  readonly name: string;
  readonly mac: Uint8Array;
  /** Our IPv4 address, host order. */
  readonly ip: number;
  readonly stats: VirtualHostStats;
  /** Frames whose checksums Yakima has yet to fill are taken as they are (see `SwitchPort`). */
  readonly partialChecksums = true;
  private readonly tcpOpts: TcpEndpointOptions;
  private readonly arp: ArpCache;
  private readonly conns = new Map<string, TcpConnection>();
  private readonly listeners = new Map<number, TcpAcceptHandler>();
  private readonly touched = new Set<TcpConnection>();
  private rxQueue: Uint8Array[] = [];
  /** `FRAME_CSUM` flags of the frames in `rxQueue`. */
  private rxFlags: number[] = [];
  private scheduled: ReturnType<typeof setImmediate> | undefined;
  private arpTimer: ReturnType<typeof setTimeout> | undefined;
  private nextPort = EPHEMERAL_FIRST + Math.floor(Math.random() * (EPHEMERAL_LAST - EPHEMERAL_FIRST));
  private ipId = 0;
  private attached = false;
  private readonly maxConnections: number;
  private readonly maxQueuedFrames: number;
  private readonly answerPing: boolean;
  private readonly knownMac: ((ip: number) => Uint8Array | undefined) | undefined;
  private readonly link: TcpLink;

  /** @throws RangeError when `ip` is outside the network's subnet or is its network/broadcast address. */
  constructor(
    private readonly net: VirtualHostNet,
    opts: VirtualHostOptions = {},
  ) {
    this.name = opts.name ?? 'user-uplink';
    this.mac = (opts.mac ?? VIRTUAL_HOST_MAC).slice(0, 6);
    this.ip = opts.ip ?? net.gateway;
    checkHostAddress(net, this.ip);
    this.tcpOpts = opts.tcp ?? {};
    resolveTcpOptions(this.tcpOpts);
    this.maxConnections = opts.maxConnections ?? 4096;
    this.maxQueuedFrames = opts.maxQueuedFrames ?? 8192;
    this.answerPing = opts.answerPing ?? true;
    this.knownMac = opts.knownMac;
    this.stats = newVirtualHostStats();
    const tcp = this.stats.tcp;
    this.arp = new ArpCache(
      (ip) => this.sendArpRequest(ip),
      opts.arp,
      (ip) => this.unreachable(ip),
    );
    this.link = {
      counters: tcp,
      output: (seg, conn) => this.sendTcp(conn.remoteIp, seg),
      closed: (c) => this.forget(c),
      aborted: (_c, reason) => {
        const k = reason === 'reset' ? 'reset' : reason === 'refused' ? 'refused' : 'timedOut';
        this.stats.connections[k]++;
      },
    };
  }

  /** Attach to the network's switch. Idempotent. */
  attach(): void {
    if (this.attached) return;
    this.net.switch.attach(this);
    this.attached = true;
  }

  /** Number of open connections (any state but CLOSED). */
  get connectionCount(): number {
    return this.conns.size;
  }

  /** True while any timer or queued work is pending (tests check idleness). */
  get busy(): boolean {
    return this.conns.size > 0 || this.arpTimer !== undefined || this.scheduled !== undefined;
  }

  /**
   * Reset every connection (RST to peers), stop timers and detach from the switch.
   * Connections' `onClose` handlers run.
   */
  close(): void {
    for (const c of [...this.conns.values()]) c.abort();
    this.listeners.clear();
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.arpTimer !== undefined) clearTimeout(this.arpTimer);
    this.arpTimer = undefined;
    this.rxQueue = [];
    this.rxFlags = [];
    this.arp.clear();
    if (this.attached) this.net.switch.detach(this);
    this.attached = false;
  }

  /**
   * Reset every connection with peer `ip` (host order), e.g. when that VM finished: RST is sent
   * (harmless if nobody listens) and the connections' `onClose` run. @returns how many.
   */
  abortPeer(ip: number): number {
    let n = 0;
    for (const c of [...this.conns.values()]) {
      if (c.remoteIp === ip) {
        c.abort();
        n++;
      }
    }
    return n;
  }

  /** ARP gave up on `ip`: opens to it fail now ('refused') instead of after SYN retries. */
  private unreachable(ip: number): void {
    for (const c of [...this.conns.values()]) if (c.remoteIp === ip && c.state === 'SYN-SENT') c.destroy('refused');
  }

  /** Accept connections to `port` (passive open, RFC 9293 3.5). @throws RangeError for a bad port or one taken. */
  listen(port: number, onAccept: TcpAcceptHandler): void {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`port ${port} out of range 1..65535`);
    if (this.listeners.has(port)) throw new RangeError(`port ${port} is already listening`);
    this.listeners.set(port, onAccept);
  }

  /** Stop accepting on `port` (existing connections stay). */
  unlisten(port: number): void {
    this.listeners.delete(port);
  }

  /**
   * Active open to `ip:port` (host order) from our address: sends SYN with the MSS option once
   * the peer's MAC is resolved. Set the handlers on the returned connection right away.
   * @throws RangeError for a bad port, an address outside the subnet, or when `maxConnections`
   * connections are open or no ephemeral port is free.
   */
  connect(ip: number, port: number, opts: ConnectOptions = {}): TcpConnection {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`port ${port} out of range 1..65535`);
    if (((ip & this.net.netmask) >>> 0) !== this.net.network) throw new RangeError(`${formatIPv4(ip)} is not on the virtual subnet`);
    if (this.conns.size >= this.maxConnections) throw new RangeError(`too many connections (${this.maxConnections})`);
    let local = opts.localPort;
    if (local === undefined) {
      for (let i = 0; i <= EPHEMERAL_LAST - EPHEMERAL_FIRST; i++) {
        const p = this.nextPort;
        this.nextPort = p >= EPHEMERAL_LAST ? EPHEMERAL_FIRST : p + 1;
        if (!this.conns.has(key(ip, port, p))) {
          local = p;
          break;
        }
      }
      if (local === undefined) throw new RangeError('no free ephemeral port');
    } else if (this.conns.has(key(ip, port, local))) throw new RangeError(`port ${local} already connected to ${formatIPv4(ip)}:${port}`);
    const k = key(ip, port, local);
    this.attach();
    const conn = new TcpConnection(this.link, local, ip, port, randomIss(), { ...this.tcpOpts, ...opts.tcp });
    this.conns.set(k, conn);
    this.stats.connections.opened++;
    this.stats.connections.active = this.conns.size;
    return conn;
  }

  /**
   * Take a frame from the switch (queued; processed in a batch). `flags` (`FRAME_CSUM`): its
   * checksums are known correct, or Yakima's to fill; either way they are not verified.
   * Never throws.
   */
  deliver(frame: Uint8Array, flags = 0): void {
    if (this.rxQueue.length >= this.maxQueuedFrames) {
      this.drop('rxQueueFull');
      return;
    }
    this.rxQueue.push(frame);
    this.rxFlags.push(flags);
    this.scheduled ??= setImmediate(() => this.processBatch());
  }

  /** Process queued frames now (tests; normally run by `setImmediate`). */
  processBatch(): void {
    if (this.scheduled !== undefined) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    const batch = this.rxQueue;
    const flags = this.rxFlags;
    this.rxQueue = [];
    this.rxFlags = [];
    for (let i = 0; i < batch.length; i++) {
      try {
        this.handleFrame(batch[i]!, flags[i]!);
      } catch (e) {
        // A bug here must not take Yakima down; count it.
        this.drop('internalError');
        if (process.env['DENALI_UPLINK_DEBUG']) console.error(e);
      }
    }
    for (const c of this.touched) {
      try {
        c.flush();
      } catch {
        this.drop('internalError');
      }
    }
    this.touched.clear();
  }

  private drop(reason: string): void {
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
  }

  /** Send a frame; `flags` (`FRAME_CSUM`) say what is known of its checksums. */
  private send(frame: Uint8Array, flags = 0): void {
    this.stats.framesOut++;
    this.net.switch.forward(this, frame, flags);
  }

  private handleFrame(f: Uint8Array, flags: number): void {
    this.stats.framesIn++;
    const type = etherTypeOf(f);
    if (type === ETHERTYPE_ARP) return this.handleArp(f);
    if (type !== ETHERTYPE_IPV4) return this.drop(type < 0 ? 'ethTruncated' : 'ethOtherProtocol');
    // VALID: Yakima built or checked them; PARTIAL: a guest's TX_CSUM frame, Yakima's to fill,
    // which this host would only compute to verify again.
    const verified = (flags & (FRAME_CSUM.VALID | FRAME_CSUM.PARTIAL)) !== 0;
    const p = parseIPv4Packet(f, ETH_HEADER, verified);
    if (typeof p === 'string') return this.drop(p);
    if (p.dst !== this.ip) return this.drop('ipNotForUs');
    if (((p.src & this.net.netmask) >>> 0) !== this.net.network) return this.drop('ipSourceOffSubnet');
    if (p.protocol === IPPROTO.TCP) return this.handleTcp(p.src, p.payload, verified);
    if (p.protocol === IPPROTO.ICMP) return this.handleIcmp(f, p.src, p.payload);
    this.drop('ipOtherProtocol');
  }

  private handleArp(f: Uint8Array): void {
    const a = parseArp(f, ETH_HEADER);
    if (!a) return this.drop('arpMalformed');
    if (a.senderIp === this.ip) return this.drop('arpAddressConflict');
    const valid = a.senderIp !== 0 && ((a.senderIp & this.net.netmask) >>> 0) === this.net.network && !(a.senderMac[0]! & 1);
    if (a.targetIp !== this.ip) {
      if (valid) this.arp.learn(a.senderIp, a.senderMac, true);
      return;
    }
    if (valid) this.arp.learn(a.senderIp, a.senderMac);
    if (a.op === ARP_OP.REQUEST) {
      this.stats.arpRequestsAnswered++;
      this.send(buildArpFrame(a.senderMac, this.mac, { op: ARP_OP.REPLY, senderMac: this.mac, senderIp: this.ip, targetMac: a.senderMac, targetIp: a.senderIp }));
    }
  }

  private sendArpRequest(ip: number): void {
    this.send(buildArpFrame(BROADCAST_MAC, this.mac, { op: ARP_OP.REQUEST, senderMac: this.mac, senderIp: this.ip, targetMac: new Uint8Array(6), targetIp: ip }));
    if (this.arpTimer === undefined) this.armArpTimer();
  }

  private armArpTimer(): void {
    this.arpTimer = setTimeout(() => {
      this.arpTimer = undefined;
      this.arp.tick();
      if (this.arp.hasPending) this.armArpTimer();
    }, this.arp.retryMs);
  }

  /** Send an IPv4 frame built for the destination's MAC, resolving it first if needed. */
  private sendIp(dst: number, build: (mac: Uint8Array) => Uint8Array, flags = 0): void {
    const known = this.knownMac && !this.arp.lookup(dst) ? this.knownMac(dst) : undefined;
    if (known) {
      this.send(buildArpFrame(known, this.mac, { op: ARP_OP.REQUEST, senderMac: this.mac, senderIp: this.ip, targetMac: known, targetIp: dst }));
      this.arp.learn(dst, known);
    }
    if (!this.arp.resolve(dst, (mac) => this.send(build(mac), flags))) this.drop('arpQueueFull');
  }

  private handleIcmp(f: Uint8Array, src: number, icmp: Uint8Array): void {
    if (icmp.length < 8) return this.drop('icmpTruncated');
    if (internetChecksum(icmp, 0, icmp.length) !== 0) return this.drop('icmpBadChecksum');
    if (icmp[0] !== 8 || icmp[1] !== 0) return this.drop('icmpOther');
    if (!this.answerPing) return;
    const srcMac = f.slice(6, 12);
    const reply = newFrame(srcMac, this.mac, ETHERTYPE_IPV4, IPV4_HEADER + icmp.length);
    writeIPv4Header(reply, ETH_HEADER, { src: this.ip, dst: src, protocol: IPPROTO.ICMP, payloadLength: icmp.length, id: this.ipId++ });
    const o = ETH_HEADER + IPV4_HEADER;
    reply.set(icmp, o);
    reply[o] = 0; // echo reply
    wr16(reply, o + 2, 0);
    wr16(reply, o + 2, internetChecksum(reply, o, icmp.length));
    this.stats.pingsAnswered++;
    this.send(reply);
  }

  private handleTcp(src: number, b: Uint8Array, checksumVerified: boolean): void {
    const seg = parseTcpSegment(b, src, this.ip, checksumVerified);
    if (typeof seg === 'string') return this.drop(seg);
    const k = key(src, seg.srcPort, seg.dstPort);
    const conn = this.conns.get(k);
    if (conn) {
      this.touched.add(conn);
      conn.input(seg);
      return;
    }
    const f = seg.flags;
    if (f & TCP_FLAG.RST) return this.drop('tcpNoConnection');
    const accept = this.listeners.get(seg.dstPort);
    if (accept && f & TCP_FLAG.SYN && !(f & TCP_FLAG.ACK)) {
      if (this.conns.size >= this.maxConnections) {
        this.drop('tcpTooManyConnections');
        return this.rejectSegment(src, seg);
      }
      const c = new TcpConnection(this.link, seg.dstPort, src, seg.srcPort, randomIss(), this.tcpOpts, seg);
      this.conns.set(k, c);
      this.stats.connections.opened++;
      this.stats.connections.active = this.conns.size;
      accept(c);
      return;
    }
    this.drop('tcpNoConnection');
    this.rejectSegment(src, seg);
  }

  /** RST for a segment to no connection (RFC 9293 3.10.7.1). */
  private rejectSegment(src: number, seg: TcpSegment): void {
    const len = seg.payload.length + (seg.flags & TCP_FLAG.SYN ? 1 : 0) + (seg.flags & TCP_FLAG.FIN ? 1 : 0);
    const rst: TcpSegment =
      seg.flags & TCP_FLAG.ACK
        ? { srcPort: seg.dstPort, dstPort: seg.srcPort, seq: seg.ack, ack: 0, flags: TCP_FLAG.RST, window: 0, payload: new Uint8Array(0) }
        : { srcPort: seg.dstPort, dstPort: seg.srcPort, seq: 0, ack: seqAdd(seg.seq, len), flags: TCP_FLAG.RST | TCP_FLAG.ACK, window: 0, payload: new Uint8Array(0) };
    this.sendTcp(src, rst);
  }


  private sendTcp(dst: number, seg: TcpSegment): void {
    const id = this.ipId++ & 0xffff;
    // The common case, a peer whose MAC is cached, builds the frame without closures.
    const mac = this.arp.lookup(dst);
    if (mac) return this.send(buildTcpFrame({ srcMac: this.mac, dstMac: mac, srcIp: this.ip, dstIp: dst }, seg, id), FRAME_CSUM.VALID);
    this.sendIp(dst, (m) => buildTcpFrame({ srcMac: this.mac, dstMac: m, srcIp: this.ip, dstIp: dst }, seg, id), FRAME_CSUM.VALID);
  }

  private forget(c: TcpConnection): void {
    const k = key(c.remoteIp, c.remotePort, c.localPort);
    if (this.conns.get(k) === c) this.conns.delete(k);
    this.stats.connections.active = this.conns.size;
  }
}

function key(ip: number, remotePort: number, localPort: number): string {
  return `${ip}:${remotePort}:${localPort}`;
}

/** Random initial sequence numbers, drawn 256 at a time: one crypto call per connection cost ~1.5 % of a swap-bench request. */
const issPool = new Uint32Array(256);
let issNext = issPool.length;

function randomIss(): number {
  if (issNext === issPool.length) {
    randomFillSync(issPool);
    issNext = 0;
  }
  return issPool[issNext++]!;
}

