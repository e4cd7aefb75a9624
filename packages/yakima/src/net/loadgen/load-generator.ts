import * as hdr from 'hdr-histogram-js';
import type { VirtualNetwork } from '../network.js';
import { formatIPv4 } from '../network.js';
import { claimAddress, releaseAddress } from '../uplink/claims.js';
import type { TcpConnection, TcpEndpointOptions } from '../uplink/tcp-endpoint.js';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST, VirtualHost, type VirtualHostStats } from '../uplink/virtual-host.js';
import { HttpResponseReader } from './http-response.js';
import { createPicker, type RequestDistribution } from './request-picker.js';

/** MAC of the load generator's virtual host: locally administered, next to the user-mode uplink's. */
export const LOAD_GENERATOR_MAC = new Uint8Array([0x02, 0xde, 0x4e, 0xff, 0xff, 0xfd]);

/** One server the load generator may send requests to. */
export interface LoadTarget {
  /** IPv4 address, host order. */
  ip: number;
  /** Its MAC when known in advance (a VM's), so no ARP broadcast is needed. */
  mac?: Uint8Array;
}

/** Options of `HttpLoadGenerator`. */
export interface LoadGeneratorOptions {
  /** Server TCP port. Default 80. */
  port?: number;
  /** Request target, e.g. '/doc-2k.html'. */
  path: string;
  /** The body every response must carry, byte for byte; without it any 200 body counts. */
  expectedBody?: Uint8Array;
  /** Requests in flight at once (closed loop: each starts the next when it ends). Default 16. */
  concurrency?: number;
  /** A request not answered within this many ms fails ('request-timeout'). Default 30,000. */
  requestTimeoutMs?: number;
  /** Our address (host order). Default the subnet's last host address. */
  ip?: number;
  /** Our MAC. Default `LOAD_GENERATOR_MAC`. */
  mac?: Uint8Array;
  /**
   * TCP tunables of our connections. Default: the virtual host's, with `minRtoMs` 1000
   * (RFC 6298 2.4): the guests answer from an emulated CPU sharing this thread, and a 200 ms
   * RTO fired during a long scheduler slice, before the ACK that arrived was processed.
   */
  tcp?: TcpEndpointOptions;
  /**
   * When we answer the servers' frames (see `LoadAnswering`). Default 'batched'; pass 'inline'
   * when the servers' vCPUs run on other threads (the KVM and process backends), or when
   * `concurrency` is 1 (no batch can form).
   */
  answer?: LoadAnswering;
}

/**
 * When the load generator answers the frames the servers send it:
 * - 'batched': they wait in its queue and are answered together when Yakima's scheduler lets
 *   the event loop in (its run queue is empty, or a 4 ms slice is over). For vCPUs that run on
 *   Yakima's own thread (the emulator): each stage of many exchanges (accept a SYN, serve a GET,
 *   close) then runs in one VM after another through the same shared compiled blocks, and the
 *   generator's code runs once per batch, instead of guest and generator code alternating on
 *   every frame and evicting each other from the host's caches. swap-bench on the emulator
 *   (zipf, 4G budget; three runs alternating with 'inline'): 100 VMs 3,037 / 3,445 / 3,168 ->
 *   3,808 / 4,031 / 3,829 req/s, 1,000 VMs 2,772 / 2,778 / 2,898 -> 3,588 / 3,319 / 3,757,
 *   one VM unchanged (noise); 10,000 VMs with the default budget 1,548 -> 2,052 in one run.
 *   The emulator's time per guest instruction at 100 VMs fell from 15 to 12.5 ns (timed around
 *   the vCPU's `run` with a temporary counter). With one request in flight (`--concurrency 1`)
 *   there is nothing to batch, and it costs 5-20 % against 'inline' (each step of the exchange
 *   is a sleep and a VM entry), so swap-bench answers inline then. Tried and dropped: answering
 *   at a VM's IDLE whenever no other VM was runnable, which won that back and 8 % at one VM
 *   with 32 connections, but lost 7-9 % at 100 and 1,000 VMs (three alternating runs); and
 *   answering a server's FIN as it arrives (its queued frames only, or the whole batch), so
 *   the VM takes the closing ACK+FIN before it sleeps: +6-17 % at one VM, -13-20 % at 1,000
 *   VMs (two alternating runs each).
 * - 'inline': answered as the switch delivers them. Yakima moves a VM's frames through the
 *   switch when it executes IDLE (control/yakima.ts; on the emulator when no other VM is
 *   runnable, else at the end of the round, `ROUND_MAX_MS`), so our answer (the request after a
 *   SYN-ACK, the FIN after a response) is in its Rx FIFO before it sleeps and IDLE returns at
 *   once, as on a LAN where the client's segments arrive while the server still runs. For
 *   vCPUs on other threads, where what counts is how soon the main thread answers: swap-bench
 *   on the process backend, 100 VMs, 2,000-2,070 req/s batched against 2,200-2,290 inline.
 */
export type LoadAnswering = 'batched' | 'inline';

/**
 * Why a request failed: the connection was refused, reset or timed out in TCP ('refused',
 * 'reset', 'timeout'); no answer within `requestTimeoutMs` ('request-timeout'); the server
 * closed before a whole response ('closed-early'); a status other than 200 ('status'); a
 * body differing from `expectedBody` ('body'); an unparsable or oversized response
 * ('malformed', 'too-long'); our side could not open a connection ('connect').
 */
export type LoadErrorKind =
  | 'refused'
  | 'reset'
  | 'timeout'
  | 'request-timeout'
  | 'closed-early'
  | 'status'
  | 'body'
  | 'malformed'
  | 'too-long'
  | 'connect';

/** One measurement: where requests go, for how long. */
export interface LoadRun {
  /** The servers; request targets are picked among them by `distribution`. */
  targets: readonly LoadTarget[];
  /** Measured time, ms. */
  durationMs: number;
  /** How targets are picked. Default 'random'. */
  distribution?: RequestDistribution;
  /** Zipf exponent α. Default 0.8 (the paper's). */
  alpha?: number;
  /** Seed of the target picker (same seed, same sequence of targets). Default 1. */
  seed?: number;
  /** Called about every `progressMs` (default 250) while running. */
  onProgress?: (p: LoadProgress) => void;
  progressMs?: number;
}

/** What one measurement (`run`) produced. Latencies in µs, from connect to the last body byte. */
export interface LoadResult {
  /** Requests answered correctly within the measured interval. */
  requests: number;
  /** Failed requests (all of them, also those that ended after the interval). */
  errors: number;
  /** Failed requests by kind (only kinds that occurred). */
  errorsByKind: Partial<Record<LoadErrorKind, number>>;
  /** Length of the measured interval, s. */
  seconds: number;
  /** `requests / seconds`. */
  requestsPerSecond: number;
  /** Latency percentiles and extremes of the answered requests, µs (0 when none). */
  latencyUs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Response body bytes received in the measured interval. */
  bodyBytes: number;
  /** Answered requests per target (index as in `LoadRun.targets`). */
  hits: Uint32Array;
}

/** How long a finished exchange waits for the server's FIN before resetting, ms. */
const CLOSE_GRACE_MS = 2000;

/**
 * Close after a complete response. The server closes first (`Connection: close`), so we end
 * in LAST-ACK, not TIME-WAIT: closing first would leave a TIME-WAIT connection per request on
 * our side (2 s each, thousands at a few thousand requests/s). A server that does not close
 * within `CLOSE_GRACE_MS` is reset.
 */
function closePassively(conn: TcpConnection): void {
  if (conn.state === 'CLOSE-WAIT') {
    conn.end();
    return;
  }
  const grace = setTimeout(() => conn.abort(), CLOSE_GRACE_MS);
  conn.onEnd = () => conn.end();
  conn.onClose = () => clearTimeout(grace);
}

/**
 * The load generator's virtual host when it answers 'inline' (`LoadAnswering`): frames are
 * processed as the switch delivers them, not in a `setImmediate` batch. Frames delivered while
 * we are processing wait for the batch (never re-entered).
 */
class InlineVirtualHost extends VirtualHost {
  private processing = false;

  /** `flags` are the frame's `FRAME_CSUM` bits: passed on, or a guest's unsummed TX_CSUM frame would fail our checksum test. */
  override deliver(frame: Uint8Array, flags = 0): void {
    super.deliver(frame, flags);
    if (this.processing) return;
    this.processing = true;
    try {
      this.processBatch();
    } finally {
      this.processing = false;
    }
  }
}

/** Progress of a running measurement, for progress bars. */
export interface LoadProgress {
  requests: number;
  errors: number;
  /** Seconds since `run` started. */
  elapsed: number;
}

const REQUEST_TIMEOUT_MS = 30_000;

const EPHEMERAL_COUNT = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;

/** Per network, per server address: the next local port (outlives each generator; see `connect`). */
const portRotations = new WeakMap<VirtualNetwork, Map<number, number>>();

/**
 * A closed-loop HTTP/1.1 load generator that lives ON Yakima's virtual switch (HotOS paper 3.2,
 * Figure 3: aggregate requests/s of many web-server VMs): a virtual host with its own MAC and
 * IPv4 address running Yakima's user-space TCP (`VirtualHost`, RFC 9293) — no host ports, no
 * privileges. `concurrency` requests are in flight at once; each opens a TCP connection to a
 * target picked uniformly or by Zipf(α), sends `GET path` with `Connection: close`, reads the
 * response (Content-Length framed, checked byte for byte against `expectedBody`), closes, and
 * the next request starts at once.
 *
 * Runs on the same event loop as Yakima's scheduler: frames are exchanged through the switch
 * as the scheduler pumps the VMs' Tx FIFOs.
 */
export class HttpLoadGenerator {
  /** The virtual host on the switch. */
  readonly host: VirtualHost;
  private readonly port: number;
  private readonly request: Uint8Array;
  private readonly expected: Uint8Array | undefined;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly maxConnections: number;
  private readonly macs = new Map<number, Uint8Array>();
  /** Next local port per server address (see `connect`), shared by the generators of one network. */
  private readonly nextPort: Map<number, number>;
  private running = false;
  private closed = false;

  /**
   * Attach to `net`'s switch. @throws RangeError for a bad server port, request target,
   * concurrency or address; Error when another uplink holds the address.
   */
  constructor(
    private readonly net: VirtualNetwork,
    opts: LoadGeneratorOptions,
  ) {
    this.port = opts.port ?? 80;
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65_535) throw new RangeError(`server port ${this.port} out of range 1..65535`);
    this.concurrency = opts.concurrency ?? 16;
    if (!Number.isSafeInteger(this.concurrency) || this.concurrency < 1 || this.concurrency > 16_384) {
      throw new RangeError(`concurrency ${this.concurrency} must be 1..16384`);
    }
    if (!/^\/[\x21-\x7e]*$/.test(opts.path)) throw new RangeError(`request target '${opts.path}' must start with / and be printable ASCII`);
    // One Host field for every server: they all serve the same document tree.
    this.request = Buffer.from(`GET ${opts.path} HTTP/1.1\r\nHost: denali\r\nConnection: close\r\n\r\n`, 'latin1');
    this.expected = opts.expectedBody;
    this.timeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.maxConnections = this.concurrency * 4 + 64;
    let ports = portRotations.get(net);
    if (!ports) portRotations.set(net, (ports = new Map()));
    this.nextPort = ports;
    const ip = opts.ip ?? net.broadcast - 1;
    const Host = (opts.answer ?? 'batched') === 'inline' ? InlineVirtualHost : VirtualHost;
    this.host = new Host(net, {
      name: 'load-generator',
      ip,
      mac: opts.mac ?? LOAD_GENERATOR_MAC,
      tcp: { minRtoMs: 1000, ...opts.tcp },
      // Room for connections still closing (FIN exchange) besides those in flight.
      maxConnections: this.maxConnections,
      maxQueuedFrames: Math.max(8192, this.concurrency * 64),
      knownMac: (a) => this.macs.get(a),
      // An evicted entry costs a unicast ARP request before the next SYN: room for 100,000 servers.
      arp: { maxEntries: 100_000 },
    });
    claimAddress(net, this.host.ip, 'the load generator');
    this.host.attach();
  }

  /** Counters of the virtual host (connections, TCP retransmissions, drops). */
  get stats(): VirtualHostStats {
    return this.host.stats;
  }

  /**
   * Run the closed loop for `spec.durationMs` over `spec.targets`, then wait for the requests
   * still in flight (up to `requestTimeoutMs`).
   * @throws Error when already running or closed; RangeError for no targets, a bad duration,
   *   distribution or Zipf exponent.
   */
  async run(spec: LoadRun): Promise<LoadResult> {
    const { targets, durationMs, onProgress } = spec;
    if (!(durationMs > 0)) throw new RangeError(`duration ${durationMs} ms must be positive`);
    if (targets.length === 0) throw new RangeError('the load generator needs at least one target');
    const picker = createPicker(spec.distribution ?? 'random', targets.length, spec.alpha ?? 0.8, spec.seed ?? 1);
    this.begin(targets);
    const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
    const hits = new Uint32Array(targets.length);
    const errorsByKind: Partial<Record<LoadErrorKind, number>> = {};
    let requests = 0;
    let errors = 0;
    let bodyBytes = 0;
    const start = performance.now();
    const deadline = start + durationMs;
    const timer = onProgress ? setInterval(() => onProgress({ requests, errors, elapsed: (performance.now() - start) / 1000 }), spec.progressMs ?? 250) : undefined;
    const fail = (k: LoadErrorKind): void => {
      errors++;
      errorsByKind[k] = (errorsByKind[k] ?? 0) + 1;
    };
    const worker = async (): Promise<void> => {
      while (!this.closed && performance.now() < deadline) {
        const t = picker.next();
        const t0 = performance.now();
        const outcome = await this.fetchOnce(targets[t]!.ip);
        const t1 = performance.now();
        if (typeof outcome === 'string') fail(outcome);
        else if (t1 <= deadline) {
          requests++;
          bodyBytes += outcome;
          hits[t]!++;
          hist.recordValue(Math.max(1, Math.round((t1 - t0) * 1000)));
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: this.concurrency }, worker));
    } finally {
      if (timer) clearInterval(timer);
      this.running = false;
    }
    const seconds = durationMs / 1000;
    const n = hist.totalCount;
    const result: LoadResult = {
      requests,
      errors,
      errorsByKind,
      seconds,
      requestsPerSecond: requests / seconds,
      latencyUs: {
        p50: n ? hist.getValueAtPercentile(50) : 0,
        p90: n ? hist.getValueAtPercentile(90) : 0,
        p99: n ? hist.getValueAtPercentile(99) : 0,
        max: n ? hist.maxValue : 0,
        mean: n ? Math.round(hist.mean) : 0,
      },
      bodyBytes,
      hits,
    };
    hist.destroy();
    onProgress?.({ requests, errors, elapsed: (performance.now() - start) / 1000 });
    return result;
  }

  /**
   * Readiness check (after booting): fetch the document once from each of `targets` with index ≥
   * `from`, `concurrency` at a time; a target that fails (still booting: refused, reset, no
   * answer) is retried every `retryMs` (default 100) until `timeoutMs` has passed since the
   * start. `onProgress(done, total)` is called as targets answer.
   * @returns how many answered, the indices of those that never did, and the last failure.
   * @throws Error when already running or closed.
   */
  async visitAll(opts: {
    targets: readonly LoadTarget[];
    timeoutMs: number;
    retryMs?: number;
    from?: number;
    onProgress?: (done: number, total: number) => void;
  }): Promise<{
    answered: number;
    unanswered: number[];
    lastError: LoadErrorKind | undefined;
  }> {
    const { targets } = opts;
    this.begin(targets);
    const from = opts.from ?? 0;
    const total = targets.length - from;
    const deadline = performance.now() + opts.timeoutMs;
    const unanswered: number[] = [];
    let next = from;
    let answered = 0;
    let lastError: LoadErrorKind | undefined;
    const worker = async (): Promise<void> => {
      while (next < targets.length && !this.closed) {
        const i = next++;
        for (;;) {
          const r = await this.fetchOnce(targets[i]!.ip);
          if (typeof r === 'number') {
            answered++;
            opts.onProgress?.(answered, total);
            break;
          }
          lastError = r;
          if (this.closed || performance.now() >= deadline) {
            unanswered.push(i);
            break;
          }
          await new Promise((res) => setTimeout(res, opts.retryMs ?? 100));
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.concurrency, Math.max(1, total)) }, worker));
    } finally {
      this.running = false;
    }
    return { answered, unanswered: unanswered.sort((a, b) => a - b), lastError };
  }

  private begin(targets: readonly LoadTarget[]): void {
    if (this.closed) throw new Error('the load generator is closed');
    if (this.running) throw new Error('the load generator is already running');
    if (targets.length === 0) throw new RangeError('the load generator needs at least one target');
    for (const t of targets) if (t.mac && !this.macs.has(t.ip)) this.macs.set(t.ip, t.mac);
    this.running = true;
  }

  /**
   * Open a connection to `ip`. Local ports rotate per server over the ephemeral range (RFC
   * 6335), not over one counter for all: the server closes first and keeps TIME-WAIT (Ilwaco:
   * 30 s, its 64 newest), and a SYN that hits a TIME-WAIT connection of the same four-tuple
   * is answered with a challenge ACK, not a new connection (the open then fails). A port comes
   * back to the same server only after 16,384 connections to it, long after Ilwaco has dropped
   * that TIME-WAIT connection (it keeps only its newest 64). The rotation is kept per network,
   * so a generator that follows another on the same switch goes on where it stopped.
   * @throws RangeError when no connection can be opened (too many open, ports busy).
   */
  private connect(ip: number): TcpConnection {
    let port = this.nextPort.get(ip) ?? EPHEMERAL_FIRST + (Math.imul(ip, 0x9e3779b1) >>> 0) % EPHEMERAL_COUNT;
    for (let tries = 0; ; tries++) {
      const p = port;
      port = p >= EPHEMERAL_LAST ? EPHEMERAL_FIRST : p + 1;
      try {
        const c = this.host.connect(ip, this.port, { localPort: p });
        this.nextPort.set(ip, port);
        return c;
      } catch (e) {
        // The port may still be closing on our side: try the next, a few times.
        if (tries >= 8 || this.host.connectionCount >= this.maxConnections) throw e;
      }
    }
  }

  /** Reset open connections, detach from the switch and free the address. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.host.close();
    releaseAddress(this.net, this.host.ip);
  }

  /** One request on a new connection. @returns body bytes, or why it failed. */
  private fetchOnce(ip: number): Promise<number | LoadErrorKind> {
    return new Promise((resolve) => {
      let conn: TcpConnection;
      try {
        conn = this.connect(ip);
      } catch {
        resolve('connect');
        return;
      }
      const reader = new HttpResponseReader(Math.max(this.expected?.length ?? 0, 1 << 20));
      let done = false;
      const finish = (r: number | LoadErrorKind, how: 'close' | 'abort' | 'none'): void => {
        if (done) return;
        done = true;
        clearTimeout(timeout);
        if (how === 'abort') conn.abort();
        else if (how === 'close') closePassively(conn);
        resolve(r);
      };
      const timeout = setTimeout(() => finish('request-timeout', 'abort'), this.timeoutMs);
      conn.onConnect = () => {
        conn.write(this.request);
      };
      conn.onData = (d) => {
        conn.release(d.length);
        if (done) return;
        const r = reader.push(d);
        if (r === undefined) return;
        if (typeof r === 'string') return finish(r, 'abort');
        if (r.status !== 200) return finish('status', 'abort');
        if (this.expected && !Buffer.from(r.body.buffer, r.body.byteOffset, r.body.length).equals(this.expected)) return finish('body', 'abort');
        finish(r.body.length, 'close');
      };
      conn.onEnd = () => {
        conn.end();
        finish('closed-early', 'none');
      };
      conn.onAbort = (reason) => finish(reason, 'none');
      conn.onClose = () => finish('closed-early', 'none');
    });
  }
}
