/**
 * The smallest JavaScript relay in front of a TCP server, for `pnpm bench:web`'s "relay" row:
 * the ceiling of any design that moves every byte through Node's event loop (as the `-p` relay
 * does), with no TCP stack, switch or VM of Denali's in the path. Each accepted connection is
 * piped to `TARGET_PORT` (Node's `net.Socket` streams, Nagle off both ways, backpressure by
 * `pipe`); a reset on either side resets the other.
 * Run: npx tsx packages/denali-cli/bench/web-relay.ts LISTEN_PORT TARGET_PORT
 * Prints `relaying 127.0.0.1:LISTEN_PORT -> 127.0.0.1:TARGET_PORT` once listening.
 */
import { connect, createServer, type Socket } from 'node:net';

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
if (!listenPort || !targetPort) {
  console.error('usage: web-relay.ts LISTEN_PORT TARGET_PORT');
  process.exit(2);
}

const join = (a: Socket, b: Socket): void => {
  a.setNoDelay(true);
  a.pipe(b);
  a.on('error', () => b.resetAndDestroy());
};

const server = createServer({ allowHalfOpen: false }, (client) => {
  const upstream = connect(targetPort, '127.0.0.1');
  join(client, upstream);
  join(upstream, client);
});
server.listen(listenPort, '127.0.0.1', () => console.log(`relaying 127.0.0.1:${listenPort} -> 127.0.0.1:${targetPort}`));
process.on('SIGINT', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
