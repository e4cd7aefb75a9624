/**
 * `pnpm bench:web`: web server throughput, after the paper's section 4.2.2 (Figure 7 and the
 * Linux comparison). examples/httpd serves its 2 KB documents (page-00..39.html, rotated) over
 * loopback to a load generator; each cell runs for a fixed time:
 *  - keep-alive: HTTP/1.1 requests back to back on each connection (requests/s);
 *  - new connection: `Connection: close`, one TCP connection per request (requests/s);
 *  - 1 MiB file: big.bin over keep-alive connections (megabits/s).
 * Targets (rows):
 *  - native: the same C sources built for Linux (bench/native), the paper's baseline;
 *  - denali emu / kvm / process: `denali run examples/httpd -p PORT:80 [--backend kvm|process]` (user-mode
 *    uplink, port forwarding through Yakima);
 *  - denali emu x8 / process x8: eight httpd VMs on one Yakima, each forwarded from its own host port
 *    (`-p PORT_i:i:80`), the load spread evenly, throughput summed (paper Figure 7, n = 8);
 *  - native behind a Node relay: the native server reached through the smallest JavaScript relay
 *    (web-relay.ts: two `net.Socket`s piped, no TCP stack of Denali's): the ceiling of any `-p`
 *    design that moves the bytes through Node's event loop;
 *  - denali emu / process, --net tap: one VM reached at its own address over a TAP device (the
 *    host kernel's TCP talks to the guest; Yakima only moves frames). Needs root or
 *    CAP_NET_ADMIN, and no other TAP uplink on the default subnet; else "n/a (reason)".
 * A row that cannot run prints "n/a (reason)" instead of numbers.
 *
 * Options: --seconds N (per cell, default 5), --connections N (default 8; the server's pool
 * gets at least as many threads), --client wrk|node (default: wrk if installed, else the
 * Node client), --targets native,emu,kvm,process,emu8,process8,relay,emu-tap,process-tap
 * (default: all), --boot-timeout S (default 90).
 */
import { freePort } from './free-port.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { buildService, collectAssets } from '@denali/ilwaco-sdk';
import { buildNative } from './native/build-native.js';
import { runNodeClient, runWrk, wrkVersion, type LoadResult, type LoadSpec } from './web-load.js';

const root = resolve(import.meta.dirname, '../../..');
const HTTPD = join(root, 'examples/httpd');
const DENALI = join(root, 'bin/denali');
const RELAY = join(import.meta.dirname, 'web-relay.ts');

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const seconds = Number(opt('--seconds') ?? 5);
const connections = Number(opt('--connections') ?? 8);
const bootTimeout = Number(opt('--boot-timeout') ?? 90);
const targets = (opt('--targets') ?? 'native,emu,kvm,process,emu8,process8,relay,emu-tap,process-tap').split(',');
const BIG = '/big.bin';
const BIG_BYTES = 1024 * 1024;

/** A running server: its address (default 127.0.0.1), its ports, and how to stop it. */
interface Server {
  host?: string;
  ports: number[];
  stop(): Promise<void>;
}

/** A row: a label and a way to start its server(s), or a reason it cannot run. */
interface Target {
  key: string;
  label: string;
  start(): Promise<Server>;
}


/** First line of a process's complaint, for an "n/a (...)" cell. */
function firstLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l && !l.startsWith('(run denali')) ?? 'no output'
  ).slice(0, 120);
}

/** Stop a child we started: SIGINT, then SIGKILL after 3 s. */
async function stopChild(child: ResultPromise): Promise<void> {
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await child.catch(() => undefined);
  clearTimeout(timer);
}

/**
 * Wait until every port answers GET /page-00.html with the expected bytes, or the child exits
 * (the reason is then its stderr), or `timeoutS` pass.
 */
async function waitReady(child: ResultPromise, ports: number[], expected: Buffer, timeoutS: number, output: () => string, host = '127.0.0.1'): Promise<void> {
  let exited = false;
  void child.then(
    () => (exited = true),
    () => (exited = true),
  );
  const deadline = Date.now() + timeoutS * 1000;
  const pending = new Set(ports);
  while (pending.size > 0) {
    if (exited) throw new Error(firstLine(output()));
    if (Date.now() > deadline) throw new Error(`no HTTP answer within ${timeoutS} s (${firstLine(output())})`);
    for (const port of [...pending]) {
      try {
        const r = await fetch(`http://${host}:${port}/page-00.html`, { signal: AbortSignal.timeout(2000) });
        const body = Buffer.from(await r.arrayBuffer());
        if (r.status !== 200 || !body.equals(expected)) throw new Error(`port ${port} served wrong content (status ${r.status})`);
        pending.delete(port);
      } catch (e) {
        if ((e as Error).message.includes('wrong content')) throw e;
      }
    }
    if (pending.size) await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The guest address `denali run --net tap` announces on stderr ("… httpd at 10.73.0.2"), or
 * an error with its complaint (e.g. "--net tap needs root or CAP_NET_ADMIN") when it exits or
 * says nothing within 30 s.
 */
async function tapAddress(child: ResultPromise, err: () => string, out: () => string): Promise<string> {
  let exited = false;
  void child.then(
    () => (exited = true),
    () => (exited = true),
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /tap device \S+ \([^)]*\): \S+ at (\d+\.\d+\.\d+\.\d+)/.exec(err());
    if (m) return m[1]!;
    if (exited) throw new Error(firstLine(out()));
    if (Date.now() > deadline) throw new Error(`no tap device announced within 30 s (${firstLine(out())})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let help: Promise<string> | undefined;
/** `denali run --help` (to see which networking options this CLI has). */
function runHelp(): Promise<string> {
  help ??= execa(DENALI, ['run', '--help'], { reject: false }).then((r) => r.stdout);
  return help;
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'denali-bench-web-'));
  try {
    const files = collectAssets(join(HTTPD, 'assets'));
    const pages = files.filter((f) => /^page-\d+\.html$/.test(f.path));
    const paths = pages.map((f) => `/${f.path}`);
    const mean = pages.reduce((n, f) => n + f.size, 0) / pages.length;
    const expected = await readFile(join(HTTPD, 'assets/page-00.html'));
    const threads = Math.max(8, connections);

    const wrk = opt('--client') === 'node' ? undefined : await wrkVersion();
    if (opt('--client') === 'wrk' && !wrk) {
      console.log('bench:web: wrk is not installed (apt-get install -y wrk); falling back to the Node client');
    }
    const load = (spec: LoadSpec): Promise<LoadResult> => (wrk ? runWrk(spec) : runNodeClient(spec));
    const clientName = wrk ?? 'built-in Node client (install wrk for a faster load generator: apt-get install -y wrk)';

    const denaliTarget = (key: string, label: string, vms: number, backend: string, mode: 'user' | 'tap' = 'user'): Target => ({
      key,
      label,
      async start() {
        let image = HTTPD;
        if (vms > 1) image = (await buildService(HTTPD, { out: join(work, 'httpd.dni'), quiet: true })).imagePath;
        const tap = mode === 'tap';
        if (tap && !(await runHelp()).includes('--net')) throw new Error('this denali has no --net tap');
        const ports = tap ? [80] : await Promise.all(Array.from({ length: vms }, freePort));
        const forwards = tap ? [] : ports.flatMap((p, i) => ['-p', vms > 1 ? `${p}:${i + 1}:80` : `${p}:80`]);
        const net = tap ? ['--net', 'tap'] : (await runHelp()).includes('--net') ? ['--net', 'user'] : [];
        const args = ['run', ...Array(vms).fill(image), '--backend', backend, ...net, ...forwards, '--', '80', String(threads)];
        let out = '';
        let err = '';
        const child = execa(DENALI, args, { reject: false, stdin: 'ignore', buffer: false, env: { DENALI_DEBUG: '' } });
        child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
          out = d.toString() + out;
        });
        try {
          let host: string | undefined;
          if (tap) host = await tapAddress(child, () => err, () => out);
          await waitReady(child, ports, expected, bootTimeout, () => out, host);
          return { host, ports, stop: () => stopChild(child) };
        } catch (e) {
          await stopChild(child);
          throw e;
        }
      },
    });

    const all: Target[] = [
      {
        key: 'native',
        label: `native Linux httpd (${threads} threads)`,
        async start() {
          const exe = await buildNative(HTTPD, { outDir: join(work, 'native') });
          const port = await freePort();
          let out = '';
          const child = execa(exe, [String(port), String(threads), '127.0.0.1'], { reject: false, stdin: 'ignore', buffer: false });
          child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
          await waitReady(child, [port], expected, 10, () => out);
          return { ports: [port], stop: () => stopChild(child) };
        },
      },
      denaliTarget('emu', 'denali emu, 1 VM, -p', 1, 'emu'),
      denaliTarget('kvm', 'denali kvm, 1 VM, -p', 1, 'kvm'),
      denaliTarget('process', 'denali process, 1 VM, -p', 1, 'process'),
      denaliTarget('emu8', 'denali emu, 8 VMs, -p each', 8, 'emu'),
      denaliTarget('process8', 'denali process, 8 VMs, -p each', 8, 'process'),
      {
        key: 'relay',
        label: 'native behind a Node relay',
        async start() {
          const exe = await buildNative(HTTPD, { outDir: join(work, 'native') });
          const [port, front] = [await freePort(), await freePort()];
          let out = '';
          const server = execa(exe, [String(port), String(threads), '127.0.0.1'], { reject: false, stdin: 'ignore', buffer: false });
          server.stderr?.on('data', (d: Buffer) => (out += d.toString()));
          const relay = execa(process.execPath, ['--import', 'tsx', RELAY, String(front), String(port)], { reject: false, stdin: 'ignore', buffer: false, cwd: root });
          relay.stderr?.on('data', (d: Buffer) => (out += d.toString()));
          const stop = async (): Promise<void> => {
            await stopChild(relay);
            await stopChild(server);
          };
          try {
            await waitReady(server, [port], expected, 10, () => out);
            await waitReady(relay, [front], expected, 30, () => out);
          } catch (e) {
            await stop();
            throw e;
          }
          return { ports: [front], stop };
        },
      },
      denaliTarget('emu-tap', 'denali emu, 1 VM, --net tap', 1, 'emu', 'tap'),
      denaliTarget('process-tap', 'denali process, 1 VM, --net tap', 1, 'process', 'tap'),
    ];

    console.log(
      `bench:web: examples/httpd, ${pages.length} small documents (mean ${Math.round(mean)} B) rotated, ` +
        `${connections} connections, ${seconds} s per cell, load generator: ${clientName}`,
    );
    const header = ['target', 'keep-alive req/s', 'new-connection req/s', '1 MiB file Mb/s'];
    const widths = [32, 30, 22, 16];
    const row = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    console.log(row(header));
    let failures = 0;
    let nativeKa = NaN;
    for (const t of all.filter((t) => targets.includes(t.key))) {
      let server: Server;
      try {
        server = await t.start();
      } catch (e) {
        console.log(row([t.label, `n/a (${(e as Error).message})`]));
        continue;
      }
      try {
        const spec = { ports: server.ports, host: server.host, paths, connections, seconds, workDir: work };
        // New connections first: each leaves a TIME_WAIT socket behind (the server closes
        // first), and a loopback full of them slows later connection setup.
        const nc = await load({ ...spec, keepAlive: false });
        const ka = await load({ ...spec, keepAlive: true });
        const big = await load({ ...spec, paths: [BIG], keepAlive: true });
        const rate = (r: LoadResult): string => {
          const s = Math.round(r.ok / r.seconds).toLocaleString('en-US');
          return r.errors ? `${s} (${r.errors} errors)` : s;
        };
        const mbps = ((big.ok * BIG_BYTES * 8) / 1e6 / big.seconds).toFixed(0);
        if (t.key === 'native') nativeKa = ka.ok / ka.seconds;
        const ratio = t.key !== 'native' && Number.isFinite(nativeKa) && nativeKa > 0 ? ` (${(ka.ok / ka.seconds / nativeKa).toFixed(2)} of native)` : '';
        console.log(row([t.label, rate(ka) + ratio, rate(nc), big.errors ? `${mbps} (${big.errors} errors)` : mbps]));
        if (ka.ok === 0 || nc.ok === 0) failures++;
      } catch (e) {
        console.log(row([t.label, `n/a (${firstLine((e as Error).message)})`]));
      } finally {
        await server.stop();
      }
    }
    if (failures) process.exitCode = 1;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
