import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { ConsoleTailSink, probeProcessBackend, startControlServer, Yakima, type ControlServer } from '@denali/yakima';
import openapi from '../../yakima/src/api/openapi.json' with { type: 'json' };
import { cImage, SPINNER_C, TICKER_C } from './helpers.js';

/** The control API over its real Unix socket, every answer checked against openapi.json. */

interface Answer {
  status: number;
  type: string;
  text: string;
  json: unknown;
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
ajv.addSchema(openapi, 'openapi.json');
/** operationId -> answered statuses, to check every documented operation is exercised. */
const seen = new Map<string, Set<number>>();

type PathItem = Record<string, { operationId: string; responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>;

/** Check an answer against the document: the status is documented for the operation and the body matches its schema. */
function checkAgainstDoc(method: string, template: string, a: Answer): void {
  const op = (openapi.paths as unknown as Record<string, PathItem>)[template]?.[method.toLowerCase()];
  expect(op, `${method} ${template} is in openapi.json`).toBeDefined();
  const resp = op!.responses[String(a.status)];
  expect(resp, `${method} ${template} documents status ${a.status} (${a.text.slice(0, 200)})`).toBeDefined();
  const [ctype] = Object.keys(resp!.content ?? {});
  if (ctype === undefined) return;
  expect(a.type.split(';')[0]).toBe(ctype.split(';')[0]);
  if (ctype === 'application/json') {
    const ptr = ['paths', template, method.toLowerCase(), 'responses', String(a.status), 'content', ctype, 'schema'];
    const validate = ajv.getSchema('openapi.json#/' + ptr.map((p) => encodeURIComponent(p.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/'))!;
    const ok = validate(a.json);
    expect(ok, `${method} ${template} ${a.status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  }
  let s = seen.get(op!.operationId);
  if (!s) seen.set(op!.operationId, (s = new Set()));
  s.add(a.status);
}

let socket = '';

function raw(method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const type = String(res.headers['content-type'] ?? '');
        resolve({ status: res.statusCode ?? 0, type, text, json: type.startsWith('application/json') ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A request checked against the document (`template` is the documented path). */
async function api(method: 'GET' | 'POST', path: string, template: string, body?: unknown): Promise<Answer> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const a = await raw(method, path, payload, payload === undefined ? {} : { 'content-type': 'application/json' });
  checkAgainstDoc(method, template, a);
  return a;
}

/** Stop a test instance: its VMs, its run loop, its control socket, then Yakima itself. */
async function closeInstance(yakima: Yakima, run: Promise<void>, server: ControlServer): Promise<void> {
  yakima.stop();
  await run;
  await server.close();
  await yakima.close();
  delete process.env.DENALI_RUNTIME_DIR;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('control API (openapi.json) over the real socket', () => {
  let yakima: Yakima;
  let server: ControlServer;
  let run: Promise<void>;
  let ticker = '';
  let spinner = '';
  let shutdowns = 0;
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'denali-api-'));
    process.env.DENALI_RUNTIME_DIR = join(dir, 'rt');
    ticker = await cImage('ticker', TICKER_C, dir);
    spinner = await cImage('spinner', SPINNER_C, dir);
    const tail = new ConsoleTailSink(undefined, 4096);
    yakima = new Yakima({ backend: 'emu', sink: tail, keepAlive: true });
    server = await startControlServer(yakima, { name: 'api-test', tail, backend: 'emu', version: '9.9.9', onShutdown: () => shutdowns++ });
    socket = server.socket;
    run = yakima.run();
  });

  afterAll(() => closeInstance(yakima, run, server));

  it('listens on a socket only its user can open, in a private directory', async () => {
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
    expect((await stat(dirname(socket))).mode & 0o777).toBe(0o700);
    expect(socket.endsWith('/api-test.sock')).toBe(true);
  });

  it('refuses a second instance of the same name', async () => {
    await expect(startControlServer(yakima, { name: 'api-test', tail: new ConsoleTailSink(undefined), backend: 'emu', version: '0' })).rejects.toThrow(
      /already running/,
    );
  });

  it('GET /v1/instance: name, backend, host and totals', async () => {
    const a = await api('GET', '/v1/instance', '/v1/instance');
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({ name: 'api-test', backend: 'emu', version: '9.9.9', pid: process.pid, network: false, totals: { vms: 0 } });
  });

  it('POST /v1/vms boots VMs from image paths; bad bodies get 4xx errors naming the problem', async () => {
    const a = await api('POST', '/v1/vms', '/v1/vms', { image: ticker, name: 'tick' });
    expect(a.status).toBe(201);
    expect(a.json).toMatchObject({ name: 'tick', image: 'ticker', state: 'runnable' });
    expect((await api('POST', '/v1/vms', '/v1/vms', { image: spinner })).json).toMatchObject({ name: 'spinner' });
    expect((await api('POST', '/v1/vms', '/v1/vms', { image: ticker, args: ['a'] })).json).toMatchObject({ name: 'ticker' });

    const bad: [unknown, number, RegExp][] = [
      ['{not json', 400, /not valid JSON/],
      [{}, 400, /image/],
      [{ image: 42 }, 400, /image/],
      [{ image: ticker, extra: 1 }, 400, /additional/],
      [{ image: 'relative.dni' }, 400, /absolute path/],
      [{ image: join(dir, 'missing.dni') }, 422, /missing\.dni/],
      [{ image: ticker, name: 'tick' }, 409, /already exists/],
      [{ image: ticker, name: '../evil' }, 400, /name/],
      [{ image: ticker, memoryBytes: -1 }, 400, /memoryBytes/],
    ];
    for (const [body, status, msg] of bad) {
      const r = await api('POST', '/v1/vms', '/v1/vms', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect((r.json as { error: string }).error).toMatch(msg);
    }
    await writeFile(join(dir, 'garbage.dni'), 'this is not an image');
    const g = await api('POST', '/v1/vms', '/v1/vms', { image: join(dir, 'garbage.dni') });
    expect(g.status).toBe(422);
    expect((g.json as { error: string }).error).toMatch(/garbage\.dni/);

    const notJson = await raw('POST', '/v1/vms', JSON.stringify({ image: ticker }), { 'content-type': 'text/plain' });
    checkAgainstDoc('POST', '/v1/vms', notJson);
    expect(notJson.status).toBe(415);
    const huge = await raw('POST', '/v1/vms', JSON.stringify({ image: 'x'.repeat(200_000) }), { 'content-type': 'application/json' });
    checkAgainstDoc('POST', '/v1/vms', huge);
    expect(huge.status).toBe(413);
  });

  it('GET /v1/vms lists every VM with counters; ?state filters; a bad state is a 400', async () => {
    await sleep(700);
    const a = await api('GET', '/v1/vms', '/v1/vms');
    expect(a.status).toBe(200);
    const vms = (a.json as { vms: { name: string; state: string; cpuTimeUs: number; instructionsRetired: number; exits: number }[] }).vms;
    expect(vms.map((v) => v.name)).toEqual(['tick', 'spinner', 'ticker']);
    for (const v of vms) {
      expect(v.cpuTimeUs).toBeGreaterThan(0);
      expect(v.instructionsRetired).toBeGreaterThan(0);
      expect(v.exits).toBeGreaterThan(0);
    }
    // The full list is every counter of every VM.
    const full = ajv.getSchema('openapi.json#/components/schemas/Vm')!;
    for (const v of vms) expect(full(v), ajv.errorsText(full.errors)).toBe(true);
    const some = await api('GET', '/v1/vms?fields=state,cpuTimeUs,drops', '/v1/vms');
    for (const v of (some.json as { vms: object[] }).vms) expect(Object.keys(v)).toEqual(['id', 'name', 'state', 'cpuTimeUs', 'drops']);
    const badField = await api('GET', '/v1/vms?fields=state,secret', '/v1/vms');
    expect(badField.status).toBe(400);
    expect((badField.json as { error: string }).error).toMatch(/bad field 'secret'/);
    const running = await api('GET', '/v1/vms?state=runnable', '/v1/vms');
    expect((running.json as { vms: { name: string }[] }).vms.map((v) => v.name)).toContain('spinner');
    const b = await api('GET', '/v1/vms?state=sleepy', '/v1/vms');
    expect(b.status).toBe(400);
    expect((b.json as { error: string }).error).toMatch(/sleepy/);
  });

  it('GET /v1/vms/{vm} by name or id; 404 for an unknown VM', async () => {
    expect((await api('GET', '/v1/vms/tick', '/v1/vms/{vm}')).json).toMatchObject({ name: 'tick', id: 1 });
    expect((await api('GET', '/v1/vms/2', '/v1/vms/{vm}')).json).toMatchObject({ name: 'spinner' });
    const a = await api('GET', '/v1/vms/nobody', '/v1/vms/{vm}');
    expect(a.status).toBe(404);
    expect((a.json as { error: string }).error).toMatch(/nobody/);
  });

  it('pause takes a VM off the CPU, resume puts it back; wrong states are 409', async () => {
    const p = await api('POST', '/v1/vms/spinner/pause', '/v1/vms/{vm}/pause');
    expect(p.json).toMatchObject({ state: 'paused' });
    const before = (p.json as { instructionsRetired: number }).instructionsRetired;
    await sleep(300);
    const still = (await api('GET', '/v1/vms/spinner', '/v1/vms/{vm}')).json as { instructionsRetired: number; state: string };
    expect(still).toMatchObject({ state: 'paused', instructionsRetired: before });
    const r = await api('POST', '/v1/vms/spinner/resume', '/v1/vms/{vm}/resume');
    expect(r.status).toBe(200);
    expect((r.json as { state: string }).state).not.toBe('paused');
    await sleep(300);
    expect(((await api('GET', '/v1/vms/spinner', '/v1/vms/{vm}')).json as { instructionsRetired: number }).instructionsRetired).toBeGreaterThan(before);
    const again = await api('POST', '/v1/vms/spinner/resume', '/v1/vms/{vm}/resume');
    expect(again.status).toBe(409);
    expect((again.json as { error: string }).error).toMatch(/not paused/);
    expect((await api('POST', '/v1/vms/nobody/pause', '/v1/vms/{vm}/pause')).status).toBe(404);
  });

  it('swap-out writes an idle VM to the swap area, swap-in brings it back; wrong states are 409', async () => {
    // `tick` idles 200 ms between lines: a swap-out finds it idle, or answers 409 while it runs.
    let out = await api('POST', '/v1/vms/tick/swap-out', '/v1/vms/{vm}/swap-out');
    for (let i = 0; i < 100 && out.status === 409; i++) {
      expect((out.json as { error: string }).error).toMatch(/only idle, resident VMs/);
      await sleep(5);
      out = await api('POST', '/v1/vms/tick/swap-out', '/v1/vms/{vm}/swap-out');
    }
    expect(out.status).toBe(200);
    expect(out.json).toMatchObject({ state: 'swapped', swapOuts: 1 });
    const back = await api('POST', '/v1/vms/tick/swap-in', '/v1/vms/{vm}/swap-in');
    if (back.status === 200) {
      expect((back.json as { state: string }).state).not.toBe('swapped');
    } else {
      // its 200 ms timer came first and swapped it in
      expect(back.status).toBe(409);
      expect((back.json as { error: string }).error).toMatch(/not swapped out/);
    }
    expect(((await api('GET', '/v1/vms/tick', '/v1/vms/{vm}')).json as { swapIns: number }).swapIns).toBe(1);
    // the spinner never idles: it cannot be swapped out
    const busy = await api('POST', '/v1/vms/spinner/swap-out', '/v1/vms/{vm}/swap-out');
    expect(busy.status).toBe(409);
    for (const op of ['swap-out', 'swap-in']) {
      expect((await api('POST', `/v1/vms/nobody/${op}`, `/v1/vms/{vm}/${op}`)).status).toBe(404);
    }
  });

  it('console: the tail, a bounded tail, bad queries, and a follow stream that ends when the VM stops', async () => {
    const a = await api('GET', '/v1/vms/tick/console', '/v1/vms/{vm}/console');
    expect(a.status).toBe(200);
    expect(a.text).toMatch(/^tick 0\ntick 1\n/);
    const five = await api('GET', '/v1/vms/tick/console?bytes=5', '/v1/vms/{vm}/console');
    expect(five.text).toMatch(/^[0-9 ick]{4}\n$/);
    for (const q of ['bytes=abc', 'bytes=-1', 'bytes=99999999', 'follow=maybe']) {
      const b = await api('GET', `/v1/vms/tick/console?${q}`, '/v1/vms/{vm}/console');
      expect(b.status, q).toBe(400);
    }
    expect((await api('GET', '/v1/vms/nobody/console', '/v1/vms/{vm}/console')).status).toBe(404);

    const streamed = await new Promise<string>((resolve, reject) => {
      const req = request({ socketPath: socket, path: '/v1/vms/tick/console?follow=true&bytes=0' }, (res) => {
        expect(res.statusCode).toBe(200);
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c.toString();
          if (/tick \d+\n.*tick \d+\n/s.test(text) && !text.includes('STOPPING')) {
            text += 'STOPPING';
            void api('POST', '/v1/vms/tick/stop', '/v1/vms/{vm}/stop');
          }
        });
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(streamed).toMatch(/^tick \d+\n/);
    expect(((await api('GET', '/v1/vms/tick', '/v1/vms/{vm}')).json as { state: string }).state).toBe('stopped');
    // A finished VM's follow stream ends at once with its tail.
    const done = await api('GET', '/v1/vms/tick/console?follow=true', '/v1/vms/{vm}/console');
    expect(done.text).toMatch(/tick 1\n/);
  });

  it('stop: a stopped VM is 409 on a second stop; the instance goes on', async () => {
    const a = await api('POST', '/v1/vms/tick/stop', '/v1/vms/{vm}/stop');
    expect(a.status).toBe(409);
    expect((await api('POST', '/v1/vms/nobody/stop', '/v1/vms/{vm}/stop')).status).toBe(404);
    const s = await api('POST', '/v1/vms/spinner/stop', '/v1/vms/{vm}/stop');
    expect(s.json).toMatchObject({ state: 'stopped' });
    const i = await api('GET', '/v1/instance', '/v1/instance');
    expect((i.json as { totals: { byState: Record<string, number> } }).totals.byState.stopped).toBe(2);
  });

  it('GET /metrics is valid Prometheus text with per-VM and host series', async () => {
    const a = await api('GET', '/metrics', '/metrics');
    expect(a.status).toBe(200);
    const lines = a.text.trimEnd().split('\n');
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;
    for (const l of lines) {
      if (l.startsWith('# HELP ') || l.startsWith('# TYPE ')) continue;
      expect(l).toMatch(sample);
    }
    const types = lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
    expect(new Set(types).size).toBe(types.length);
    expect(a.text).toMatch(/^denali_vm_cpu_seconds_total\{instance_name="api-test",vm="ticker",image="ticker"\} [0-9.e-]+$/m);
    expect(a.text).toMatch(/^denali_vms\{instance_name="api-test",state="stopped"\} 2$/m);
    expect(a.text).toMatch(/^denali_vm_dropped_frames_total\{.*vm="ticker".*reason="rxFifoFull"\} 0$/m);
  });

  it('unknown endpoints, wrong methods and broken HTTP get JSON errors; Yakima keeps serving', async () => {
    const nf = await raw('GET', '/v2/nothing');
    expect(nf.status).toBe(404);
    expect((nf.json as { error: string }).error).toMatch(/no such endpoint/);
    const m = await raw('DELETE', '/v1/vms');
    expect(m.status).toBe(405);
    expect((m.json as { error: string }).error).toMatch(/DELETE/);
    const garbage = await new Promise<string>((resolve) => {
      const s = connect(socket);
      let got = '';
      s.on('data', (c) => (got += c.toString()));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      s.write('THIS IS NOT HTTP\r\n\r\n');
    });
    expect(garbage).toMatch(/^HTTP\/1.1 400/);
    const long = await raw('GET', '/v1/vms/' + 'x'.repeat(5000));
    expect(long.status).toBeGreaterThanOrEqual(400);
    expect(long.status).toBeLessThan(500);
    expect((await api('GET', '/v1/instance', '/v1/instance')).status).toBe(200);
  });

  it('POST /v1/instance/shutdown answers 202 and asks the instance to stop', async () => {
    const a = await api('POST', '/v1/instance/shutdown', '/v1/instance/shutdown');
    expect(a.status).toBe(202);
    await sleep(50);
    expect(shutdowns).toBe(1);
  });

  it('every operation in openapi.json was exercised', () => {
    const ops = Object.values(openapi.paths as unknown as Record<string, PathItem>).flatMap((p) => Object.values(p).map((o) => o.operationId));
    expect(ops.filter((o) => !seen.has(o))).toEqual([]);
  });
});

const procProbe = probeProcessBackend();

describe.skipIf(!procProbe.usable)(`control API swap actions on the process backend${procProbe.usable ? '' : ` (skipped: ${procProbe.reason})`}`, () => {
  let yakima: Yakima;
  let server: ControlServer;
  let run: Promise<void>;
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'denali-api-proc-'));
    process.env.DENALI_RUNTIME_DIR = join(dir, 'rt');
    const ticker = await cImage('ticker', TICKER_C, dir);
    const tail = new ConsoleTailSink(undefined, 4096);
    yakima = new Yakima({ backend: 'process', sink: tail, keepAlive: true, swapDir: dir });
    server = await startControlServer(yakima, { name: 'api-proc', tail, backend: 'process', version: '9.9.9' });
    socket = server.socket;
    run = yakima.run();
    expect((await api('POST', '/v1/vms', '/v1/vms', { image: ticker, name: 'tick' })).status).toBe(201);
  });

  afterAll(() => closeInstance(yakima, run, server));

  it('swap-out and swap-in answer 200 (not 501), and the VM keeps ticking afterwards', async () => {
    let out = await api('POST', '/v1/vms/tick/swap-out', '/v1/vms/{vm}/swap-out');
    for (let i = 0; i < 200 && out.status === 409; i++) {
      await sleep(5);
      out = await api('POST', '/v1/vms/tick/swap-out', '/v1/vms/{vm}/swap-out');
    }
    expect(out.status).toBe(200);
    expect(out.json).toMatchObject({ state: 'swapped', swapOuts: 1 });
    const back = await api('POST', '/v1/vms/tick/swap-in', '/v1/vms/{vm}/swap-in');
    expect([200, 409]).toContain(back.status); // 409: its 200 ms timer swapped it in first
    const before = ((await api('GET', '/v1/vms/tick/console', '/v1/vms/{vm}/console')).text.match(/tick/g) ?? []).length;
    await sleep(700);
    const after = ((await api('GET', '/v1/vms/tick/console', '/v1/vms/{vm}/console')).text.match(/tick/g) ?? []).length;
    expect(after).toBeGreaterThan(before);
    expect(((await api('GET', '/v1/vms/tick', '/v1/vms/{vm}')).json as { swapIns: number; state: string }).swapIns).toBe(1);
  });
});
