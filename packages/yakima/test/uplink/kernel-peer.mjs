// Test helper run inside a network namespace (`ip netns exec NS node kernel-peer.mjs`): plays the
// Linux-kernel-TCP side of the uplink tests. Commands arrive as JSON lines on stdin, replies and
// events leave as JSON lines on stdout. Exits when stdin closes or after 120 s at most.
import { createServer, connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const servers = [];
setTimeout(() => process.exit(3), 120_000).unref();

function data(n) {
  return randomBytes(n);
}

function track(sock, report) {
  const h = createHash('sha256');
  let received = 0;
  let endedBy = 'close';
  sock.on('data', (d) => {
    h.update(d);
    received += d.length;
  });
  sock.on('end', () => (endedBy = 'fin'));
  sock.on('error', (e) => (endedBy = e.code === 'ECONNRESET' ? 'reset' : `error ${e.code}`));
  sock.on('close', () => report({ received, sha256: h.digest('hex'), endedBy }));
}

function writeAll(sock, buf, then) {
  const h = createHash('sha256').update(buf).digest('hex');
  sock.write(buf, () => then?.());
  return h;
}

const modes = {
  sink(sock, cmd, ev) {
    track(sock, (r) => ev(r));
    sock.on('end', () => sock.end());
  },
  slowsink(sock, cmd, ev) {
    track(sock, (r) => ev(r));
    sock.pause();
    let rounds = 0;
    const tick = () => {
      if (sock.destroyed) return;
      sock.resume();
      setTimeout(() => {
        sock.pause();
        if (++rounds < 2000) setTimeout(tick, cmd.pauseMs ?? 50);
      }, 2);
    };
    setTimeout(tick, cmd.firstPauseMs ?? 500);
    sock.on('end', () => sock.end());
  },
  source(sock, cmd, ev) {
    let sent;
    track(sock, (r) => ev({ ...r, sentSha256: sent }));
    sent = writeAll(sock, data(cmd.bytes), () => sock.end());
  },
  echo(sock, cmd, ev) {
    track(sock, (r) => ev(r));
    sock.on('data', (d) => {
      if (!sock.write(d)) {
        sock.pause();
        sock.once('drain', () => sock.resume());
      }
    });
    sock.on('end', () => sock.end());
  },
  replyAfterEnd(sock, cmd, ev) {
    let sent;
    track(sock, (r) => ev({ ...r, sentSha256: sent }));
    sock.on('end', () => {
      sent = writeAll(sock, data(cmd.bytes), () => sock.end());
    });
  },
  reset(sock, cmd, ev) {
    track(sock, (r) => ev(r));
    sock.once('data', () => setTimeout(() => sock.resetAndDestroy(), 20));
  },
};

async function handle(cmd) {
  if (cmd.op === 'listen') {
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      modes[cmd.mode](sock, cmd, (r) => out({ event: 'conn', port: cmd.port, mode: cmd.mode, ...r }));
    });
    servers.push(server);
    await new Promise((res, rej) => server.listen(cmd.port, cmd.host, res).once('error', rej));
    return {};
  }
  if (cmd.op === 'connect') {
    const sock = connect({ host: cmd.host, port: cmd.port, allowHalfOpen: true });
    const t0 = performance.now();
    return await new Promise((res) => {
      let sent;
      sock.on('connect', () => {
        sent = writeAll(sock, data(cmd.bytes), () => sock.end());
      });
      track(sock, (r) => res({ ...r, sentSha256: sent, ms: performance.now() - t0 }));
    });
  }
  if (cmd.op === 'exit') process.exit(0);
  throw new Error(`unknown op ${cmd.op}`);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  handle(cmd).then(
    (r) => out({ id: cmd.id, ok: true, ...r }),
    (e) => out({ id: cmd.id, ok: false, error: String(e) }),
  );
});
process.stdin.on('end', () => process.exit(0));
out({ event: 'ready' });
