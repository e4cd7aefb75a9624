import { TCP_FLAG, seqAdd, seqDiff, seqLe, seqLt, type TcpSegment } from './tcp-segment.js';

/** Connection states (RFC 9293 section 3.3.2). LISTEN lives in the virtual host's listener table. */
export type TcpState =
  | 'SYN-SENT'
  | 'SYN-RECEIVED'
  | 'ESTABLISHED'
  | 'FIN-WAIT-1'
  | 'FIN-WAIT-2'
  | 'CLOSE-WAIT'
  | 'CLOSING'
  | 'LAST-ACK'
  | 'TIME-WAIT'
  | 'CLOSED';

/** Tunables of a TCP endpoint. Sizes in bytes, times in ms. */
export interface TcpEndpointOptions {
  /** MSS we announce (RFC 9293 3.7.1) and the largest segment we send. Default 1460 (MTU 1500). */
  mss?: number;
  /** Receive buffer = largest advertised window, at most 65 535 (no window scaling). Default 65 535. */
  receiveBuffer?: number;
  /** `write` returns false once this many bytes are queued unacknowledged. Default 262 144. */
  sendBuffer?: number;
  /** RTO before any RTT sample (RFC 6298 2.1). Default 1000. */
  initialRtoMs?: number;
  /** Lower RTO bound. RFC 6298 2.4 says 1 s; default 200, as Linux, since the link is virtual. */
  minRtoMs?: number;
  /** Upper RTO bound (RFC 6298 2.5: at least 60 s). Default 60 000. */
  maxRtoMs?: number;
  /** Longest interval between zero-window probes (RFC 9293 3.8.6.1). Default 5000. */
  maxProbeIntervalMs?: number;
  /**
   * SYN (or SYN-ACK) retransmissions before the open fails. Default 3 (1+2+4+8 = 15 s with
   * the default RTO). A peer whose MAC cannot be resolved fails sooner (see `VirtualHost`).
   */
  synRetries?: number;
  /** Consecutive retransmission timeouts with no word from the peer before the connection is reset. Default 10. */
  dataRetries?: number;
  /** How long TIME-WAIT lasts. RFC 9293 wants 2×MSL (240 s); default 2000, see `TcpConnection`. */
  timeWaitMs?: number;
  /** Initial congestion window in segments (RFC 6928). Default 10. */
  initialWindowSegments?: number;
  /**
   * Longest delay of an ACK for in-order data, in ms (RFC 9293 3.8.6.3, RFC 1122 4.2.3.2: an
   * ACK for at least every second full-sized segment, and within 500 ms). Default 5: long
   * enough that a reply the application writes at once carries the ACK (a request/response
   * exchange then costs the peer one wake-up, not two), short on a virtual link; keep it well
   * under the peer's minimum RTO (else the peer retransmits first). 0 acknowledges every batch
   * of segments at once.
   */
  delayedAckMs?: number;
}

/** Counters shared by all connections of one virtual host. */
export interface TcpCounters {
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  zeroWindowProbes: number;
  /** Segments we sent advertising a zero window (our receiver was full: flow control at work). */
  zeroWindowsAdvertised: number;
  /** Segments that failed the RFC 9293 3.10.7.4 acceptability test or carried a bad ACK. */
  unacceptable: number;
  /** Out-of-order segments kept for reassembly. */
  outOfOrderQueued: number;
  /** Out-of-order segments dropped (queue full or outside the window). */
  outOfOrderDropped: number;
  /** Challenge ACKs sent for in-window RST or SYN (RFC 5961). */
  challengeAcks: number;
  /** Payload bytes acknowledged by peers. */
  bytesAcked: number;
  /** In-order payload bytes received from peers. */
  bytesReceived: number;
  /** ACKs sent by the delayed-ACK timer (no reply came to carry them). */
  delayedAcks: number;
}

/** Why a connection was aborted by the peer or by timeouts. */
export type TcpAbortReason = 'reset' | 'refused' | 'timeout';

const DEFAULTS: Required<TcpEndpointOptions> = {
  mss: 1460,
  receiveBuffer: 65_535,
  sendBuffer: 262_144,
  initialRtoMs: 1000,
  minRtoMs: 200,
  maxRtoMs: 60_000,
  maxProbeIntervalMs: 5000,
  synRetries: 3,
  dataRetries: 10,
  timeWaitMs: 2000,
  initialWindowSegments: 10,
  delayedAckMs: 5,
};

/** Resolve options with defaults. @throws RangeError for out-of-range values. */
export function resolveTcpOptions(o: TcpEndpointOptions = {}): Required<TcpEndpointOptions> {
  const r = { ...DEFAULTS, ...o };
  if (!Number.isInteger(r.mss) || r.mss < 88 || r.mss > 65_495) throw new RangeError(`mss ${r.mss} out of range 88..65495`);
  if (!Number.isInteger(r.receiveBuffer) || r.receiveBuffer < r.mss || r.receiveBuffer > 65_535) {
    throw new RangeError(`receiveBuffer ${r.receiveBuffer} must be mss..65535 bytes`);
  }
  if (!(r.sendBuffer > 0) || !(r.minRtoMs > 0) || !(r.initialRtoMs > 0) || !(r.maxRtoMs >= r.minRtoMs)) {
    throw new RangeError('sendBuffer and RTO bounds must be positive, maxRtoMs ≥ minRtoMs');
  }
  if (!(r.delayedAckMs >= 0 && r.delayedAckMs <= 500)) throw new RangeError(`delayedAckMs ${r.delayedAckMs} out of range 0..500`);
  return r;
}

/** A byte queue of chunks with random-access reads (the send buffer). */
class ChunkQueue {
  private chunks: Uint8Array[] = [];
  private headOff = 0;
  bytes = 0;
  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.bytes += b.length;
  }
  /** Copy of bytes [off, off+len). */
  read(off: number, len: number): Uint8Array {
    let i = 0;
    let pos = off + this.headOff;
    while (i < this.chunks.length && pos >= this.chunks[i]!.length) pos -= this.chunks[i++]!.length;
    const first = this.chunks[i];
    if (first && pos + len <= first.length) return first.subarray(pos, pos + len);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len && i < this.chunks.length) {
      const c = this.chunks[i++]!;
      const n = Math.min(len - done, c.length - pos);
      out.set(c.subarray(pos, pos + n), done);
      done += n;
      pos = 0;
    }
    return out;
  }
  drop(n: number): void {
    this.bytes -= n;
    n += this.headOff;
    let i = 0;
    while (i < this.chunks.length && n >= this.chunks[i]!.length) n -= this.chunks[i++]!.length;
    if (i > 0) this.chunks = this.chunks.slice(i);
    this.headOff = n;
  }
}

interface OooSegment {
  seq: number;
  data: Uint8Array;
  fin: boolean;
}

/** What a connection needs from the layer below (the virtual host). */
export interface TcpLink {
  /** Send one segment of `conn` to its peer. */
  output(seg: TcpSegment, conn: TcpConnection): void;
  /** The connection reached CLOSED: forget it. */
  closed(conn: TcpConnection): void;
  /** The connection was aborted by the peer or by timeouts (before `onAbort`). */
  aborted(conn: TcpConnection, reason: TcpAbortReason): void;
  readonly counters: TcpCounters;
}

/**
 * One TCP connection of the user-space endpoint (RFC 9293), driven by segments from the
 * virtual host (`input`) and by the application (`write`, `end`, `abort`, `release`).
 *
 * - Open: active (`SYN-SENT`, MSS option) or passive (`SYN-RECEIVED`, created by a listener).
 * - Receive: sequence acceptability test (3.10.7.4), trimming to the window, out-of-order
 *   segments queued (bounded by the window) and merged, FIN in order. Received bytes count
 *   against the window until the application calls `release` (flow control towards the peer);
 *   a window update is sent when the window opens by min(MSS, buffer/2) (SWS avoidance, 3.8.6.2.2).
 * - Send: a bounded send buffer (`write` returns false when full, `onDrain` fires at half),
 *   segments of at most the peer's MSS within min(peer window, cwnd); slow start, congestion
 *   avoidance, fast retransmit and NewReno recovery (RFC 5681, RFC 6582); RTO from RFC 6298
 *   with Karn's rule and exponential backoff; zero-window probes of one byte (3.8.6.1).
 * - Close: FIN after queued data (`end`), FIN from the peer → `onEnd`; RST both ways, RST and
 *   SYN in the window answered with challenge ACKs (RFC 5961).
 * - TIME-WAIT lasts `timeWaitMs` (default 2 s, not 2×MSL): the virtual host picks ephemeral
 *   ports round-robin over 16 384 values, so an old incarnation is long gone before reuse.
 *
 * Timers exist only while a connection needs one: a stopped RTO or delayed-ACK timer is left to
 * expire once (within an RTO, or `delayedAckMs`) rather than cleared, so an idle established
 * connection has no timer soon after its last exchange.
 */
export class TcpConnection {
  state: TcpState;
  private readonly o: Required<TcpEndpointOptions>;
  // Send sequence space.
  private readonly iss: number;
  private sndUna: number;
  private sndNxt: number;
  private sndMax: number;
  private sndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  private sndMss = 536;
  private readonly sendQ = new ChunkQueue();
  /** Sequence number of the first byte in `sendQ`. */
  private qSeq: number;
  private finQueued = false;
  // Receive sequence space.
  private irs = 0;
  private rcvNxt = 0;
  private held = 0;
  private advRight = 0;
  private ooo: OooSegment[] = [];
  private oooBytes = 0;
  private ackPending = false;
  /** RCV.NXT as last acknowledged to the peer (the ACK field of our last segment). */
  private ackedTo = 0;
  /** Largest segment received so far: what "full-sized" means for delayed ACKs (as Linux's rcv_mss). */
  private rcvMss = 0;
  /** A segment shorter than `rcvMss` is unacknowledged: the peer's Nagle may hold data behind it. */
  private smallUnacked = false;
  private delackTimer: ReturnType<typeof setTimeout> | undefined;
  /** When the delayed ACK is due (performance.now() ms); 0 when none is. */
  private delackDeadline = 0;
  private peerFin = false;
  // Congestion control (RFC 5681 / 6582).
  private cwnd: number;
  private ssthresh = 0xffffffff;
  private dupAcks = 0;
  private inRecovery = false;
  private recover = 0;
  // RTT / RTO (RFC 6298).
  private srtt = 0;
  private rttvar = 0;
  private rto: number;
  private rttSeq: number | undefined;
  private rttStart = 0;
  private retries = 0;
  private heardSinceRetransmit = true;
  /** When the retransmission timer expires (performance.now() ms); 0 when it is stopped. */
  private rtoDeadline = 0;
  /** The Node timer behind it (may outlive a stopped RTO) and when that timer fires. */
  private rtoTimer: ReturnType<typeof setTimeout> | undefined;
  private rtoTimerAt = 0;
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private persistInterval = 0;
  private twTimer: ReturnType<typeof setTimeout> | undefined;
  private draining = false;

  /** Bytes received from the peer and handed to `onData`. */
  bytesReceived = 0;
  /** Bytes acknowledged by the peer. */
  bytesAcked = 0;

  /** The handshake completed (ESTABLISHED). */
  onConnect?: () => void;
  /**
   * In-order bytes from the peer: a view of the received frame, which nothing modifies or
   * reuses afterwards (frames on the switch are immutable), so the handler may keep it.
   * Call `release(n)` once consumed.
   */
  onData?: (chunk: Uint8Array) => void;
  /**
   * The batch of frames that brought data (`onData`) has been processed (the virtual host calls
   * `flush` after each batch): a handler that collects the batch's chunks passes them on now.
   */
  onBatchEnd?: () => void;
  /** The peer sent FIN; all its data was delivered before. */
  onEnd?: () => void;
  /** The send buffer fell to half after `write` returned false. */
  onDrain?: () => void;
  /** The peer reset the connection, refused it, or stopped answering. */
  onAbort?: (reason: TcpAbortReason) => void;
  /** The connection reached CLOSED (any way). Fires once, after `onAbort` when aborted. */
  onClose?: () => void;

  constructor(
    private readonly link: TcpLink,
    /** Our port. */
    readonly localPort: number,
    /** Peer IPv4 address, host order. */
    readonly remoteIp: number,
    /** Peer port. */
    readonly remotePort: number,
    iss: number,
    opts: TcpEndpointOptions = {},
    passive?: TcpSegment,
  ) {
    this.o = resolveTcpOptions(opts);
    this.iss = iss >>> 0;
    this.sndUna = this.iss;
    this.sndNxt = seqAdd(this.iss, 1);
    this.sndMax = this.sndNxt;
    this.qSeq = seqAdd(this.iss, 1);
    this.rto = this.o.initialRtoMs;
    this.cwnd = this.o.initialWindowSegments * this.o.mss;
    if (passive) {
      this.state = 'SYN-RECEIVED';
      this.irs = passive.seq;
      this.rcvNxt = seqAdd(passive.seq, 1);
      this.sndMss = clampMss(passive.mss, this.o.mss);
      this.sndWnd = passive.window;
      this.advRight = this.rcvNxt;
      this.sendSyn();
    } else {
      this.state = 'SYN-SENT';
      this.sendSyn();
    }
    this.armRto();
  }

  /** True once CLOSED (callbacks may close the connection while a segment is processed). */
  get isClosed(): boolean {
    return this.state === 'CLOSED';
  }

  /** Bytes queued (unsent or unacknowledged). */
  get bufferedBytes(): number {
    return this.sendQ.bytes;
  }

  /** The receive window we would advertise now, bytes. */
  get receiveWindow(): number {
    return Math.max(0, this.o.receiveBuffer - this.held);
  }

  /** Effective send MSS (min of ours and the peer's option), bytes. */
  get mss(): number {
    return this.sndMss;
  }

  /** Smoothed RTT in ms (0 before the first sample) and the current RTO in ms. */
  get timing(): { srttMs: number; rtoMs: number } {
    return { srttMs: this.srtt, rtoMs: this.rto };
  }

  /**
   * Queue bytes to send (kept by reference: do not modify). @returns false when the send buffer
   * is at or over `sendBuffer` bytes: stop writing until `onDrain`.
   * @throws Error after `end` or once closed.
   */
  write(data: Uint8Array): boolean {
    if (this.finQueued || this.state === 'CLOSED' || this.state === 'TIME-WAIT') throw new Error('write after end');
    this.sendQ.push(data);
    this.trySend();
    const full = this.sendQ.bytes >= this.o.sendBuffer;
    if (full) this.draining = true;
    return !full;
  }

  /** Close our sending direction: FIN after all queued bytes (RFC 9293 3.10.4). Idempotent. */
  end(): void {
    if (this.finQueued || this.state === 'CLOSED') return;
    this.finQueued = true;
    if (this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED') return; // FIN goes once established
    this.toFinState();
    this.trySend();
  }

  /** Send RST and close now (RFC 9293 3.10.5); queued data is discarded. No `onAbort`. */
  abort(): void {
    if (this.state === 'CLOSED') return;
    if (this.state !== 'TIME-WAIT' && this.state !== 'SYN-SENT') {
      this.emit({ seq: this.sndMax, ack: this.rcvNxt, flags: TCP_FLAG.RST | TCP_FLAG.ACK, window: 0, payload: EMPTY });
    } else if (this.state === 'SYN-SENT') {
      this.emit({ seq: this.sndNxt, ack: 0, flags: TCP_FLAG.RST, window: 0, payload: EMPTY });
    }
    this.close();
  }

  /**
   * Close now without sending anything and report `reason` through `onAbort` (used when the
   * peer turned out to be unreachable: ARP resolution failed during the open).
   */
  destroy(reason: TcpAbortReason): void {
    this.fail(reason);
  }

  /** The application consumed `n` bytes given to `onData`: they stop counting against the window. */
  release(n: number): void {
    if (this.state === 'CLOSED') return;
    const before = this.advertisedWindow(false);
    this.held = Math.max(0, this.held - n);
    const grow = seqDiff(seqAdd(this.rcvNxt, this.receiveWindow), this.advRight);
    // An update only when the window the peer knows is under half the buffer (it may be about
    // to stall, as Linux decides in tcp_cleanup_rbuf): else the next ACK carries the new edge,
    // and a request/response exchange does not wake the peer once more for a window update.
    const peerWindow = seqDiff(this.advRight, this.rcvNxt);
    if ((grow >= Math.min(this.sndMssForSws(), this.o.receiveBuffer >> 1) && peerWindow < this.o.receiveBuffer >> 1) || (before === 0 && grow > 0)) {
      if (this.canReceive() || this.state === 'SYN-RECEIVED') this.sendAck();
    }
  }

  /** Send any pending ACK now and run `onBatchEnd` (the virtual host calls this after each batch of frames). */
  flush(): void {
    if (this.ackPending && this.state !== 'CLOSED') this.sendAck();
    this.onBatchEnd?.();
  }

  /** Process one segment from the peer (RFC 9293 3.10.7). Never throws for hostile input. */
  input(seg: TcpSegment): void {
    if (this.state === 'CLOSED') return;
    if (this.state === 'SYN-SENT') return this.inputSynSent(seg);
    const f = seg.flags;
    let payload = seg.payload;
    let seq = seg.seq;
    let fin = (f & TCP_FLAG.FIN) !== 0;
    const segLen = payload.length + (fin ? 1 : 0) + (f & TCP_FLAG.SYN ? 1 : 0);
    // A retransmitted SYN in SYN-RECEIVED: our SYN-ACK was lost.
    if (this.state === 'SYN-RECEIVED' && f & TCP_FLAG.SYN && !(f & TCP_FLAG.ACK) && seq === this.irs) {
      this.sendSyn();
      return;
    }
    // 1. Sequence number check.
    const wnd = this.advertisedWindow(false);
    let acceptable: boolean;
    if (segLen === 0) acceptable = wnd === 0 ? seq === this.rcvNxt : this.inWindow(seq, wnd);
    else if (wnd === 0) acceptable = false;
    else acceptable = this.inWindow(seq, wnd) || this.inWindow(seqAdd(seq, segLen - 1), wnd);
    if (!acceptable && wnd === 0 && seq === this.rcvNxt && !(f & TCP_FLAG.SYN)) {
      // Zero window: still take the ACK (and RST) of a segment at RCV.NXT, drop its data.
      acceptable = true;
      if (payload.length > 0 || fin) this.ackPending = true;
      payload = EMPTY;
      fin = false;
    }
    if (!acceptable) {
      this.link.counters.unacceptable++;
      if (!(f & TCP_FLAG.RST)) this.sendAck();
      return;
    }
    // 2. RST (RFC 5961 3.2: exact match resets, else challenge ACK).
    if (f & TCP_FLAG.RST) {
      if (seq === this.rcvNxt) {
        if (this.state === 'SYN-RECEIVED') return this.close(); // passive open: back to LISTEN
        if (this.state === 'TIME-WAIT') return this.close();
        return this.fail('reset');
      }
      this.link.counters.challengeAcks++;
      this.sendAck();
      return;
    }
    // 3. SYN in a synchronized state: challenge ACK (RFC 5961 4.2).
    if (f & TCP_FLAG.SYN) {
      this.link.counters.challengeAcks++;
      this.sendAck();
      return;
    }
    // 4. ACK.
    if (!(f & TCP_FLAG.ACK)) return;
    this.heardSinceRetransmit = true;
    if (this.state === 'SYN-RECEIVED') {
      if (seqLt(this.sndUna, seg.ack) && seqLe(seg.ack, this.sndMax)) {
        this.state = 'ESTABLISHED';
        this.sndWnd = seg.window;
        this.sndWl1 = seq;
        this.sndWl2 = seg.ack;
        this.advRight = seqAdd(this.rcvNxt, this.receiveWindow);
        if (this.finQueued) this.toFinState();
        this.onConnect?.();
        if (this.isClosed) return;
      } else {
        this.emit({ seq: seg.ack, ack: 0, flags: TCP_FLAG.RST, window: 0, payload: EMPTY });
        return;
      }
    }
    if (!this.processAck(seg)) return;
    if (this.isClosed) return;
    // 5. Segment text, trimmed to RCV.NXT and the window.
    if (payload.length > 0 || fin) {
      if (this.canReceive()) {
        const before = seqDiff(this.rcvNxt, seq);
        if (before > 0) {
          // Drop bytes already received; a FIN before RCV.NXT is a duplicate.
          if (before > payload.length) fin = false;
          payload = before >= payload.length ? EMPTY : payload.subarray(before);
          seq = this.rcvNxt;
        }
        const room = seqDiff(seqAdd(this.rcvNxt, wnd), seq);
        if (payload.length > room) {
          payload = payload.subarray(0, Math.max(0, room));
          fin = false;
        }
        if (seq === this.rcvNxt) {
          this.deliver(payload, fin);
          this.pullOoo();
          if (this.ooo.length > 0) this.sendAck();
          else this.ackInOrder(payload.length);
        } else if (seqLt(this.rcvNxt, seq)) {
          this.queueOoo(seq, payload, fin);
          this.sendAck(); // duplicate ACK: lets the peer fast-retransmit
        } else {
          this.ackPending = true;
        }
      } else if (this.state === 'TIME-WAIT' && fin) {
        this.sendAck(); // FIN retransmitted: our ACK was lost
        this.armTimeWait();
      } else this.ackPending = true;
    }
  }

  private inputSynSent(seg: TcpSegment): void {
    const f = seg.flags;
    if (f & TCP_FLAG.ACK && (seqLe(seg.ack, this.iss) || seqLt(this.sndMax, seg.ack))) {
      this.link.counters.unacceptable++;
      if (!(f & TCP_FLAG.RST)) this.emit({ seq: seg.ack, ack: 0, flags: TCP_FLAG.RST, window: 0, payload: EMPTY });
      return;
    }
    if (f & TCP_FLAG.RST) {
      if (f & TCP_FLAG.ACK) this.fail('refused');
      return;
    }
    if (!(f & TCP_FLAG.SYN)) return;
    this.irs = seg.seq;
    this.rcvNxt = seqAdd(seg.seq, 1);
    this.sndMss = clampMss(seg.mss, this.o.mss);
    if (f & TCP_FLAG.ACK) {
      this.sndUna = seg.ack;
      this.sndWnd = seg.window;
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      this.state = 'ESTABLISHED';
      this.retries = 0;
      this.sampleRttIfDue(seg.ack);
      this.stopRto();
      this.advRight = seqAdd(this.rcvNxt, this.receiveWindow);
      this.sendAck();
      if (this.finQueued) this.toFinState();
      this.onConnect?.();
      this.trySend();
    } else {
      // Simultaneous open (3.5): answer with SYN-ACK.
      this.state = 'SYN-RECEIVED';
      this.advRight = this.rcvNxt;
      this.sendSyn();
    }
  }

  /** RFC 9293 3.10.7.4 fifth step. @returns false when the segment must be dropped. */
  private processAck(seg: TcpSegment): boolean {
    const ack = seg.ack;
    if (seqLt(this.sndMax, ack)) {
      this.link.counters.unacceptable++;
      this.sendAck();
      return false;
    }
    const acked = seqDiff(ack, this.sndUna);
    const windowChanged = seg.window !== this.sndWnd;
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLe(this.sndWl2, ack))) {
      if (acked >= 0) {
        this.sndWnd = seg.window;
        this.sndWl1 = seg.seq;
        this.sndWl2 = ack;
      }
    }
    if (acked > 0) {
      this.onNewAck(ack, acked);
    } else if (
      acked === 0 &&
      seg.payload.length === 0 &&
      !(seg.flags & (TCP_FLAG.FIN | TCP_FLAG.SYN)) &&
      !windowChanged &&
      this.sndNxt !== this.sndUna
    ) {
      this.onDupAck();
    }
    if (this.sndWnd > 0) this.stopPersist();
    this.trySend();
    return true;
  }

  private onNewAck(ack: number, acked: number): void {
    const flight = seqDiff(this.sndMax, this.sndUna);
    // Bytes of data acknowledged (excluding a FIN).
    const finSeq = seqAdd(this.qSeq, this.sendQ.bytes);
    const finAcked = this.finQueued && seqLt(finSeq, ack);
    const dataAcked = Math.min(this.sendQ.bytes, seqDiff(ack, this.qSeq));
    if (dataAcked > 0) {
      this.sendQ.drop(dataAcked);
      this.qSeq = seqAdd(this.qSeq, dataAcked);
      this.bytesAcked += dataAcked;
      this.link.counters.bytesAcked += dataAcked;
    }
    this.sndUna = ack;
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.retries = 0;
    this.sampleRttIfDue(ack);
    // New data acknowledged: the path works again, so drop the exponential backoff (RFC 6298
    // 5.5–5.7 keep it until the next RTT sample, which Karn's rule may delay for long).
    if (this.srtt > 0) this.rto = this.computeRto();
    // Congestion control.
    if (this.inRecovery) {
      if (seqLe(this.recover, ack)) {
        this.inRecovery = false;
        this.cwnd = Math.min(this.ssthresh, Math.max(flight - acked, this.sndMss) + this.sndMss);
      } else {
        // NewReno partial ACK (RFC 6582 3.2 step 5): retransmit the next hole, deflate.
        this.retransmitHead();
        this.cwnd = Math.max(this.sndMss, this.cwnd - acked + this.sndMss);
      }
    } else if (this.cwnd < this.ssthresh) {
      this.cwnd += Math.min(acked, this.sndMss);
    } else {
      this.cwnd += Math.max(1, Math.floor((this.sndMss * this.sndMss) / this.cwnd));
    }
    this.dupAcks = 0;
    if (this.sndUna === this.sndMax) this.stopRto();
    else this.armRto();
    if (finAcked) {
      if (this.state === 'FIN-WAIT-1') this.state = 'FIN-WAIT-2';
      else if (this.state === 'CLOSING') this.enterTimeWait();
      else if (this.state === 'LAST-ACK') return this.close();
    }
    if (this.draining && this.sendQ.bytes <= this.o.sendBuffer >> 1) {
      this.draining = false;
      this.onDrain?.();
    }
  }

  private onDupAck(): void {
    this.dupAcks++;
    if (this.inRecovery) {
      this.cwnd += this.sndMss;
      return;
    }
    if (this.dupAcks === 3) {
      const flight = seqDiff(this.sndMax, this.sndUna);
      this.ssthresh = Math.max(flight >> 1, 2 * this.sndMss);
      this.recover = this.sndMax;
      this.inRecovery = true;
      this.link.counters.fastRetransmits++;
      this.retransmitHead();
      this.cwnd = this.ssthresh + 3 * this.sndMss;
    }
  }

  /** Resend the first unacknowledged segment (fast retransmit). */
  private retransmitHead(): void {
    this.rttSeq = undefined;
    const saveNxt = this.sndNxt;
    this.sndNxt = this.sndUna;
    this.sendOne(true);
    if (seqLt(this.sndNxt, saveNxt)) this.sndNxt = saveNxt;
  }

  private sampleRttIfDue(ack: number): void {
    if (this.rttSeq === undefined || seqLt(ack, this.rttSeq)) return;
    const r = Math.max(0, performance.now() - this.rttStart);
    this.rttSeq = undefined;
    if (this.srtt === 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = this.computeRto();
  }

  /** RFC 6298 2.3: SRTT + max(G, 4·RTTVAR) with G = 1 ms, within [minRtoMs, maxRtoMs]. */
  private computeRto(): number {
    return Math.min(this.o.maxRtoMs, Math.max(this.o.minRtoMs, this.srtt + Math.max(1, 4 * this.rttvar)));
  }

  private canReceive(): boolean {
    return this.state === 'ESTABLISHED' || this.state === 'FIN-WAIT-1' || this.state === 'FIN-WAIT-2';
  }

  private inWindow(seq: number, wnd: number): boolean {
    const d = seqDiff(seq, this.rcvNxt);
    return d >= 0 && d < wnd;
  }

  private deliver(data: Uint8Array, fin: boolean): void {
    if (data.length > 0) {
      this.rcvNxt = seqAdd(this.rcvNxt, data.length);
      this.held += data.length;
      this.bytesReceived += data.length;
      this.link.counters.bytesReceived += data.length;
      this.onData?.(data);
      if (this.state === 'CLOSED') return;
    }
    if (fin && !this.peerFin) {
      this.peerFin = true;
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.ooo = [];
      this.oooBytes = 0;
      this.sendAck();
      if (this.state === 'ESTABLISHED') this.state = 'CLOSE-WAIT';
      else if (this.state === 'FIN-WAIT-1') this.state = 'CLOSING';
      else if (this.state === 'FIN-WAIT-2') this.enterTimeWait();
      this.onEnd?.();
    }
  }

  private queueOoo(seq: number, data: Uint8Array, fin: boolean): void {
    if (data.length === 0 && !fin) return;
    if (this.oooBytes + data.length > this.o.receiveBuffer || this.ooo.length >= 64) {
      this.link.counters.outOfOrderDropped++;
      return;
    }
    if (this.ooo.some((s) => s.seq === seq && s.data.length >= data.length)) return;
    this.ooo.push({ seq, data: data.slice(), fin });
    this.oooBytes += data.length;
    this.ooo.sort((a, b) => seqDiff(a.seq, b.seq));
    this.link.counters.outOfOrderQueued++;
  }

  private pullOoo(): void {
    while (this.ooo.length > 0 && !this.peerFin && this.state !== 'CLOSED') {
      const s = this.ooo[0]!;
      const skip = seqDiff(this.rcvNxt, s.seq);
      if (skip < 0) break;
      this.ooo.shift();
      this.oooBytes -= s.data.length;
      if (skip > s.data.length) continue;
      this.deliver(s.data.subarray(skip), s.fin);
    }
  }

  /**
   * In-order data arrived (and was delivered: the application may already have answered, its
   * segment carrying the ACK). Acknowledge with this batch when two full-sized segments are
   * unacknowledged, or when more data follows an unacknowledged small segment (the peer's
   * Nagle algorithm, RFC 9293 3.7.4, may be holding its next small segment until that ACK);
   * else within `delayedAckMs`, unless a segment of ours carries the ACK first.
   */
  private ackInOrder(len: number): void {
    if (this.state === 'CLOSED' || this.ackedTo === this.rcvNxt) return;
    this.rcvMss = Math.max(this.rcvMss, len);
    if (this.smallUnacked || seqDiff(this.rcvNxt, this.ackedTo) >= 2 * this.rcvMss || this.o.delayedAckMs === 0 || !this.canReceive()) {
      this.ackPending = true;
      return;
    }
    if (len < this.rcvMss) this.smallUnacked = true;
    if (this.delackDeadline !== 0) return;
    this.delackDeadline = performance.now() + this.o.delayedAckMs;
    this.delackTimer ??= setTimeout(this.onDelackTimer, this.o.delayedAckMs);
  }

  private readonly onDelackTimer = (): void => {
    this.delackTimer = undefined;
    if (this.delackDeadline === 0 || this.state === 'CLOSED') return;
    const left = this.delackDeadline - performance.now();
    if (left > 0.5) {
      this.delackTimer = setTimeout(this.onDelackTimer, left);
      return;
    }
    this.delackDeadline = 0;
    if (this.ackedTo === this.rcvNxt) return;
    this.link.counters.delayedAcks++;
    this.sendAck();
  };

  /**
   * Settle the delayed ACK. The timer itself is left to expire (it then finds nothing to do):
   * when a reply carries the ACK, as in every request/response exchange, clearing the timer and
   * setting a new one for the next request costs more than one wake-up per `delayedAckMs`.
   */
  private stopDelack(): void {
    this.delackDeadline = 0;
  }

  /** Window to advertise, never moving the right edge left (RFC 9293 3.8.6.2.2 SWS avoidance). */
  private advertisedWindow(update: boolean): number {
    const avail = this.receiveWindow;
    const right = seqAdd(this.rcvNxt, avail);
    const grow = seqDiff(right, this.advRight);
    let edge = this.advRight;
    if (grow >= Math.min(this.sndMssForSws(), this.o.receiveBuffer >> 1) || seqLt(this.advRight, this.rcvNxt)) edge = right;
    const w = Math.max(0, Math.min(0xffff, seqDiff(edge, this.rcvNxt)));
    if (update) {
      this.advRight = seqAdd(this.rcvNxt, w);
      if (w === 0) this.link.counters.zeroWindowsAdvertised++;
    }
    return w;
  }

  private sndMssForSws(): number {
    return this.o.mss;
  }

  /**
   * Pure ACK. Its sequence number is SND.MAX, the highest sent, not SND.NXT, which a
   * retransmission timeout rewinds: the peer may already hold those bytes, and a sequence
   * number below its RCV.NXT would make the ACK unacceptable there (RFC 9293 3.10.7.4).
   */
  private sendAck(): void {
    this.ackPending = false;
    this.emit({ seq: this.sndMax, ack: this.rcvNxt, flags: TCP_FLAG.ACK, window: this.advertisedWindow(true), payload: EMPTY });
  }

  private sendSyn(): void {
    const passive = this.state === 'SYN-RECEIVED';
    this.emit({
      seq: this.iss,
      ack: passive ? this.rcvNxt : 0,
      flags: passive ? TCP_FLAG.SYN | TCP_FLAG.ACK : TCP_FLAG.SYN,
      window: passive ? this.advertisedWindow(true) : Math.min(0xffff, this.o.receiveBuffer),
      mss: this.o.mss,
      payload: EMPTY,
    });
    if (this.rttSeq === undefined && this.retries === 0) {
      this.rttSeq = seqAdd(this.iss, 1);
      this.rttStart = performance.now();
    }
  }

  private emit(s: { seq: number; ack: number; flags: number; window: number; payload: Uint8Array; mss?: number }): void {
    // One object shape for every segment (no spread, no `delete`): the frame builder's
    // property reads stay monomorphic.
    const seg: TcpSegment = { srcPort: this.localPort, dstPort: this.remotePort, seq: s.seq, ack: s.ack, flags: s.flags, window: s.window, mss: s.mss, payload: s.payload };
    if (s.flags & TCP_FLAG.ACK && !(s.flags & TCP_FLAG.RST)) {
      // Any segment carrying the ACK settles a delayed one.
      this.ackedTo = s.ack;
      this.smallUnacked = false;
      this.stopDelack();
    }
    this.link.output(seg, this);
  }

  private toFinState(): void {
    if (this.state === 'ESTABLISHED') this.state = 'FIN-WAIT-1';
    else if (this.state === 'CLOSE-WAIT') this.state = 'LAST-ACK';
  }

  private canSend(): boolean {
    const s = this.state;
    return s === 'ESTABLISHED' || s === 'CLOSE-WAIT' || s === 'FIN-WAIT-1' || s === 'CLOSING' || s === 'LAST-ACK';
  }

  /**
   * Send one segment at SND.NXT: up to `limit` bytes of data, with FIN if it ends the stream.
   * @returns bytes of sequence space used (0 = nothing to send).
   */
  private sendOne(retransmit: boolean, limit = this.sndMss): number {
    const off = seqDiff(this.sndNxt, this.qSeq);
    const unsent = this.sendQ.bytes - off;
    const len = Math.max(0, Math.min(limit, this.sndMss, unsent));
    const fin = this.finQueued && len === unsent && this.canSend();
    if (len === 0 && !fin) return 0;
    const payload = len > 0 ? this.sendQ.read(off, len) : EMPTY;
    const used = len + (fin ? 1 : 0);
    let flags = TCP_FLAG.ACK;
    if (fin) flags |= TCP_FLAG.FIN;
    if (len > 0 && len === unsent) flags |= TCP_FLAG.PSH;
    const seq = this.sndNxt;
    this.ackPending = false;
    this.emit({ seq, ack: this.rcvNxt, flags, window: this.advertisedWindow(true), payload });
    const end = seqAdd(seq, used);
    const isRetransmit = retransmit || seqLt(seq, this.sndMax);
    if (isRetransmit) {
      this.link.counters.retransmits++;
      this.rttSeq = undefined;
    } else if (this.rttSeq === undefined) {
      this.rttSeq = end;
      this.rttStart = performance.now();
    }
    this.sndNxt = end;
    if (seqLt(this.sndMax, end)) this.sndMax = end;
    if (!this.rtoRunning) this.armRto();
    return used;
  }

  /** Send what the windows allow (RFC 9293 3.8.6.2.1 sender SWS avoidance, no Nagle delay). */
  private trySend(): void {
    if (!this.canSend()) return;
    for (let guard = 0; guard < 1024; guard++) {
      const flight = seqDiff(this.sndNxt, this.sndUna);
      const wnd = Math.min(this.sndWnd, this.cwnd);
      const off = seqDiff(this.sndNxt, this.qSeq);
      const unsent = this.sendQ.bytes - off;
      const finUnsent = this.finQueued && seqLe(this.sndNxt, seqAdd(this.qSeq, this.sendQ.bytes));
      if (unsent <= 0 && !finUnsent) break;
      const room = wnd - flight;
      if (unsent > 0) {
        if (room <= 0) break;
        const len = Math.min(room, this.sndMss, unsent);
        // Sender SWS avoidance: a small segment only when it is all we have or nothing is in flight.
        if (len < this.sndMss && len < unsent && flight > 0) break;
        if (this.sendOne(false, len) === 0) break;
      } else if (this.sendOne(false, 0) === 0) break;
    }
    const off = seqDiff(this.sndNxt, this.qSeq);
    if (this.sndWnd === 0 && this.sendQ.bytes - off > 0 && this.sndNxt === this.sndUna) this.armPersist();
  }

  // ---- timers ----

  /**
   * (Re)start the retransmission timer: it expires `rto` ms from now (RFC 6298 5.1, 5.3). One
   * Node timer per connection, re-armed lazily: a later deadline is checked when the timer
   * fires, and only an earlier one than the timer's replaces it.
   */
  private armRto(): void {
    const now = performance.now();
    this.rtoDeadline = now + this.rto;
    if (this.rtoTimer !== undefined) {
      if (this.rtoTimerAt <= this.rtoDeadline + 1) return;
      clearTimeout(this.rtoTimer);
    }
    this.rtoTimerAt = this.rtoDeadline;
    this.rtoTimer = setTimeout(this.onRtoTimer, this.rto);
  }

  /**
   * Stop the retransmission timer (all data acknowledged, RFC 6298 5.2). The Node timer is left
   * to expire and finds nothing to do: in a request/response exchange every request arms it and
   * every reply stops it, and clearing and setting a timer each time costs more.
   */
  private stopRto(): void {
    this.rtoDeadline = 0;
  }

  private get rtoRunning(): boolean {
    return this.rtoDeadline !== 0;
  }

  private readonly onRtoTimer = (): void => {
    this.rtoTimer = undefined;
    if (this.state === 'CLOSED' || this.rtoDeadline === 0) return;
    const left = this.rtoDeadline - performance.now();
    if (left > 1) {
      this.rtoTimerAt = this.rtoDeadline;
      this.rtoTimer = setTimeout(this.onRtoTimer, left);
      return;
    }
    this.rtoDeadline = 0;
    this.onRetransmitTimeout();
  };

  /** RFC 6298 section 5.4–5.7 on expiry. */
  private onRetransmitTimeout(): void {
    const synState = this.state === 'SYN-SENT' || this.state === 'SYN-RECEIVED';
    if (!synState && this.sndUna === this.sndMax) return;
    if (!this.heardSinceRetransmit || synState) this.retries++;
    this.heardSinceRetransmit = false;
    this.link.counters.timeouts++;
    if (this.retries > (synState ? this.o.synRetries : this.o.dataRetries)) {
      this.emitRstOnTimeout();
      return this.fail(this.state === 'SYN-SENT' ? 'refused' : 'timeout');
    }
    this.rto = Math.min(this.o.maxRtoMs, this.rto * 2);
    this.rttSeq = undefined;
    if (synState) {
      this.link.counters.retransmits++;
      this.sendSyn();
      this.armRto();
      return;
    }
    const flight = seqDiff(this.sndMax, this.sndUna);
    this.ssthresh = Math.max(flight >> 1, 2 * this.sndMss);
    this.cwnd = this.sndMss;
    this.inRecovery = false;
    this.dupAcks = 0;
    this.sndNxt = this.sndUna; // go back: resend from the first unacknowledged byte
    this.armRto();
    if (this.sendOne(true) === 0 && this.sndWnd === 0) this.armPersist();
    this.trySend();
  }

  private emitRstOnTimeout(): void {
    if (this.state !== 'SYN-SENT') {
      this.emit({ seq: this.sndMax, ack: this.rcvNxt, flags: TCP_FLAG.RST | TCP_FLAG.ACK, window: 0, payload: EMPTY });
    }
  }

  private armPersist(): void {
    if (this.persistTimer !== undefined) return;
    this.persistInterval = Math.min(this.o.maxProbeIntervalMs, Math.max(this.persistInterval * 2, this.rto));
    this.persistTimer = setTimeout(() => this.onPersist(), this.persistInterval);
  }

  private stopPersist(): void {
    if (this.persistTimer !== undefined) clearTimeout(this.persistTimer);
    this.persistTimer = undefined;
    this.persistInterval = 0;
  }

  /** Zero-window probe: one byte of new data beyond the window (RFC 9293 3.8.6.1). */
  private onPersist(): void {
    this.persistTimer = undefined;
    if (!this.canSend() || this.sndWnd > 0) return;
    const off = seqDiff(this.sndNxt, this.qSeq);
    if (this.sendQ.bytes - off <= 0) return;
    if (!this.heardSinceRetransmit) {
      if (++this.retries > this.o.dataRetries) {
        this.emitRstOnTimeout();
        return this.fail('timeout');
      }
    }
    this.heardSinceRetransmit = false;
    this.link.counters.zeroWindowProbes++;
    const seq = this.sndNxt;
    this.emit({ seq, ack: this.rcvNxt, flags: TCP_FLAG.ACK, window: this.advertisedWindow(true), payload: this.sendQ.read(off, 1) });
    const end = seqAdd(seq, 1);
    if (seqLt(this.sndMax, end)) this.sndMax = end; // an ACK of the probe byte is acceptable
    this.armPersist();
  }

  private enterTimeWait(): void {
    this.state = 'TIME-WAIT';
    this.stopRto();
    this.stopPersist();
    this.armTimeWait();
  }

  private armTimeWait(): void {
    if (this.twTimer !== undefined) clearTimeout(this.twTimer);
    this.twTimer = setTimeout(() => this.close(), this.o.timeWaitMs);
  }

  private fail(reason: TcpAbortReason): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.clearTimers();
    this.link.aborted(this, reason);
    this.onAbort?.(reason);
    this.finishClose();
  }

  private close(): void {
    if (this.state === 'CLOSED') return;
    this.state = 'CLOSED';
    this.clearTimers();
    this.finishClose();
  }

  private finishClose(): void {
    this.ooo = [];
    this.link.closed(this);
    this.onClose?.();
  }

  private clearTimers(): void {
    this.stopRto();
    if (this.rtoTimer !== undefined) clearTimeout(this.rtoTimer);
    this.rtoTimer = undefined;
    this.stopDelack();
    if (this.delackTimer !== undefined) clearTimeout(this.delackTimer);
    this.delackTimer = undefined;
    this.stopPersist();
    if (this.twTimer !== undefined) clearTimeout(this.twTimer);
    this.twTimer = undefined;
  }
}

const EMPTY = new Uint8Array(0);

/** Smallest peer MSS honoured, bytes: tinier values would only multiply our work (a hostile guest). */
export const MIN_PEER_MSS = 64;

/** Send MSS from the peer's option (RFC 9293 3.7.1: 536 when absent), within [MIN_PEER_MSS, ours]. */
function clampMss(peer: number | undefined, ours: number): number {
  return Math.min(ours, Math.max(MIN_PEER_MSS, peer ?? 536));
}
