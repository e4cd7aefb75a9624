/**
 * The user-mode uplink's relay worker (a `worker_threads` thread): the listening servers, the
 * accepted host sockets and the `VirtualHost` TCP/ARP/ICMP stack run here, on another core than
 * the emulator on Yakima's main thread. Frames cross to the main thread's switch port through
 * two `FrameRing`s (relay-protocol.ts); the guest address of each accepted connection is asked
 * of the main thread, which owns the VM table.
 *
 * Started by user-uplink.ts from source (tsx) or, in the CLI bundle, as code built from this
 * file (scripts/build-cli.mjs); it runs when loaded in a worker whose `workerData` says so.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { consumeOnBell, FrameRing } from './frame-ring.js';
import type { FromRelayWorker, RelaySnapshot, RelayWorkerData, ToRelayWorker } from './relay-protocol.js';
import { newRelayStats, relaySocket } from './socket-relay.js';
import { VirtualHost, type VirtualHostNet } from './virtual-host.js';

/** Counters reach the main thread at most this often (ms) while anything changes. */
const STATS_EVERY_MS = 20;

/** Run the relay in this worker until the main thread says 'close'. */
export function runRelayWorker(data: RelayWorkerData, port: NonNullable<typeof parentPort>): void {
  const post = (m: FromRelayWorker): void => port.postMessage(m);
  const toWorker = new FrameRing(data.rings.sab, data.rings.toWorker.offset, data.rings.toWorker.capacity);
  const toMain = new FrameRing(data.rings.sab, data.rings.toMain.offset, data.rings.toMain.capacity);
  const relay = newRelayStats();
  let statsTimer: ReturnType<typeof setTimeout> | undefined;
  let wakeQueued = false;
  const wakeMain = (): void => {
    wakeQueued = false;
    toMain.wakeConsumer();
  };
  const snapshot = (): RelaySnapshot => ({ relay, stats: host.stats, busy: host.busy });
  const postStats = (): void => {
    statsTimer = undefined;
    post({ t: 'stats', ...snapshot() });
  };
  let closed = false;
  const changed = (): void => {
    if (!closed) statsTimer ??= setTimeout(postStats, STATS_EVERY_MS);
  };
  // The switch is on the main thread: frames go into the ring; the main thread is rung once per
  // task (microtask), not per frame, and only when it is not polling anyway.
  const net: VirtualHostNet = {
    ...data.subnet,
    switch: {
      attach() {},
      detach() {},
      forward(_from, frame, flags = 0) {
        const ok = toMain.push(frame, flags);
        if (!wakeQueued) {
          wakeQueued = true;
          queueMicrotask(wakeMain);
        }
        changed();
        return ok;
      },
    },
  };
  const macs = new Map<number, Uint8Array>();
  const host = new VirtualHost(net, { ...data.virtualHost, knownMac: (ip) => macs.get(ip) });
  host.attach();
  const stopConsuming = consumeOnBell(
    toWorker,
    (frame, flags) => host.deliver(frame, flags),
    () => {
      host.processBatch();
      changed();
    },
  );

  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const pending = new Map<number, { sock: Socket; index: number }>();
  let nextId = 1;
  const accept = (index: number, sock: Socket): void => {
    relay.accepted++;
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    const id = nextId++;
    pending.set(id, { sock, index });
    post({ t: 'accept', id, index });
    changed();
  };
  const connectGuest = (m: Extract<ToRelayWorker, { t: 'guest' }>): void => {
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    const { sock } = p;
    const finished = (): void => post({ t: 'finished', id: m.id });
    if (m.mac && m.ip !== undefined) macs.set(m.ip, m.mac);
    let conn;
    try {
      if (sock.destroyed) throw new Error('host connection gone');
      if (m.ip === undefined) throw new Error('no guest');
      conn = host.connect(m.ip, data.forwards[p.index]!.guestPort);
    } catch {
      if (!sock.destroyed) relay.noGuest++;
      sock.on('error', () => {});
      sock.resetAndDestroy();
      if (m.ip !== undefined) finished();
      changed();
      return;
    }
    relaySocket(sock, conn, relay, () => {
      finished();
      changed();
    });
  };

  const close = async (): Promise<void> => {
    const serversClosed = Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
    host.close();
    for (const s of sockets) s.resetAndDestroy();
    await serversClosed;
    closed = true;
    stopConsuming();
    if (statsTimer !== undefined) clearTimeout(statsTimer);
    toMain.wakeConsumer();
    post({ t: 'closed', ...snapshot() });
    port.close();
  };

  port.on('message', (m: ToRelayWorker) => {
    switch (m.t) {
      case 'guest':
        return connectGuest(m);
      case 'guestGone':
        host.abortPeer(m.ip);
        return changed();
      case 'stats':
        if (statsTimer !== undefined) clearTimeout(statsTimer);
        return postStats();
      case 'close':
        void close();
        return;
    }
  });

  const listen = async (): Promise<void> => {
    const ports: number[] = [];
    for (let i = 0; i < data.forwards.length; i++) {
      const f = data.forwards[i]!;
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => accept(i, s));
      servers.push(server);
      try {
        await new Promise<void>((res, rej) => {
          server.once('error', rej);
          server.listen({ port: f.hostPort, host: data.hostAddress, exclusive: true }, () => {
            server.off('error', rej);
            res();
          });
        });
      } catch (e) {
        for (const s of servers) s.close();
        const err = e as NodeJS.ErrnoException;
        post({ t: 'listenError', index: i, code: err.code, message: err.message ?? String(e) });
        stopConsuming();
        port.close();
        return;
      }
      server.on('error', () => {});
      const a = server.address();
      ports.push(typeof a === 'object' && a ? a.port : f.hostPort);
    }
    post({ t: 'listening', ports });
  };
  void listen();
}

if (!isMainThread && parentPort && (workerData as Partial<RelayWorkerData> | undefined)?.denaliRelayWorker) {
  runRelayWorker(workerData as RelayWorkerData, parentPort);
}
