/**
 * examples/httpd built natively for Linux (bench/native: the paper's 4.2.2 baseline) and
 * exercised over loopback: every asset byte for byte, HEAD, keep-alive and pipelining,
 * HTTP/1.0, the error statuses, a 1 MiB file, more clients than workers. The guest build of the
 * same sources is covered once the Ilwaco TCP stack lands; this checks the server's logic now.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, get } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { C_FLAGS, buildService, collectAssets, loadServiceConfig, packAssets, sdkPaths } from '@denali/ilwaco-sdk';
import { buildNative } from '../bench/native/build-native.js';
import { freePort, root } from './helpers.js';

const HTTPD = join(root, 'examples/httpd');
const ASSETS = join(HTTPD, 'assets');
const WORKERS = 4;

let dir: string;
let server: ResultPromise;
let port: number;
let base: string;
let serverErrors = '';
const keepAliveAgent = new Agent({ keepAlive: true, maxSockets: 1 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'httpd-native-'));
  // HTTPD_SANITIZE=1 builds with AddressSanitizer and UBSan (slower; for debugging).
  const flags = process.env.HTTPD_SANITIZE ? ['-g', '-fsanitize=address,undefined', '-fno-sanitize-recover=all'] : [];
  const exe = await buildNative(HTTPD, { outDir: dir, flags });
  server = execa(exe, ['0', String(WORKERS), '127.0.0.1'], { reject: false, stdin: 'ignore', buffer: false });
  server.stderr!.on('data', (d: Buffer) => (serverErrors += d.toString()));
  port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`httpd did not start: ${out}`)), 10_000);
    server.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    server.on('exit', () => reject(new Error(`httpd exited: ${out}`)));
  });
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  keepAliveAgent.destroy();
  server?.kill('SIGTERM');
  await server?.catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Response {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Send `data` on a fresh connection and collect what comes back until the server closes the
 * connection or is quiet for `quietMs`. `closed` tells which happened.
 */
function exchange(data: string | Buffer | (string | Buffer)[], quietMs = 300): Promise<{ bytes: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(port, '127.0.0.1');
    let timer: NodeJS.Timeout | undefined;
    const quiet = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        sock.destroy();
        resolve({ bytes: Buffer.concat(chunks), closed: false });
      }, quietMs);
    };
    sock.on('connect', () => {
      for (const d of Array.isArray(data) ? data : [data]) sock.write(d);
      quiet();
    });
    sock.on('data', (d) => {
      chunks.push(d);
      quiet();
    });
    sock.on('end', () => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed: true });
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      if (chunks.length) resolve({ bytes: Buffer.concat(chunks), closed: true });
      else reject(e);
    });
  });
}

/** Split a byte stream into responses; `heads[i]` says response i answers a HEAD (no body). */
function parse(bytes: Buffer, heads: boolean[] = []): Response[] {
  const out: Response[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const end = bytes.indexOf('\r\n\r\n', pos);
    if (end < 0) throw new Error(`incomplete response head: ${JSON.stringify(bytes.subarray(pos).toString())}`);
    const [statusLine, ...lines] = bytes.toString('latin1', pos, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]+$/.exec(statusLine!);
    if (!m) throw new Error(`bad status line ${JSON.stringify(statusLine)}`);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = heads[out.length] ? 0 : Number(headers['content-length']);
    const body = bytes.subarray(end + 4, end + 4 + len);
    if (body.length !== len) throw new Error(`short body: ${body.length} of ${len}`);
    out.push({ status: Number(m[1]), headers, body });
    pos = end + 4 + len;
  }
  return out;
}

const req = (target: string, extra = '', method = 'GET', version = '1.1'): string =>
  `${method} ${target} HTTP/${version}\r\nHost: localhost\r\n${extra}\r\n`;

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  json: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  bin: 'application/octet-stream',
};

describe('native httpd', () => {
  it('serves every asset byte for byte with Content-Type and Content-Length', async () => {
    const files = collectAssets(ASSETS);
    expect(files.length).toBeGreaterThan(40);
    for (const f of files) {
      const r = await fetch(`${base}/${f.path}`);
      expect(r.status, f.path).toBe(200);
      const body = Buffer.from(await r.arrayBuffer());
      expect(body.equals(readFileSync(f.source)), f.path).toBe(true);
      expect(r.headers.get('content-length')).toBe(String(f.size));
      expect(r.headers.get('content-type'), f.path).toBe(TYPES[f.path.split('.').pop()!]);
    }
  });

  it('serves index.html for / and directories, redirects a directory without its slash', async () => {
    const index = readFileSync(join(ASSETS, 'index.html'));
    expect(Buffer.from(await (await fetch(`${base}/`)).arrayBuffer()).equals(index)).toBe(true);
    expect(Buffer.from(await (await fetch(`${base}/index.html?x=1#frag`)).arrayBuffer()).equals(index)).toBe(true);
    expect(Buffer.from(await (await fetch(`${base}/docs/`)).arrayBuffer()).equals(readFileSync(join(ASSETS, 'docs/index.html')))).toBe(true);
    const [redirect] = parse((await exchange(req('/docs'))).bytes);
    expect(redirect!.status).toBe(301);
    expect(redirect!.headers.location).toBe('/docs/');
    const [encoded] = parse((await exchange(req('//docs/./%67uide.html'))).bytes);
    expect(encoded!.status).toBe(200);
    expect(encoded!.body.equals(readFileSync(join(ASSETS, 'docs/guide.html')))).toBe(true);
  });

  it('answers HEAD with the GET headers and no body', async () => {
    const r = await exchange([req('/page-01.html', '', 'HEAD'), req('/page-01.html', 'Connection: close\r\n')]);
    const [head, getr] = parse(r.bytes, [true, false]);
    expect(head!.status).toBe(200);
    expect(head!.body.length).toBe(0);
    expect(head!.headers['content-length']).toBe(String(readFileSync(join(ASSETS, 'page-01.html')).length));
    expect(head!.headers).toEqual({ ...getr!.headers, connection: 'keep-alive' });
    expect(r.closed).toBe(true);
  });

  it('keeps HTTP/1.1 connections alive, answers pipelined requests in order, honours Connection: close', async () => {
    const alive = await exchange(req('/page-02.html'));
    expect(alive.closed).toBe(false);
    expect(parse(alive.bytes)[0]!.headers.connection).toBe('keep-alive');
    const paths = ['/page-03.html', '/style.css', '/nope', '/data.json'];
    const piped = await exchange([...paths.slice(0, -1).map((p) => req(p)).join(''), req(paths.at(-1)!, 'Connection: close\r\n')]);
    const rs = parse(piped.bytes);
    expect(rs.map((r) => r.status)).toEqual([200, 200, 404, 200]);
    expect(rs[1]!.body.equals(readFileSync(join(ASSETS, 'style.css')))).toBe(true);
    expect(rs[3]!.headers.connection).toBe('close');
    expect(piped.closed).toBe(true);
    // Requests after a Connection: close are not answered, and the big response still arrives whole.
    const after = await exchange(req('/big.bin', 'Connection: close\r\n') + req('/index.html'));
    const [bigr, ...more] = parse(after.bytes);
    expect(bigr!.body.equals(readFileSync(join(ASSETS, 'big.bin')))).toBe(true);
    expect(more).toEqual([]);
    expect(after.closed).toBe(true);
    // Node's agent reuses one socket for sequential requests.
    const agentSockets = new Set<unknown>();
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        get(`${base}/page-0${i}.html`, { agent: keepAliveAgent }, (res) => {
          agentSockets.add(res.socket);
          res.resume();
          res.on('end', resolve);
        }).on('error', reject);
      });
    }
    expect(agentSockets.size).toBe(1);
  });

  it('closes HTTP/1.0 connections after one response', async () => {
    const r = await exchange('GET /readme.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const [res] = parse(r.bytes);
    expect(res!.status).toBe(200);
    expect(res!.headers.connection).toBe('close');
    expect(r.closed).toBe(true);
  });

  it('answers 404 and keeps the connection; 405 with Allow, skipping the request body', async () => {
    const r = await exchange([req('/missing.html'), 'POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello', req('/readme.txt')]);
    const rs = parse(r.bytes);
    expect(rs.map((x) => x.status)).toEqual([404, 405, 200]);
    expect(rs[1]!.headers.allow).toBe('GET, HEAD');
    expect(rs[2]!.body.toString()).toBe(readFileSync(join(ASSETS, 'readme.txt'), 'utf8'));
    expect(r.closed).toBe(false);
  });

  it('accepts every RFC 9110 tchar in field names and methods', async () => {
    const r = await exchange([req('/readme.txt', "X-!#$%&'*+-.^_`|~09azAZ: 1\r\n"), "M-SEARCH!#$%&'* /readme.txt HTTP/1.1\r\nHost: x\r\n\r\n", "+.^_`|~ /readme.txt HTTP/1.1\r\nHost: x\r\n\r\n", req('/readme.txt')]);
    expect(parse(r.bytes).map((x) => x.status)).toEqual([200, 405, 405, 200]);
    expect(r.closed).toBe(false);
  });

  it.each([
    ['no version', 'GET /\r\n\r\n', 400],
    ['garbage', 'HELLO THERE\r\n\r\n', 400],
    ['two spaces', 'GET  / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['header without colon', 'GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n', 400],
    ['header name with a separator', req('/', 'Bad(name): x\r\n'), 400],
    ['header name with a byte >= 0x80', req('/', 'X-\u00e9: x\r\n'), 400],
    ['header name with DEL', req('/', 'X-\u007f: x\r\n'), 400],
    ['method with a separator', 'GE@T / HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['bare CR in the query', 'GET /?a\rb HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['bare CR in a field value', req('/', 'X-A: a\rb\r\n'), 400],
    ['bare CR ending a field value', req('/', 'X-A: a\r\r\n'), 400],
    ['bare CR in a field name', req('/', 'X\rA: a\r\n'), 400],
    ['bare CR line', req('/', '\r\r\n'), 400],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400],
    ['folded header', 'GET / HTTP/1.1\r\nHost: x\r\n continued\r\n\r\n', 400],
    ['missing Host in 1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['dot-dot segment', req('/docs/../index.html'), 400],
    ['encoded dot-dot', req('/%2e%2e/etc/passwd'), 400],
    ['bad percent escape', req('/index%zz.html'), 400],
    ['encoded NUL', req('/index.html%00.txt'), 400],
    ['non-numeric Content-Length', req('/', 'Content-Length: 12a\r\n'), 400],
    ['body too large', req('/', 'Content-Length: 10000000\r\n'), 413],
    ['target over 2 KiB', req(`/${'a'.repeat(3000)}`), 414],
    ['chunked body', req('/', 'Transfer-Encoding: chunked\r\n'), 501],
    ['HTTP/2.0', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 505],
  ])('%s -> %i, then closes', async (_name, request, status) => {
    const r = await exchange(request);
    const [res] = parse(r.bytes);
    expect(res!.status).toBe(status);
    expect(res!.headers.connection).toBe('close');
    expect(r.closed).toBe(true);
  });

  it('answers 431 to a header section over 8 KiB and 414 to a request line over 8 KiB', async () => {
    const fill = `X-Fill: ${'f'.repeat(1000)}\r\n`.repeat(12);
    const big = await exchange(req('/', fill));
    expect(parse(big.bytes)[0]!.status).toBe(431);
    expect(big.closed).toBe(true);
    const long = await exchange(`GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(parse(long.bytes)[0]!.status).toBe(414);
    expect(long.closed).toBe(true);
    // Just under the limit is fine.
    const ok = await exchange(req('/', `X-Fill: ${'f'.repeat(8000)}\r\n`, 'GET', '1.1').replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
    expect(parse(ok.bytes)[0]!.status).toBe(200);
  });

  it('streams the 1 MiB file intact', async () => {
    const expected = createHash('sha256').update(readFileSync(join(ASSETS, 'big.bin'))).digest('hex');
    const got = await new Promise<{ hash: string; length: string | undefined; type: string | undefined }>((resolve, reject) => {
      get(`${base}/big.bin`, (res) => {
        const h = createHash('sha256');
        res.on('data', (d: Buffer) => h.update(d));
        res.on('end', () => resolve({ hash: h.digest('hex'), length: res.headers['content-length'], type: res.headers['content-type'] }));
      }).on('error', reject);
    });
    expect(got).toEqual({ hash: expected, length: String(1024 * 1024), type: 'application/octet-stream' });
  });

  it('serves more simultaneous clients than it has workers (accept queue hand-off)', async () => {
    const n = WORKERS * 4;
    const bodies = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const r = await exchange(req(`/page-${String(i).padStart(2, '0')}.html`, 'Connection: close\r\n'), 5000);
        return parse(r.bytes)[0]!;
      }),
    );
    expect(bodies.every((b) => b.status === 200)).toBe(true);
  });

  it('survives random and truncated requests, then still serves', async () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const valid = req('/page-04.html', 'Content-Length: 3\r\nConnection: keep-alive\r\n') + 'abc';
    const attempts = Array.from({ length: 60 }, (_, i) => {
      const b = Buffer.from(valid, 'latin1');
      if (i % 3 === 0) return b.subarray(0, rand(b.length)); // truncated
      for (let k = 0; k < 1 + rand(6); k++) b[rand(b.length)] = rand(256); // corrupted bytes
      return b;
    });
    for (let i = 0; i < attempts.length; i += 12) {
      const batch = attempts.slice(i, i + 12).map((a) => exchange(a, 150));
      for (const r of await Promise.all(batch)) {
        if (r.bytes.length) expect(r.bytes.toString('latin1')).toMatch(/^HTTP\/1\.1 \d{3} /);
      }
    }
    const ok = await fetch(`${base}/page-04.html`);
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(readFileSync(join(ASSETS, 'page-04.html')))).toBe(true);
  });

  it('is still running and has reported no errors', () => {
    expect(server.exitCode).toBeNull();
    expect(serverErrors).toBe('');
  });

  it('ships the document set that gen-assets.mjs generates', async () => {
    const out = join(dir, 'regen');
    await execa('node', [join(HTTPD, 'gen-assets.mjs'), out]);
    expect(packAssets(out).equals(packAssets(ASSETS))).toBe(true);
    const pages = collectAssets(ASSETS).filter((f) => f.path.endsWith('.html') && !f.path.includes('/'));
    const mean = pages.reduce((n, f) => n + f.size, 0) / pages.length;
    expect(mean).toBeGreaterThan(1700); // the paper's small documents: about 2 KB
    expect(mean).toBeLessThan(2300);
  });
});

describe('examples/httpd for the Ilwaco guest', () => {
  it('compiles warning-free against the SDK headers (i386, freestanding)', async () => {
    const builtin = (await execa('gcc', ['-m32', '-print-file-name=include'])).stdout.trim();
    for (const src of loadServiceConfig(HTTPD).sources) {
      const r = await execa('gcc', [...C_FLAGS, '-isystem', sdkPaths().includeDir, '-isystem', builtin, '-Wall', '-Wextra', '-Werror', '-fsyntax-only', src], { reject: false });
      expect(r.stderr, src).toBe('');
      expect(r.exitCode, src).toBe(0);
    }
  });

  it('links into an image with its assets', async () => {
    const built = await buildService(HTTPD, { out: join(dir, 'httpd.dni'), quiet: true });
    expect(built.assets.paths).toEqual(collectAssets(ASSETS).map((f) => f.path));
    expect(built.manifest.memorySize).toBeGreaterThanOrEqual(built.imageBytes + 4 * 1024 * 1024);
  });
});

// The guest end to end through `denali run -p` (user-mode uplink): every asset must come
// back byte for byte from the VM.
describe('examples/httpd in a Denali VM (denali run -p)', () => {
  let vm: ResultPromise | undefined;
  let vmBase = '';
  let vmOut = '';

  beforeAll(async () => {
    const hostPort = await freePort();
    vmBase = `http://127.0.0.1:${hostPort}`;
    vm = execa(join(root, 'bin/denali'), ['run', '--backend', 'emu', HTTPD, '-p', `${hostPort}:80`, '--', '80', '4'], {
      reject: false,
      stdin: 'ignore',
      buffer: false,
      env: { DENALI_DEBUG: '' },
    });
    vm.stdout!.on('data', (d: Buffer) => (vmOut += d.toString()));
    vm.stderr!.on('data', (d: Buffer) => (vmOut += d.toString()));
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (vm.exitCode !== null) throw new Error(`denali run exited: ${vmOut}`);
      if (Date.now() > deadline) throw new Error(`the VM did not answer within 90 s: ${vmOut}`);
      const ok = await fetch(`${vmBase}/readme.txt`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) break;
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 120_000);

  afterAll(async () => {
    vm?.kill('SIGINT');
    const t = setTimeout(() => vm?.kill('SIGKILL'), 5000);
    await vm?.catch(() => undefined);
    clearTimeout(t);
  });

  it('serves every asset byte for byte, 404s, HEAD and 405 from the guest', async () => {
    for (const f of collectAssets(ASSETS)) {
      const r = await fetch(`${vmBase}/${f.path}`);
      expect(r.status, f.path).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(readFileSync(f.source)), f.path).toBe(true);
    }
    expect((await fetch(`${vmBase}/missing`)).status).toBe(404);
    const head = await fetch(`${vmBase}/page-05.html`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(readFileSync(join(ASSETS, 'page-05.html')).length));
    const post = await fetch(`${vmBase}/`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

