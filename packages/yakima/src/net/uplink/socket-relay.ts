import type { Socket } from 'node:net';
import type { TcpConnection } from './tcp-endpoint.js';

/** Counters of the relay between host sockets and guest connections. */
export interface RelayStats {
  /** Host connections accepted. */
  accepted: number;
  /** Host connections reset because the forward's VM does not exist or has finished. */
  noGuest: number;
  /** Host connections reset because the guest refused, reset or stopped answering. */
  guestAborts: number;
  /** Host connections reset because the host socket failed or closed early. */
  hostAborts: number;
  /** Host connections currently relayed. */
  active: number;
  /** Times a host socket was paused because the guest side could not take more (backpressure). */
  hostPauses: number;
}

/** A zeroed `RelayStats`. */
export function newRelayStats(): RelayStats {
  return { accepted: 0, noGuest: 0, guestAborts: 0, hostAborts: 0, active: 0, hostPauses: 0 };
}

/**
 * Relay the accepted host socket `sock` (created paused) and the user-space TCP connection
 * `conn` to the guest, both ways, until both are closed: bytes unchanged, with backpressure (the
 * host socket is paused while the guest's window / our send buffer is full; the guest's window
 * stays closed while the host socket's writes are pending), half-closes as FIN / `end()`,
 * resets as RST / `resetAndDestroy()`. Counts into `relay` (`active` is incremented here and
 * decremented when `conn` closes, then `onFinish` runs once).
 */
export function relaySocket(sock: Socket, conn: TcpConnection, relay: RelayStats, onFinish?: () => void): void {
  relay.active++;
  sock.setNoDelay(true);
  let hostEnded = false;
  let guestEnded = false;
  let finished = false;
  const finish = (): void => {
    if (!finished) {
      finished = true;
      relay.active--;
      onFinish?.();
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
}
