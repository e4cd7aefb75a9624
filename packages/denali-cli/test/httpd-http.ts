/** An HTTP/1.0 GET over Yakima's virtual switch (no host sockets), for in-process httpd tests and benches. */
import type { VirtualHost } from '@denali/yakima';

/**
 * GET `path` from `ip:port` (host-order IPv4 on the virtual subnet) through `host`; resolves
 * with the whole response (head and body) once the server closes, rejects when the
 * connection is aborted or `timeoutMs` passes.
 */
export function httpGet(host: VirtualHost, ip: number, path: string, port = 80, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const conn = host.connect(ip, port);
    const parts: Buffer[] = [];
    const timer = setTimeout(() => {
      conn.abort();
      reject(new Error(`GET ${path} from ${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255} timed out`));
    }, timeoutMs);
    conn.onConnect = () => {
      conn.write(Buffer.from(`GET ${path} HTTP/1.0\r\nHost: vm\r\n\r\n`));
    };
    conn.onData = (d) => {
      parts.push(Buffer.from(d));
      conn.release(d.length);
    };
    conn.onEnd = () => conn.end();
    conn.onAbort = (why) => {
      clearTimeout(timer);
      reject(new Error(`GET ${path}: connection ${why}`));
    };
    conn.onClose = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(parts));
    };
  });
}
