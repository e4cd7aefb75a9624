/**
 * Throughput of Yakima's user-space TCP endpoint against the Linux kernel's TCP over a TAP
 * device in a private network namespace (root needed), plus the kernel's own loopback figure
 * for scale. Run: npx tsx packages/yakima/bench/uplink-tap.ts [MB] [concurrent]
 */
import { connect as netConnect } from 'node:net';
import { Yakima } from '../src/control/yakima.js';
import { parseIPv4 } from '../src/net/network.js';
import { attachTapUplink, probeTap } from '../src/net/uplink/tap-uplink.js';
import { attachUserModeUplink } from '../src/net/uplink/user-uplink.js';
import { VirtualHost } from '../src/net/uplink/virtual-host.js';
import type { TcpConnection } from '../src/net/uplink/tcp-endpoint.js';
import { KernelPeer, createNetns, deleteNetns } from '../test/uplink/netns.js';

const mb = Number(process.argv[2] ?? 64);
const concurrent = Number(process.argv[3] ?? 0);
const p = probeTap();
if (!p.usable) {
  console.log(`skipped: ${p.reason}`);
  process.exit(0);
}
const NS = `dnbench${process.pid}`;
createNetns(NS);
if (process.env['RMEM']) (await import('../test/uplink/netns.js')).inNetns(NS, ['sysctl', '-q', '-w', `net.ipv4.tcp_rmem=${process.env['RMEM']}`]);
const yakima = new Yakima({ network: true });
const tap = await attachTapUplink(yakima, { netns: NS, name: 'dnbench%d' });
const vh = new VirtualHost(yakima.net!, { ip: parseIPv4('10.73.0.250'), mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 0xfa]) });
vh.attach();
const peer = new KernelPeer(NS);
await peer.ready;
await peer.call({ op: 'listen', port: 7001, mode: 'sink', host: '10.73.0.1' });
await peer.call({ op: 'listen', port: 7002, mode: 'source', host: '10.73.0.1', bytes: mb << 20 });
await peer.call({ op: 'listen', port: 7003, mode: 'echo', host: '10.73.0.1' });
const KERNEL = parseIPv4('10.73.0.1');
const rate = (bytes: number, ms: number) => `${((bytes / ms) * 1e3 / 1e6).toFixed(1)} MB/s`;
try {
  // Endpoint → kernel.
  const chunk = Buffer.alloc(65_536, 1);
  let t0 = performance.now();
  const c = vh.connect(KERNEL, 7001);
  await new Promise<void>((res) => {
    let sent = 0;
    const go = () => {
      while (sent < mb << 20) {
        sent += chunk.length;
        if (!c.write(chunk)) return;
      }
      c.end();
      res();
    };
    c.onConnect = go;
    c.onDrain = go;
    c.onData = (d) => c.release(d.length);
  });
  await peer.nextEvent((e) => e.port === 7001, 120_000);
  console.log(`endpoint → kernel: ${mb} MiB, ${rate(mb << 20, performance.now() - t0)}, retransmits ${vh.stats.tcp.retransmits}`);
  // Kernel → endpoint.
  t0 = performance.now();
  const c2: TcpConnection = vh.connect(KERNEL, 7002);
  let got = 0;
  await new Promise<void>((res) => {
    c2.onData = (d) => {
      got += d.length;
      c2.release(d.length);
    };
    c2.onEnd = () => {
      c2.end();
      res();
    };
  });
  console.log(`kernel → endpoint: ${mb} MiB, ${rate(got, performance.now() - t0)}, TAP frames in ${tap.stats.framesIn}`);
  // For scale: the kernel's TCP to itself over loopback inside the namespace (same peer process).
  const k = await peer.call({ op: 'connect', host: '10.73.0.1', port: 7001, bytes: mb << 20 });
  await peer.nextEvent((e) => e.port === 7001, 120_000);
  console.log(`kernel → kernel (loopback in the namespace, for scale): ${mb} MiB, ${rate(mb << 20, Number(k['ms']))}`);
  if (concurrent > 0) {
    const up = await attachUserModeUplink(yakima, [{ hostPort: 0, guestPort: 7003 }], {
      virtualHost: { ip: parseIPv4('10.73.0.251'), mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 0xfb]) },
      resolveGuest: () => KERNEL,
    });
    const port = up.listening[0]!.port;
    t0 = performance.now();
    const each = 256 << 10;
    let done = 0;
    await Promise.race([
      Promise.all(
        Array.from({ length: concurrent }, () => new Promise<void>((res) => {
          const s = netConnect({ host: '127.0.0.1', port, allowHalfOpen: true });
          let n = 0;
          s.on('data', (d: Buffer) => (n += d.length));
          s.on('error', () => {});
          s.on('close', () => {
            if (n === each) done++;
            res();
          });
          s.end(Buffer.alloc(each, 2));
        })),
      ),
      new Promise((r) => setTimeout(r, 30_000)),
    ]);
    console.log(`relay: ${done}/${concurrent} echo connections of 256 KiB complete in ${(performance.now() - t0).toFixed(0)} ms`);
    console.log(JSON.stringify({ relay: up.relay, stats: up.stats }, null, 1));
    await up.close();
  }
} finally {
  peer.kill();
  vh.close();
  await tap.close();
  deleteNetns(NS);
}
