/**
 * CPU cost of the `-p` relay per keep-alive HTTP-like request, without a VM: wrk (or, without
 * wrk, nothing: the bench says so) → 127.0.0.1:PORT → the user-mode uplink → the virtual switch
 * → a "guest" that is a second user-space TCP endpoint (a VirtualHost at VM 1's address) and
 * answers each request with a fixed response of `BYTES` bytes (default 2,000: httpd's documents).
 * Prints requests/s and this process's CPU time per request (relay and guest endpoint together;
 * the guest endpoint runs the same code, so a change to it counts twice here), and the main
 * thread's busy time per request (its event loop's active time: the guest endpoint, the switch
 * and the uplink's port; the relay itself runs in the uplink's worker thread).
 * Run: npx tsx packages/yakima/bench/uplink-relay.ts [SECONDS=4] [CONNECTIONS=8] [BYTES=2000]
 */
import { execFileSync, spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { VirtualNetwork, parseIPv4 } from '../src/net/network.js';
import { attachUserModeUplink } from '../src/net/uplink/user-uplink.js';
import { VirtualHost } from '../src/net/uplink/virtual-host.js';

const [seconds = 4, connections = 8, bytes = 2000] = process.argv.slice(2).map(Number);
try {
  execFileSync('wrk', ['-v'], { stdio: 'ignore' });
} catch (e) {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
    console.log('uplink-relay: wrk is not installed (apt-get install -y wrk); nothing measured');
    process.exit(0);
  }
}
const net = new VirtualNetwork();
const guest = new VirtualHost(net, { name: 'guest', ip: parseIPv4('10.73.0.2'), mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 1]) });
guest.attach();
const body = Buffer.alloc(bytes - 64, 'x');
const response = Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nX-Pad: ${'p'.repeat(64 - 38 - String(body.length).length - 4)}\r\n\r\n`), body]);
guest.listen(80, (c) => {
  let seen = 0;
  c.onData = (d) => {
    // One response per request head ("\r\n\r\n"); wrk sends a request only after the answer.
    for (let i = 0; i < d.length; i++) {
      seen = d[i] === (seen & 1 ? 10 : 13) ? seen + 1 : d[i] === 13 ? 1 : 0;
      if (seen === 4) {
        c.write(response);
        seen = 0;
      }
    }
    c.release(d.length);
  };
  c.onEnd = () => c.end();
});
const up = await attachUserModeUplink({ net }, [{ hostPort: 0, guestPort: 80 }], { resolveGuest: () => guest.ip });
const port = up.listening[0]!.port;
const t0 = process.cpuUsage();
const elu0 = performance.eventLoopUtilization();
const w0 = performance.now();
const out = await new Promise<string>((resolve) => {
  const p = spawn('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}/`]);
  let text = '';
  p.stdout.on('data', (d: Buffer) => (text += d.toString()));
  p.on('close', () => resolve(text));
});
const cpu = process.cpuUsage(t0);
const mainBusyMs = performance.eventLoopUtilization(elu0).active;
await up.refreshStats(); // the uplink's counters are mirrored from its worker thread
const wall = (performance.now() - w0) / 1000;
const n = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
if (process.env.UPLINK_RELAY_DEBUG) console.log(out);
console.log(
  `uplink-relay: ${connections} connections, ${bytes} B responses: ${Math.round(n / seconds)} req/s; ` +
    `CPU ${(((cpu.user + cpu.system) / Math.max(1, n))).toFixed(1)} µs per request ` +
    `(user ${(cpu.user / 1e6).toFixed(2)} s, system ${(cpu.system / 1e6).toFixed(2)} s over ${wall.toFixed(1)} s); ` +
    `main thread busy ${((mainBusyMs * 1000) / Math.max(1, n)).toFixed(1)} µs per request; ` +
    `retransmits ${up.stats.tcp.retransmits + guest.stats.tcp.retransmits}`,
);
await up.close();
guest.close();
process.exit(0); // wrk's last connections may still be draining through the closed relay
