/**
 * What Yakima's main thread and the user-mode uplink's relay worker (relay-worker.ts) tell each
 * other: the shared-memory layout of the two frame rings, the worker's start data, and the
 * messages (`postMessage`; only for rare events: connections opened/closed, counters, close).
 */
import type { PortForward } from './port-forward.js';
import type { RelayStats } from './socket-relay.js';
import { FrameRing } from './frame-ring.js';
import type { VirtualHostOptions, VirtualHostStats } from './virtual-host.js';

/** Data bytes of each ring: 2 MiB hold ~1,300 full-size frames, more than the TCP windows in flight (64 KiB × connections) need before TCP's own backpressure, and a bounded cost per uplink. */
export const RELAY_RING_BYTES = 2 << 20;

/** Where each ring lives in the shared buffer. */
export interface RelayRings {
  sab: SharedArrayBuffer;
  /** Main thread → worker (frames the switch delivered to the virtual host). */
  toWorker: { offset: number; capacity: number };
  /** Worker → main thread (frames the virtual host sends into the switch). */
  toMain: { offset: number; capacity: number };
}

/** A new shared buffer holding two rings of `capacity` data bytes each. */
export function newRelayRings(capacity = RELAY_RING_BYTES): RelayRings {
  const each = FrameRing.bytesFor(capacity);
  return { sab: new SharedArrayBuffer(2 * each), toWorker: { offset: 0, capacity }, toMain: { offset: each, capacity } };
}

/** `workerData` of the relay worker. */
export interface RelayWorkerData {
  /** Marks the relay worker (the bundled worker code checks it before it starts). */
  denaliRelayWorker: true;
  rings: RelayRings;
  /** The virtual subnet (host order). */
  subnet: { network: number; netmask: number; gateway: number };
  /** Options of the worker's `VirtualHost` (without `knownMac`: a function stays on the main thread). */
  virtualHost: Omit<VirtualHostOptions, 'knownMac'>;
  forwards: PortForward[];
  hostAddress: string;
}

/** Messages main → worker. */
export type ToRelayWorker =
  /** The guest (host-order IPv4, and its MAC when known in advance) for accepted connection `id`; `ip` undefined: no such VM. */
  | { t: 'guest'; id: number; ip?: number; mac?: Uint8Array }
  /** Reset every relayed connection to `ip` (the VM finished). */
  | { t: 'guestGone'; ip: number }
  /** Post counters now (answered with 'stats'). */
  | { t: 'stats' }
  /** Stop listening, reset everything, answer 'closed'. */
  | { t: 'close' };

/** Counters the worker mirrors to the main thread. */
export interface RelaySnapshot {
  relay: RelayStats;
  stats: VirtualHostStats;
  /** The virtual host has connections, timers or queued frames. */
  busy: boolean;
}

/** Messages worker → main. */
export type FromRelayWorker =
  | { t: 'listening'; ports: number[] }
  /** Listening on forward `index` failed (`code`: errno name such as 'EADDRINUSE'). Nothing stays open. */
  | { t: 'listenError'; index: number; code?: string; message: string }
  /** Host connection `id` accepted on forward `index`: which guest? */
  | { t: 'accept'; id: number; index: number }
  /** Relayed connection `id` is over. */
  | { t: 'finished'; id: number }
  | ({ t: 'stats' } & RelaySnapshot)
  /** Everything is closed; frames sent while closing (RSTs) are in the ring. */
  | ({ t: 'closed' } & RelaySnapshot);
