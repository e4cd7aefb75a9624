/**
 * HTTP load generators for `pnpm bench:web` (web.ts): `wrk` (Debian package `wrk`) when installed,
 * else a bounded Node client over raw sockets. Both rotate through a list of paths, run for a
 * fixed time with a fixed number of connections, and count completed 200 responses.
 */
import { execa } from 'execa';
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';

/** One measurement: how many requests completed in how long. */
export interface LoadResult {
  /** Completed responses with status 200. */
  ok: number;
  /** Failed requests: other statuses, connection errors, timeouts. */
  errors: number;
  /** Measured wall-clock time in seconds. */
  seconds: number;
}

/** What to run. */
export interface LoadSpec {
  /** Ports to spread the connections over (one per server). */
  ports: number[];
  /** Address of the server(s). Default 127.0.0.1 (loopback). */
  host?: string;
  /** Request paths, used round-robin by each connection. */
  paths: string[];
  /** Total concurrent connections (at least one per port). */
  connections: number;
  /** Duration in seconds. */
  seconds: number;
  /** true: HTTP/1.1 keep-alive; false: `Connection: close`, a new connection per request. */
  keepAlive: boolean;
  /** Directory for wrk's Lua script. */
  workDir: string;
}

/** wrk's version line, or undefined when wrk is not installed. */
export async function wrkVersion(): Promise<string | undefined> {
  const r = await execa('wrk', ['-v'], { reject: false });
  const line = `${r.stdout}\n${r.stderr}`.split('\n').find((l) => /^wrk \S/.test(l));
  return line?.split(' [')[0];
}

function share(total: number, parts: number, i: number): number {
  return Math.floor(total / parts) + (i < total % parts ? 1 : 0);
}

/** Run wrk once per port in parallel and add up the results. */
export async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const script = join(spec.workDir, 'paths.lua');
  await writeFile(
    script,
    [
      `local paths = {${spec.paths.map((p) => JSON.stringify(p)).join(', ')}}`,
      'local i = 0',
      'request = function()',
      '  i = i % #paths + 1',
      '  return wrk.format(nil, paths[i])',
      'end',
      '',
    ].join('\n'),
  );
  const conns = Math.max(spec.connections, spec.ports.length);
  const runs = spec.ports.map((port, i) => {
    const c = Math.max(1, share(conns, spec.ports.length, i));
    const args = ['-t1', `-c${c}`, `-d${spec.seconds}s`, '--timeout', '5s', '-s', script];
    if (!spec.keepAlive) args.push('-H', 'Connection: close');
    return execa('wrk', [...args, `http://${spec.host ?? '127.0.0.1'}:${port}/`], { reject: false, timeout: (spec.seconds + 30) * 1000 });
  });
  const results = await Promise.all(runs);
  const total: LoadResult = { ok: 0, errors: 0, seconds: spec.seconds };
  for (const r of results) {
    const out = r.stdout;
    const m = /(\d+) requests in ([\d.]+)(m?s)/.exec(out);
    if (!m) throw new Error(`wrk failed: ${(r.stderr || out).split('\n')[0]}`);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    // wrk counts a request as complete whatever its status; its read errors on closed
    // connections are expected in new-connection mode, so only connect/write/timeout count.
    const sockErrors = sock ? Number(sock[1]) + Number(sock[3]) + Number(sock[4]) : 0;
    total.ok += Number(m[1]) - non2xx;
    total.errors += non2xx + sockErrors;
    total.seconds = Math.max(total.seconds, Number(m[2]) / (m[3] === 'ms' ? 1000 : 1));
  }
  return total;
}

/** Status and total length (head + Content-Length body) of the response starting `buf`; undefined until its head is complete. */
function responseHead(buf: Buffer): { status: number; end: number } | undefined {
  const h = buf.indexOf('\r\n\r\n');
  if (h < 0) return undefined;
  const head = buf.toString('latin1', 0, h);
  const status = Number(head.slice(9, 12));
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return { status, end: h + 4 + (m ? Number(m[1]) : 0) };
}

/** The Node client: `connections` loops over raw sockets until the deadline. */
export async function runNodeClient(spec: LoadSpec): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, errors: 0, seconds: spec.seconds };
  const start = performance.now();
  const deadline = start + spec.seconds * 1000;
  const conns = Math.max(spec.connections, spec.ports.length);
  const host = spec.host ?? '127.0.0.1';
  const request = (path: string): string =>
    `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${spec.keepAlive ? '' : 'Connection: close\r\n'}\r\n`;

  /** Send requests on one socket until the deadline or the socket ends; resolves then. */
  const drive = (port: number, first: number): Promise<void> =>
    new Promise((resolve) => {
      // Received bytes not yet consumed, and the end of the current response once its head
      // has been parsed (so a large body is counted, not concatenated).
      let chunks: Buffer[] = [];
      let have = 0;
      let current: { status: number; end: number } | undefined;
      let n = first;
      let sock: Socket | undefined = connect(port, host);
      const finish = (): void => {
        sock?.destroy();
        sock = undefined;
        resolve();
      };
      const send = (): void => {
        if (performance.now() >= deadline) return finish();
        sock!.write(request(spec.paths[n++ % spec.paths.length]!));
      };
      sock.setTimeout(5000, () => {
        result.errors++;
        finish();
      });
      sock.on('connect', send);
      sock.on('data', (d: Buffer) => {
        chunks.push(d);
        have += d.length;
        for (;;) {
          if (!current) {
            const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            chunks = [buf];
            current = responseHead(buf);
            if (!current) return;
          }
          if (have < current.end) {
            if (chunks.length > 1) chunks = [chunks[chunks.length - 1]!]; // body bytes: counted, not kept
            return;
          }
          if (current.status === 200 && performance.now() < deadline) result.ok++;
          else if (current.status !== 200) result.errors++;
          // Bytes past this response can only be in the last chunk received.
          const last = chunks[chunks.length - 1]!;
          const rest = last.subarray(last.length - (have - current.end));
          chunks = rest.length ? [rest] : [];
          have = rest.length;
          current = undefined;
          if (spec.keepAlive) send();
          if (!have) return;
        }
      });
      sock.on('error', () => {
        result.errors++;
        finish();
      });
      sock.on('end', finish);
      sock.on('close', finish);
    });

  await Promise.all(
    Array.from({ length: conns }, async (_, i) => {
      const port = spec.ports[i % spec.ports.length]!;
      let k = i;
      while (performance.now() < deadline) {
        await drive(port, k);
        k += 7;
      }
    }),
  );
  result.seconds = (performance.now() - start) / 1000;
  return result;
}
