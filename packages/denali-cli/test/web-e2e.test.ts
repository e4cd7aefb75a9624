import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { get } from 'node:http';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';
import { probeKvm, probeProcessBackend } from '@denali/yakima';
import { freePort, root } from './helpers.js';

const ASSETS = join(root, 'examples/httpd/assets');
const INDEX = readFileSync(join(ASSETS, 'index.html'));


/** Start `denali run` with `args` (on the emulator unless they name a backend); resolves once `ready(output)` holds. */
async function startDenali(args: string[], ready: (out: string) => Promise<boolean> | boolean, prefix: string[] = []) {
  const backend = args.includes('--backend') ? [] : ['--backend', 'emu'];
  const [cmd, ...rest] = [...prefix, join(root, 'bin/denali'), 'run', ...backend, ...args];
  const proc: ResultPromise = execa(cmd!, rest, { reject: false, stdin: 'ignore', buffer: false, env: { DENALI_DEBUG: '' } });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 90_000;
  while (!(await ready(out))) {
    if (proc.exitCode !== null) throw new Error(`denali run exited early: ${out}`);
    if (Date.now() > deadline) throw new Error(`not ready within 90 s: ${out}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return { proc, output: () => out };
}

async function stop(proc: ResultPromise): Promise<void> {
  proc.kill('SIGINT');
  const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await proc.catch(() => undefined);
  clearTimeout(t);
}

const fetchOk = (url: string): Promise<boolean> =>
  fetch(url, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.status === 200,
    () => false,
  );

describe('several httpd VMs behind one Yakima (user-mode uplink)', () => {
  it('each VM answers on its own host port', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const { proc, output } = await startDenali(
      ['examples/httpd', 'examples/httpd', '-p', `${p1}:1:80`, '-p', `${p2}:httpd-2:80`, '--', '80', '2'],
      async () => (await fetchOk(`http://127.0.0.1:${p1}/index.html`)) && fetchOk(`http://127.0.0.1:${p2}/index.html`),
    );
    try {
      for (const p of [p1, p2]) {
        const r = await fetch(`http://127.0.0.1:${p}/index.html`);
        expect(Buffer.from(await r.arrayBuffer()).equals(INDEX)).toBe(true);
      }
      expect(output()).toMatch(/^httpd \| httpd: listening/m);
      expect(output()).toMatch(/^httpd-2 \| httpd: listening/m);
      expect(output()).toContain(`127.0.0.1:${p2} -> httpd-2 port 80`);
    } finally {
      await stop(proc);
    }
  });

  it('one VM answers request after request, each at once (each on a new connection: frames from the relay wake it even when they arrive as Yakima goes to sleep)', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const { proc } = await startDenali(['examples/httpd', '-p', `${port}:80`, '--', '80', '2'], () => fetchOk(`${base}/index.html`));
    try {
      for (let i = 0; i < 40; i++) {
        const t0 = performance.now();
        // A connection of its own each time, as curl makes: each request starts with a SYN
        // that the relay sends while the VM sleeps.
        const body = await new Promise<Buffer>((resolve, reject) => {
          const req = get(`${base}/index.html`, { agent: false, timeout: 10_000 }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () => resolve(Buffer.concat(parts)));
            res.on('error', reject);
          });
          req.on('timeout', () => req.destroy(new Error(`request ${i} timed out`)));
          req.on('error', reject);
        });
        expect(body.equals(INDEX)).toBe(true);
        // On the emulator a request takes a few ms; a lost wake-up left requests waiting for
        // Yakima's next timer (seconds).
        expect(performance.now() - t0).toBeLessThan(1000);
      }
    } finally {
      await stop(proc);
    }
  }, 120_000);

  it('refuses a host port that is already in use with one clear line', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = await execa(join(root, 'bin/denali'), ['run', '--backend', 'emu', 'examples/hello', '-p', `${port}:80`], { reject: false });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`${port}.*(in use|EADDRINUSE)`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      busy.close();
    }
  });

  it('rejects a malformed -p with one line', async () => {
    const r = await execa(join(root, 'bin/denali'), ['run', 'examples/hello', '-p', '80'], { reject: false });
    expect(r.exitCode).toBe(2); // a usage error, like every bad flag
    expect(r.stderr.trim().split('\n')).toHaveLength(2); // the problem, then "(run denali --help for usage)"
    expect(r.stderr).toMatch(/-p 80/);
  });
});

const kvm = probeKvm();
if (!kvm.usable) console.log(`httpd on KVM skipped: ${kvm.reason}`);

describe.skipIf(!kvm.usable)('httpd on the KVM backend (user-mode uplink)', () => {
  it('serves every small document byte for byte, 404 and HEAD', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const { proc } = await startDenali(['--backend', 'kvm', 'examples/httpd', '-p', `${port}:80`, '--', '80', '2'], () => fetchOk(`${base}/index.html`));
    try {
      // Where KVM only emulates 32-bit guests (kvm-pvm), a guest instruction costs microseconds:
      // the small pages are enough to prove the backend serves the same bytes.
      const small = readdirSync(ASSETS).filter((f) => f.endsWith('.html') || f.endsWith('.txt'));
      expect(small.length).toBeGreaterThan(20);
      for (const f of small) {
        const r = await fetch(`${base}/${f}`);
        expect(r.status, f).toBe(200);
        expect(Buffer.from(await r.arrayBuffer()).equals(readFileSync(join(ASSETS, f))), f).toBe(true);
      }
      expect((await fetch(`${base}/missing`)).status).toBe(404);
      const head = await fetch(`${base}/index.html`, { method: 'HEAD' });
      expect(head.headers.get('content-length')).toBe(String(INDEX.length));
    } finally {
      await stop(proc);
    }
  });
});

const procBackend = probeProcessBackend();
if (!procBackend.usable) console.log(`httpd on the process backend skipped: ${procBackend.reason}`);

describe.skipIf(!procBackend.usable)('httpd on the process backend (user-mode uplink)', () => {
  it('serves every document byte for byte (1 MiB file included), 404 and HEAD', async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const { proc } = await startDenali(['--backend', 'process', 'examples/httpd', '-p', `${port}:80`, '--', '80', '2'], () => fetchOk(`${base}/index.html`));
    try {
      const files = readdirSync(ASSETS, { withFileTypes: true }).filter((d) => d.isFile()).map((d) => d.name);
      expect(files.length).toBeGreaterThan(20);
      for (const f of files) {
        const r = await fetch(`${base}/${f}`);
        expect(r.status, f).toBe(200);
        expect(createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex'), f).toBe(createHash('sha256').update(readFileSync(join(ASSETS, f))).digest('hex'));
      }
      expect((await fetch(`${base}/missing`)).status).toBe(404);
      const head = await fetch(`${base}/index.html`, { method: 'HEAD' });
      expect(head.headers.get('content-length')).toBe(String(INDEX.length));
    } finally {
      await stop(proc);
    }
  });
});

// TAP: the host kernel's TCP reaches the VM at its own address. Run inside a network
// namespace made for the test, so nothing touches the host's own interfaces or routes.
const ns = `denali-e2e-${process.pid}`;
function tapWhyNot(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('ip', ['netns', 'add', ns], { stdio: 'pipe' });
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
  } catch (e) {
    return `cannot create a network namespace: ${(e as Error).message.split('\n')[0]}`;
  }
  return undefined;
}
const tapSkip = tapWhyNot();
if (tapSkip) console.log(`TAP end-to-end test skipped: ${tapSkip}`);

describe.skipIf(tapSkip !== undefined)('httpd over --net tap (host kernel TCP, inside a namespace)', () => {
  afterAll(() => {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'pipe' });
    } catch {
      /* already gone */
    }
  });

  it('the host fetches index.html and the 1 MiB file from the VM at 10.73.0.2', async () => {
    const inNs = (script: string): string =>
      execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: 'pipe', timeout: 30_000 }).toString();
    const get = (path: string): string =>
      inNs(
        `fetch('http://10.73.0.2${path}',{signal:AbortSignal.timeout(20000)}).then(async r=>{const b=Buffer.from(await r.arrayBuffer());process.stdout.write(r.status+' '+b.length+' '+require('crypto').createHash('sha256').update(b).digest('hex'))}).catch(e=>process.stdout.write('ERR '+e.message))`,
      );
    const { proc, output } = await startDenali(['--net', 'tap', 'examples/httpd', '--', '80', '2'], (out) => /listening/.test(out), [
      'ip',
      'netns',
      'exec',
      ns,
    ]);
    try {
      expect(output()).toMatch(/tap device \S+ \(10\.73\.0\.1\/13\): httpd at 10\.73\.0\.2/);
      const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
      expect(get('/index.html')).toBe(`200 ${INDEX.length} ${sha(INDEX)}`);
      const big = readFileSync(join(ASSETS, 'big.bin'));
      expect(get('/big.bin')).toBe(`200 ${big.length} ${sha(big)}`);
    } finally {
      await stop(proc);
    }
  });
});
