import { Worker } from 'node:worker_threads';
import type { VirtualNetwork } from '../network.js';
import type { SwitchPort } from '../switch.js';
import { claimAddress, releaseAddress } from './claims.js';
import type { FrameRingStats } from './frame-ring.js';
import { formatPortForward, type PortForward } from './port-forward.js';
import { RelayPort } from './relay-port.js';
import { newRelayRings, type FromRelayWorker, type RelaySnapshot, type RelayWorkerData, type ToRelayWorker } from './relay-protocol.js';
import { relayWorkerScript } from './relay-worker-source.js';
import { newRelayStats, type RelayStats } from './socket-relay.js';
import { resolveTcpOptions } from './tcp-endpoint.js';
import { checkHostAddress, newVirtualHostStats, VIRTUAL_HOST_MAC, type VirtualHostOptions, type VirtualHostStats } from './virtual-host.js';

export type { RelayStats } from './socket-relay.js';

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
  /** Told (once) when the relay worker fails after the uplink started. Default: one line on stderr. */
  onError?: (e: UplinkError) => void;
}

/** A running user-mode uplink. */
export interface UserModeUplink {
  /** The uplink's port on the switch (the virtual host's MAC; its TCP stack runs in the relay worker). */
  readonly port: SwitchPort;
  /** Each forward with the host port actually bound (differs from `hostPort` only for 0). */
  readonly listening: ReadonlyArray<{ forward: PortForward; address: string; port: number }>;
  /**
   * Relay counters, mirrored from the relay worker (at most `STATS_EVERY_MS` = 20 ms old while
   * anything changes; `refreshStats` for exact values).
   */
  readonly relay: RelayStats;
  /** The virtual host's counters (connections, bytes, retransmits, drops by reason), mirrored like `relay`. */
  readonly stats: VirtualHostStats;
  /** Frames (not bytes) through the shared rings between the switch and the worker, and those dropped because a ring was full. Exact. */
  readonly rings: { toWorker: FrameRingStats; toMain: FrameRingStats };
  /** The virtual host had connections, timers or queued frames (as of the last mirror). */
  readonly busy: boolean;
  /** Fetch the worker's counters now (`relay`, `stats`, `busy` are then exact as of its answer). */
  refreshStats(): Promise<void>;
  /**
   * Reset the relayed connections to the VM at `ip` (host order) both ways — call it when that
   * VM finishes, so host clients see ECONNRESET at once instead of after retransmission
   * timeouts. The resets happen in the worker right after. @returns how many relayed
   * connections to `ip` were open.
   */
  guestGone(ip: number): number;
  /** Stop listening, reset open connections both ways, stop the worker, detach from the switch. */
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
 * Bytes are relayed unchanged both ways with backpressure, half-closes become FIN /
 * `socket.end()`, resets become RST / `socket.resetAndDestroy()`, and a guest that refuses or
 * never answers the SYN gets the host connection reset (see `relaySocket`).
 *
 * The servers, host sockets and the virtual host's TCP/ARP/ICMP stack run in a worker thread
 * (relay-worker.ts), in parallel with the emulator on this thread; the switch port here only
 * moves frames through two bounded shared rings (`RelayPort`). The guest of each accepted
 * connection is resolved here, when it arrives (`resolveGuest`, `virtualHost.knownMac`).
 * @throws UplinkError (code 'ENONET') when `target.net` is undefined, ('EADDRINUSE',
 * 'EACCES', …) with one line naming the port when a listen fails — then nothing stays open —,
 * ('EWORKER') when the relay worker cannot start; RangeError for a virtual host address off
 * the subnet; and Error when a TAP uplink already owns the virtual host's address.
 */
export async function attachUserModeUplink(
  target: UplinkTarget,
  forwards: readonly PortForward[],
  opts: UserModeUplinkOptions = {},
): Promise<UserModeUplink> {
  const net = target.net;
  if (!net) throw new UplinkError('-p needs networking: create Yakima with { network: true }', 'ENONET');
  const hostAddress = opts.hostAddress ?? '127.0.0.1';
  const { knownMac, ...hostOpts } = opts.virtualHost ?? {};
  const ip = hostOpts.ip ?? net.gateway;
  checkHostAddress(net, ip);
  resolveTcpOptions(hostOpts.tcp ?? {}); // bad tunables fail here, not in the worker
  claimAddress(net, ip, 'the user-mode uplink');
  const resolve = opts.resolveGuest ?? ((f: PortForward) => guestAddressOf(target, f));
  const rings = newRelayRings();
  const data: RelayWorkerData = {
    denaliRelayWorker: true,
    rings,
    subnet: { network: net.network, netmask: net.netmask, gateway: net.gateway },
    virtualHost: hostOpts,
    forwards: forwards.map((f) => ({ ...f })),
    hostAddress,
  };
  const port = new RelayPort(hostOpts.name ?? 'user-uplink', (hostOpts.mac ?? VIRTUAL_HOST_MAC).slice(0, 6), rings, (from, f, flags) =>
    net.switch.forward(from, f, flags),
  );
  const worker = new Worker(relayWorkerScript(), { eval: true, workerData: data });
  let snap: RelaySnapshot = { relay: newRelayStats(), stats: newVirtualHostStats(), busy: false };
  /** Open relayed connections by id → guest address (for `guestGone`'s count). */
  const open = new Map<number, number>();
  const statsWaiters: Array<() => void> = [];
  let onClosed: (() => void) | undefined;
  let failed: Error | undefined;
  let closing: Promise<void> | undefined;
  let started: { ok: (ports: number[]) => void; fail: (e: Error) => void } | undefined;
  const startedP = new Promise<number[]>((ok, fail) => (started = { ok, fail }));

  worker.on('message', (m: FromRelayWorker) => {
    switch (m.t) {
      case 'listening':
        return started?.ok(m.ports);
      case 'listenError': {
        const f = forwards[m.index]!;
        const why =
          m.code === 'EADDRINUSE'
            ? 'address already in use'
            : m.code === 'EACCES'
              ? 'permission denied'
              : m.code === 'EADDRNOTAVAIL'
                ? 'address not available'
                : m.message;
        return started?.fail(new UplinkError(`-p ${formatPortForward(f)}: cannot listen on ${hostAddress}:${f.hostPort}: ${why}`, m.code ?? 'EIO'));
      }
      case 'accept': {
        const f = forwards[m.index]!;
        let guest: number | undefined;
        try {
          guest = resolve(f);
        } catch {
          guest = undefined;
        }
        // A copy: a view would clone its whole underlying buffer into the message.
        const mac = guest !== undefined ? knownMac?.(guest)?.slice(0, 6) : undefined;
        if (guest !== undefined) open.set(m.id, guest);
        worker.postMessage({ t: 'guest', id: m.id, ip: guest, mac } satisfies ToRelayWorker);
        return;
      }
      case 'finished':
        open.delete(m.id);
        return;
      case 'stats':
      case 'closed':
        snap = m;
        for (const w of statsWaiters.splice(0)) w();
        if (m.t === 'closed') onClosed?.();
        return;
    }
  });
  const died = (e: Error): void => {
    if (!failed && !started && !closing) {
      // After start, the relay is gone for good: say so once instead of stalling silently.
      (opts.onError ?? ((err: Error) => console.error(`yakima: ${err.message}`)))(new UplinkError(`-p: the relay worker stopped: ${e.message.split('\n')[0]}`, 'EWORKER'));
    }
    failed ??= e;
    started?.fail(new UplinkError(`-p: the relay worker failed: ${e.message.split('\n')[0]}`, 'EWORKER'));
    for (const w of statsWaiters.splice(0)) w();
    onClosed?.();
  };
  worker.on('error', died);
  worker.on('exit', (code) => died(new Error(`relay worker exited (code ${code})`)));

  let ports: number[];
  try {
    ports = await startedP;
  } catch (e) {
    port.stop();
    await worker.terminate();
    releaseAddress(net, ip);
    throw e;
  }
  started = undefined;
  net.switch.attach(port);
  net.addPolledPort(port);
  const listening = forwards.map((forward, i) => ({ forward, address: hostAddress, port: ports[i]! }));

  return {
    port,
    listening,
    get relay() {
      return snap.relay;
    },
    get stats() {
      return snap.stats;
    },
    get busy() {
      return snap.busy;
    },
    get rings() {
      return { toWorker: port.toWorker.stats, toMain: port.toMain.stats };
    },
    refreshStats() {
      if (failed || closing) return Promise.resolve();
      return new Promise<void>((res) => {
        statsWaiters.push(res);
        worker.postMessage({ t: 'stats' } satisfies ToRelayWorker);
      });
    },
    guestGone(guestIp: number) {
      let n = 0;
      for (const [id, g] of open) {
        if (g === guestIp) {
          open.delete(id);
          n++;
        }
      }
      if (!failed && !closing) worker.postMessage({ t: 'guestGone', ip: guestIp } satisfies ToRelayWorker);
      return n;
    },
    close() {
      closing ??= (async () => {
        if (!failed) {
          const done = new Promise<void>((res) => (onClosed = res));
          worker.postMessage({ t: 'close' } satisfies ToRelayWorker);
          await done;
        }
        port.poll(); // the RSTs the worker sent while closing reach the guests
        net.removePolledPort(port);
        net.switch.detach(port);
        port.stop();
        await worker.terminate();
        releaseAddress(net, ip);
      })();
      return closing;
    },
  };
}
