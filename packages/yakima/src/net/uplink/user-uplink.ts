import { createServer, type Server, type Socket } from 'node:net';
import type { VirtualNetwork } from '../network.js';
import { claimAddress, releaseAddress } from './claims.js';
import { formatPortForward, type PortForward } from './port-forward.js';
import type { TcpConnection } from './tcp-endpoint.js';
import { VirtualHost, type VirtualHostOptions, type VirtualHostStats } from './virtual-host.js';

/** What the user-mode uplink needs of a Yakima instance (`Yakima` satisfies it). */
export interface UplinkTarget {
  /** The virtual network; undefined means networking is off (an error). */
  readonly net: VirtualNetwork | undefined;
  /** VMs in the order added; `id` is 1-based, `finished` VMs get no connections. */
  readonly vms?: ReadonlyArray<{ readonly id: number; readonly name: string; readonly finished: boolean }>;
}

/** Options of `attachUserModeUplink`. */
export interface UserModeUplinkOptions {
  /** Host address the forwards listen on. Default '127.0.0.1' (loopback only). */
  hostAddress?: string;
  /** The virtual host on the switch (MAC, IP — default the gateway —, TCP tunables …). */
  virtualHost?: VirtualHostOptions;
  /**
   * Map a forward to the guest's IPv4 address (host order), or undefined when there is no such
   * guest now. Default: the VM picked by `forward.guest` (see `PortForward`) among `target.vms`.
   */
  resolveGuest?: (forward: PortForward) => number | undefined;
}

/** Counters of the relay between host sockets and guest connections. */
export interface RelayStats {
  /** Host connections accepted. */
  accepted: number;
  /** Host connections reset because the forward's VM does not exist or has finished. */
  noGuest: number;
  /** Host connections reset because the guest refused, reset or stopped answering. */
  guestAborts: number;
  /** Guest connections reset because the host socket failed or closed early. */
  hostAborts: number;
  /** Host connections currently relayed. */
  active: number;
  /** Times a host socket was paused because the guest side could not take more (backpressure). */
  hostPauses: number;
}

/** A running user-mode uplink. */
export interface UserModeUplink {
  /** The virtual host on the switch. */
  readonly host: VirtualHost;
  /** Each forward with the host port actually bound (differs from `hostPort` only for 0). */
  readonly listening: ReadonlyArray<{ forward: PortForward; address: string; port: number }>;
  readonly relay: RelayStats;
  /** The virtual host's counters (connections, bytes, retransmits, drops by reason). */
  readonly stats: VirtualHostStats;
  /**
   * Reset the relayed connections to the VM at `ip` (host order) both ways — call it when that
   * VM finishes, so host clients see ECONNRESET at once instead of after retransmission
   * timeouts. @returns how many were reset.
   */
  guestGone(ip: number): number;
  /** Stop listening, reset open connections both ways, detach from the switch. */
  close(): Promise<void>;
}

/** Error thrown by `attachUserModeUplink` with a one-line, user-facing message. */
export class UplinkError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'UplinkError';
  }
}

/** The guest address a forward picks among `vms` (see `PortForward` for the rule). */
export function guestAddressOf(target: UplinkTarget, f: PortForward): number | undefined {
  const net = target.net;
  const vms = target.vms ?? [];
  if (!net) return undefined;
  const vm =
    f.guest === undefined
      ? vms[0]
      : typeof f.guest === 'number'
        ? vms.find((v) => v.id === f.guest)
        : vms.find((v) => v.name === f.guest);
  if (!vm || vm.finished) return undefined;
  return net.addressOf(vm.id);
}

/**
 * User-mode networking (no privileges; like QEMU's slirp `hostfwd`): for each forward, listen
 * on `hostAddress:hostPort` and relay every accepted host TCP connection to the guest's port
 * through a user-space TCP connection from the virtual host (gateway:ephemeral → guest:port).
 * Bytes are relayed unchanged both ways with backpressure (the host socket is paused while the
 * guest's window / our send buffer is full; the guest's window closes while the host socket's
 * writes are pending), half-closes become FIN / `socket.end()`, resets become RST /
 * `socket.resetAndDestroy()`, and a guest that refuses or never answers the SYN gets the host
 * connection reset.
 * @throws UplinkError (code 'ENONET') when `target.net` is undefined, ('EADDRINUSE',
 * 'EACCES', …) with one line naming the port when a listen fails — then nothing stays open —,
 * and Error when a TAP uplink already owns the virtual host's address.
 */
export async function attachUserModeUplink(
  target: UplinkTarget,
  forwards: readonly PortForward[],
  opts: UserModeUplinkOptions = {},
): Promise<UserModeUplink> {
  const net = target.net;
  if (!net) throw new UplinkError('-p needs networking: create Yakima with { network: true }', 'ENONET');
  const hostAddress = opts.hostAddress ?? '127.0.0.1';
  const host = new VirtualHost(net, opts.virtualHost);
  claimAddress(net, host.ip, 'the user-mode uplink');
  const resolve = opts.resolveGuest ?? ((f: PortForward) => guestAddressOf(target, f));
  const relay: RelayStats = { accepted: 0, noGuest: 0, guestAborts: 0, hostAborts: 0, active: 0, hostPauses: 0 };
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const listening: Array<{ forward: PortForward; address: string; port: number }> = [];

  const accept = (f: PortForward, sock: Socket): void => {
    relay.accepted++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const ip = resolve(f);
    let conn: TcpConnection;
    try {
      if (ip === undefined) throw new Error('no guest');
      conn = host.connect(ip, f.guestPort);
    } catch {
      relay.noGuest++;
      sock.on('error', () => {});
      sock.resetAndDestroy();
      return;
    }
    relay.active++;
    sock.setNoDelay(true);
    let hostEnded = false;
    let guestEnded = false;
    let finished = false;
    const finish = (): void => {
      if (!finished) {
        finished = true;
        relay.active--;
      }
    };
    const resetHost = (): void => {
      if (!sock.destroyed) sock.resetAndDestroy();
    };
    conn.onConnect = () => sock.resume();
    conn.onDrain = () => sock.resume();
    // The segments of one batch of frames (a response is usually two or more) leave in one
    // write when the batch is done, not one write(2) each. At most one receive window of bytes
    // is held here: the window stays closed until the host socket has taken them.
    let batch: Uint8Array[] = [];
    let batchBytes = 0;
    const writeBatch = (): void => {
      if (batchBytes === 0) return;
      const chunk = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      const n = batchBytes;
      batch = [];
      batchBytes = 0;
      if (!sock.destroyed) sock.write(chunk, () => conn.release(n));
    };
    conn.onData = (d) => {
      if (sock.destroyed) return;
      batch.push(d);
      batchBytes += d.length;
    };
    conn.onBatchEnd = writeBatch;
    conn.onEnd = () => {
      guestEnded = true;
      writeBatch();
      if (!sock.destroyed) sock.end();
    };
    conn.onAbort = () => {
      relay.guestAborts++;
      resetHost();
    };
    conn.onClose = () => {
      finish();
      if (!(hostEnded && guestEnded)) resetHost();
    };
    sock.on('data', (d: Buffer) => {
      if (conn.isClosed || hostEnded) return;
      if (!conn.write(d)) {
        relay.hostPauses++;
        sock.pause();
      }
    });
    sock.on('end', () => {
      hostEnded = true;
      conn.end();
    });
    sock.on('error', () => {
      if (!conn.isClosed) {
        relay.hostAborts++;
        conn.abort();
      }
    });
    sock.on('close', () => {
      if (!conn.isClosed && !(hostEnded && guestEnded)) {
        relay.hostAborts++;
        conn.abort();
      }
    });
  };

  try {
    for (const f of forwards) {
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => accept(f, s));
      servers.push(server);
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen({ port: f.hostPort, host: hostAddress, exclusive: true }, () => {
          server.off('error', rej);
          res();
        });
      });
      server.on('error', () => {});
      const a = server.address();
      listening.push({ forward: f, address: hostAddress, port: typeof a === 'object' && a ? a.port : f.hostPort });
    }
  } catch (e) {
    for (const s of servers) s.close();
    releaseAddress(net, host.ip);
    const err = e as NodeJS.ErrnoException;
    const f = forwards[servers.length - 1]!;
    const why =
      err.code === 'EADDRINUSE'
        ? 'address already in use'
        : err.code === 'EACCES'
          ? 'permission denied'
          : err.code === 'EADDRNOTAVAIL'
            ? 'address not available'
            : (err.message ?? String(e));
    throw new UplinkError(`-p ${formatPortForward(f)}: cannot listen on ${hostAddress}:${f.hostPort}: ${why}`, err.code ?? 'EIO');
  }
  host.attach();

  return {
    host,
    listening,
    relay,
    get stats() {
      return host.stats;
    },
    guestGone(ip: number) {
      return host.abortPeer(ip);
    },
    async close() {
      const closed = Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
      host.close();
      for (const s of sockets) s.resetAndDestroy();
      await closed;
      releaseAddress(net, host.ip);
    },
  };
}
