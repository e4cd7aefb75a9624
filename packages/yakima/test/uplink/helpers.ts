import { createHash } from 'node:crypto';
import type { SwitchPort } from '../../src/net/switch.js';
import type { VirtualNetwork } from '../../src/net/network.js';
import type { TcpConnection } from '../../src/net/uplink/tcp-endpoint.js';

/** Deterministic PRNG (mulberry32) in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` pseudo-random bytes from `seed`. */
export function randomData(n: number, seed: number): Buffer {
  const r = rng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) {
    const v = (r() * 4294967296) >>> 0;
    b[i] = v & 0xff;
    if (i + 1 < n) b[i + 1] = (v >>> 8) & 0xff;
    if (i + 2 < n) b[i + 2] = (v >>> 16) & 0xff;
    if (i + 3 < n) b[i + 3] = v >>> 24;
  }
  return b;
}

export function sha256(b: Uint8Array | Buffer[]): string {
  const h = createHash('sha256');
  if (Array.isArray(b)) for (const c of b) h.update(c);
  else h.update(b);
  return h.digest('hex');
}

/**
 * Put `port` (already attached) behind a lossy wrapper: frames delivered to it are dropped with
 * probability `p` (seeded). Returns counters.
 */
export function makeLossy(net: VirtualNetwork, port: SwitchPort, p: number, seed: number): { dropped: number; passed: number } {
  const r = rng(seed);
  const c = { dropped: 0, passed: 0 };
  net.switch.detach(port);
  const wrapper: SwitchPort = {
    name: `${port.name}+loss`,
    mac: port.mac,
    deliver: (f) => {
      if (r() < p) c.dropped++;
      else {
        c.passed++;
        port.deliver(f);
      }
    },
  };
  net.switch.attach(wrapper);
  return c;
}

/** Resolve when `cond()` holds, polling every `everyMs`; reject after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 10_000, everyMs = 5): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('waitFor timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A writer of `data` to `c` in 64 KiB pieces, as fast as its send buffer allows: call it to
 * start (at once when ESTABLISHED, or as `onConnect`); it sets `c.onDrain` to go on where the
 * buffer filled. Once everything is queued it ends the connection (unless `end` is false) and
 * calls `onDone`, once; `onFull` runs each time `write` says the buffer is full.
 */
export function chunkedWriter(c: TcpConnection, data: Uint8Array, opts: { end?: boolean; onFull?: () => void; onDone?: () => void } = {}): () => void {
  let off = 0;
  let done = false;
  const go = (): void => {
    if (done) return;
    while (off < data.length) {
      const more = c.write(data.subarray(off, off + 65_536));
      off += 65_536;
      if (!more) {
        opts.onFull?.();
        return;
      }
    }
    done = true;
    if (opts.end ?? true) c.end();
    opts.onDone?.();
  };
  c.onDrain = go;
  return go;
}
