import { ETHERTYPE_ARP, ETHERTYPE_IPV4, newFrame, rd16, rd32, wr16, wr32 } from './frame.js';

/** ARP operation codes (RFC 826). */
export const ARP_OP = { REQUEST: 1, REPLY: 2 } as const;
/** Length of an Ethernet/IPv4 ARP packet in bytes. */
export const ARP_PACKET = 28;

/** An Ethernet/IPv4 ARP packet (RFC 826). Addresses: MACs as 6-byte arrays, IPs host-order. */
export interface ArpPacket {
  op: number;
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

/**
 * Parse an ARP packet at `offset` (after the Ethernet header). Only hardware type 1
 * (Ethernet, 6-byte addresses) with protocol IPv4 (4-byte addresses) and op 1 or 2 is accepted.
 * Never throws. @returns the packet or undefined when malformed or of another kind.
 */
export function parseArp(buf: Uint8Array, offset: number): ArpPacket | undefined {
  if (buf.length - offset < ARP_PACKET) return undefined;
  if (rd16(buf, offset) !== 1 || rd16(buf, offset + 2) !== ETHERTYPE_IPV4) return undefined;
  if (buf[offset + 4] !== 6 || buf[offset + 5] !== 4) return undefined;
  const op = rd16(buf, offset + 6);
  if (op !== ARP_OP.REQUEST && op !== ARP_OP.REPLY) return undefined;
  return {
    op,
    senderMac: buf.slice(offset + 8, offset + 14),
    senderIp: rd32(buf, offset + 14),
    targetMac: buf.slice(offset + 18, offset + 24),
    targetIp: rd32(buf, offset + 24),
  };
}

/** Build a complete Ethernet frame carrying `p`, sent from `srcMac` to `dstMac`. */
export function buildArpFrame(dstMac: Uint8Array, srcMac: Uint8Array, p: ArpPacket): Uint8Array {
  const f = newFrame(dstMac, srcMac, ETHERTYPE_ARP, ARP_PACKET);
  const o = 14;
  wr16(f, o, 1);
  wr16(f, o + 2, ETHERTYPE_IPV4);
  f[o + 4] = 6;
  f[o + 5] = 4;
  wr16(f, o + 6, p.op);
  f.set(p.senderMac.subarray(0, 6), o + 8);
  wr32(f, o + 14, p.senderIp);
  f.set(p.targetMac.subarray(0, 6), o + 18);
  wr32(f, o + 24, p.targetIp);
  return f;
}

/** Options of `ArpCache`. */
export interface ArpCacheOptions {
  /** How long a learned mapping is trusted, ms. Default 60 000. */
  ttlMs?: number;
  /** Most entries kept (oldest evicted). Default 1024. */
  maxEntries?: number;
  /** Packets queued per unresolved address; older ones are dropped. Default 16. */
  maxQueuedPerAddress?: number;
  /** Addresses being resolved at once; more are refused. Default 1024. */
  maxPendingAddresses?: number;
  /**
   * Requests sent before giving up on an address. Default 12: with the default backoff the
   * cache waits about 40 s, so a guest busy booting among thousands (which answers ARP only
   * when it is next scheduled) is still reached.
   */
  maxRequests?: number;
  /** Wait before the first retry, ms; it doubles after each retry up to `maxRetryMs`. Default 500. */
  retryMs?: number;
  /** Longest wait between requests, ms (exponential backoff cap). Default 4000. */
  maxRetryMs?: number;
  /** Clock, ms. Default `performance.now`. */
  now?: () => number;
}

interface Pending {
  queue: Array<(mac: Uint8Array) => void>;
  requests: number;
  nextAt: number;
  /** Current wait between requests, ms. */
  interval: number;
}

/**
 * ARP cache with expiry and a bounded queue of packets waiting for resolution (RFC 826,
 * RFC 1122 section 2.3.2.2). The cache sends nothing itself: `resolve` calls `sendRequest`, the
 * owner calls `learn` for each ARP packet seen and `tick` while `hasPending` (no timer when idle).
 */
export class ArpCache {
  private readonly entries = new Map<number, { mac: Uint8Array; expires: number }>();
  private readonly pending = new Map<number, Pending>();
  private readonly o: Required<ArpCacheOptions>;
  /** Packets dropped: queue overflow, too many pending addresses, or resolution failed. */
  dropped = 0;

  constructor(
    private readonly sendRequest: (ip: number) => void,
    opts: ArpCacheOptions = {},
    /** Called when resolution of `ip` is given up (its queued packets were dropped). */
    private readonly onUnresolved?: (ip: number) => void,
  ) {
    this.o = {
      ttlMs: 60_000,
      maxEntries: 1024,
      maxQueuedPerAddress: 16,
      maxPendingAddresses: 1024,
      maxRequests: 12,
      retryMs: 500,
      maxRetryMs: 4000,
      now: () => performance.now(),
      ...opts,
    };
  }

  /** The MAC of `ip` if known and fresh. */
  lookup(ip: number): Uint8Array | undefined {
    const e = this.entries.get(ip);
    if (!e) return undefined;
    if (e.expires <= this.o.now()) {
      this.entries.delete(ip);
      return undefined;
    }
    return e.mac;
  }

  /**
   * Record `ip` → `mac` (from an ARP packet) and release packets queued for it. With
   * `onlyUpdate`, an unknown address is not added (RFC 826 merge rule for packets not for us).
   */
  learn(ip: number, mac: Uint8Array, onlyUpdate = false): void {
    if (onlyUpdate && !this.entries.has(ip) && !this.pending.has(ip)) return;
    if (this.entries.size >= this.o.maxEntries && !this.entries.has(ip)) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.delete(ip);
    this.entries.set(ip, { mac: mac.slice(0, 6), expires: this.o.now() + this.o.ttlMs });
    const p = this.pending.get(ip);
    if (p) {
      this.pending.delete(ip);
      for (const send of p.queue) send(mac);
    }
  }

  /**
   * Run `send` with the MAC of `ip`: now when cached, else once resolved (queued, bounded).
   * @returns false when the packet was dropped instead (counted in `dropped`).
   */
  resolve(ip: number, send: (mac: Uint8Array) => void): boolean {
    const mac = this.lookup(ip);
    if (mac) {
      send(mac);
      return true;
    }
    let p = this.pending.get(ip);
    if (!p) {
      if (this.pending.size >= this.o.maxPendingAddresses) {
        this.dropped++;
        return false;
      }
      p = { queue: [], requests: 1, nextAt: this.o.now() + this.o.retryMs, interval: this.o.retryMs };
      this.pending.set(ip, p);
      this.sendRequest(ip);
    }
    if (p.queue.length >= this.o.maxQueuedPerAddress) {
      p.queue.shift();
      this.dropped++;
    }
    p.queue.push(send);
    return true;
  }

  /** True while some address is being resolved (the owner then calls `tick` every `retryMs`). */
  get hasPending(): boolean {
    return this.pending.size > 0;
  }

  /** Retry due requests (exponential backoff); give up (drop queued packets) after `maxRequests`. */
  tick(): void {
    const now = this.o.now();
    for (const [ip, p] of this.pending) {
      if (p.nextAt > now) continue;
      if (p.requests >= this.o.maxRequests) {
        this.pending.delete(ip);
        this.dropped += p.queue.length;
        this.onUnresolved?.(ip);
        continue;
      }
      p.requests++;
      p.interval = Math.min(p.interval * 2, Math.max(this.o.maxRetryMs, this.o.retryMs));
      p.nextAt = now + p.interval;
      this.sendRequest(ip);
    }
  }

  /** Retry interval, ms. */
  get retryMs(): number {
    return this.o.retryMs;
  }

  /** Forget everything (pending packets are dropped uncounted). */
  clear(): void {
    this.entries.clear();
    this.pending.clear();
  }
}
