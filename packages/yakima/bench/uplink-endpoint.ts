/**
 * Throughput of the user-space TCP endpoint against itself on a virtual switch (no kernel).
 * Run: npx tsx packages/yakima/bench/uplink-endpoint.ts [MB]
 */
import { VirtualNetwork, parseIPv4 } from '../src/net/network.js';
import { VirtualHost } from '../src/net/uplink/virtual-host.js';

const mb = Number(process.argv[2] ?? 64);
const net = new VirtualNetwork();
const a = new VirtualHost(net, { name: 'A' });
const b = new VirtualHost(net, { name: 'B', ip: parseIPv4('10.73.0.200'), mac: new Uint8Array([2, 0xde, 0x4e, 0, 0, 0xc8]) });
a.attach();
b.attach();
const chunk = Buffer.alloc(65_536, 7);
const total = mb << 20;
let received = 0;
const t0 = performance.now();
b.listen(80, (c) => {
  c.onData = (d) => {
    received += d.length;
    c.release(d.length);
  };
  c.onEnd = () => {
    const ms = performance.now() - t0;
    console.log(`${mb} MiB in ${ms.toFixed(0)} ms: ${((received / ms) * 1000 / 1e6).toFixed(1)} MB/s, retransmits ${a.stats.tcp.retransmits}`);
    c.end();
    setTimeout(() => { a.close(); b.close(); }, 10);
  };
});
const c = a.connect(b.ip, 80);
let sent = 0;
const go = (): void => {
  while (sent < total) {
    sent += chunk.length;
    if (!c.write(chunk)) return;
  }
  c.end();
};
c.onConnect = go;
c.onDrain = go;
