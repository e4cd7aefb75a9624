import { createServer } from 'node:net';

/**
 * A free loopback TCP port: bound to port 0, read, released. Another process may take it before
 * the caller binds it (a small race the benches and tests accept).
 * @throws Error when no loopback port can be bound.
 */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolvePort(p));
    });
  });
}
