import { chmodSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Yakima } from '../control/yakima.js';
import type { ConsoleTailSink } from '../devices/console-tail.js';
import type { Backend } from '../control/yakima.js';
import { socketPath } from './instance-dir.js';
import { ApiError, sendError } from './http-util.js';
import { createRoutes } from './routes.js';

/** Most connections the control socket holds at once (operators' tools need a handful). */
export const MAX_CONNECTIONS = 256;

/** Options of `startControlServer`. */
export interface ControlServerOptions {
  /** Instance name (the socket is `<runtime dir>/<name>.sock`). */
  name: string;
  /** The console sink the instance writes through, for console tails and follow streams. */
  tail: ConsoleTailSink;
  /** CPU backend the instance runs VMs on (reported by `GET /v1/instance`). */
  backend: Backend | 'process';
  /** Version string reported by `GET /v1/instance`. */
  version: string;
  /** Called by `POST /v1/instance/shutdown` (default: `yakima.stop('shutdown')`). */
  onShutdown?: () => void;
}

/** A running control server. */
export interface ControlServer {
  /** Path of its Unix socket. */
  readonly socket: string;
  /** Stop listening, end follow streams, remove the socket file. */
  close(): Promise<void>;
}

/**
 * Serve the control API (openapi.json beside this file) of `yakima` on a Unix domain socket
 * that only this user can open (mode 0600 in a 0700 directory, see `runtimeDir`). HTTP/1.1
 * with JSON bodies, as Firecracker's and Cloud Hypervisor's API sockets. Every request error
 * becomes a 4xx JSON `{"error"}`; a handler bug becomes a 500 JSON error, never a crash.
 * @throws Error when an instance of that name is already listening, or the socket cannot be made.
 */
export async function startControlServer(yakima: Yakima, opts: ControlServerOptions): Promise<ControlServer> {
  const path = socketPath(opts.name);
  if (await isListening(path)) throw new Error(`an instance named '${opts.name}' is already running (${path})`);
  try {
    unlinkSync(path); // a stale socket of an instance that died
  } catch {
    /* none */
  }
  const followers = new Set<ServerResponse>();
  const routes = createRoutes(yakima, { ...opts, socket: path, startedAt: new Date(), followers });
  const server: Server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 }, (req, res) => {
    void handle(req, res);
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await routes(req, res);
    } catch (e) {
      if (e instanceof ApiError) sendError(res, e.status, e.message);
      else sendError(res, 500, `internal error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n' + JSON.stringify({ error: `bad HTTP request: ${err.message}` }));
    else socket.destroy();
  });
  server.keepAliveTimeout = 5_000;
  // Each connection holds buffers: bound how many a client can open (more are refused).
  server.maxConnections = MAX_CONNECTIONS;
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
  server.unref();
  let closed = false;
  return {
    socket: path,
    async close() {
      if (closed) return;
      closed = true;
      for (const r of followers) r.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    },
  };
}

/** True when something accepts connections on the Unix socket `path`. */
export function isListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
