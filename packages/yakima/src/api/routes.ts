import { isAbsolute } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Ajv2020 } from 'ajv/dist/2020.js';
import FindMyWay from 'find-my-way';
import { readImageFile } from '@denali/image-format';
import type { Vm } from '../control/vm.js';
import { VmStateError } from '../control/vm-state-error.js';
import type { Backend, Yakima } from '../control/yakima.js';
import type { ConsoleTailSink } from '../devices/console-tail.js';
import { SwapError } from '../swap/swap-error.js';
import { hostInfo, totalsOf, VM_STATES, vmCounters } from './counters.js';
import { ApiError, readJsonBody, sendJson } from './http-util.js';
import { formatMetrics } from './metrics.js';
import openapi from './openapi.json' with { type: 'json' };

/** What the route handlers need besides the Yakima instance. */
export interface RouteContext {
  name: string;
  socket: string;
  version: string;
  backend: Backend | 'process';
  startedAt: Date;
  tail: ConsoleTailSink;
  /** Open follow streams, ended when the server closes. */
  followers: Set<ServerResponse>;
  onShutdown?: () => void;
}

/** Body of `POST /v1/vms` (`AddVmRequest` in openapi.json). */
interface AddVmRequest {
  image: string;
  name?: string;
  args?: string[];
  memoryBytes?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse, params: Record<string, string | undefined>, query: URLSearchParams) => Promise<void> | void;

/** Counter names a `fields` query may select (`Vm` in openapi.json). */
const VM_FIELDS = new Set(Object.keys(openapi.components.schemas.Vm.properties));

/** Parse `fields=a,b,c`. @throws ApiError 400 naming an unknown field. */
function parseFields(text: string): string[] {
  const names = text.split(',').filter((f) => f !== '');
  const bad = names.find((f) => !VM_FIELDS.has(f));
  if (bad !== undefined) throw new ApiError(400, `bad field '${bad.slice(0, 64)}': expected names of Vm counters (id, name, state, cpuTimeUs, …)`);
  return [...new Set(['id', 'name', ...names])];
}

/** The named properties of `o`. */
function pick(o: object, names: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names) out[n] = (o as Record<string, unknown>)[n];
  return out;
}

/** Largest `bytes` a console tail request may ask for. */
const MAX_TAIL_BYTES = 1 << 20;

/**
 * The control API's request handler (paths and shapes: openapi.json). Throws `ApiError` for
 * answers other than success; the server turns them into JSON errors.
 */
export function createRoutes(yakima: Yakima, ctx: RouteContext): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const ajv = new Ajv2020({ allErrors: false, strict: false });
  ajv.addSchema(openapi, 'openapi.json');
  const validateAddVm = ajv.getSchema<AddVmRequest>('openapi.json#/components/schemas/AddVmRequest')!;
  const router = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 128 });
  const on = (method: 'GET' | 'POST', path: string, h: Handler): void => router.on(method, path, () => {}, h);

  const findVm = (ref: string | undefined): Vm => {
    const key = ref ?? '';
    const vm = yakima.vms.find((v) => v.name === key) ?? (/^[0-9]+$/.test(key) ? yakima.vms.find((v) => v.id === Number(key)) : undefined);
    if (!vm) throw new ApiError(404, `no VM named '${key}' in instance ${ctx.name}`);
    return vm;
  };
  const counters = (vm: Vm) => vmCounters(vm, ctx.tail);
  const lifecycle = (action: (vm: Vm) => void | Promise<void>): Handler => {
    return async (_req, res, p) => {
      const vm = findVm(p.vm);
      try {
        await action(vm);
      } catch (e) {
        if (e instanceof VmStateError) throw new ApiError(409, e.message);
        if (e instanceof SwapError) throw new ApiError(/not supported/.test(e.message) ? 501 : 409, e.message);
        throw e;
      }
      sendJson(res, 200, counters(vm));
    };
  };

  on('GET', '/v1/instance', (_req, res) => {
    const vms = yakima.vms.map(counters);
    sendJson(res, 200, {
      name: ctx.name,
      pid: process.pid,
      version: ctx.version,
      backend: ctx.backend,
      socket: ctx.socket,
      startedAt: ctx.startedAt.toISOString(),
      uptimeSeconds: (Date.now() - ctx.startedAt.getTime()) / 1000,
      network: yakima.net !== undefined,
      host: hostInfo(),
      totals: totalsOf(yakima, vms),
    });
  });
  on('POST', '/v1/instance/shutdown', (_req, res) => {
    sendJson(res, 202, { status: 'shutting down' });
    setImmediate(() => (ctx.onShutdown ? ctx.onShutdown() : yakima.stop('shutdown')));
  });
  on('GET', '/v1/vms', (_req, res, _p, q) => {
    const state = q.get('state');
    if (state !== null && !(VM_STATES as readonly string[]).includes(state)) {
      throw new ApiError(400, `bad state '${state.slice(0, 64)}': expected one of ${VM_STATES.join(', ')}`);
    }
    const fieldsText = q.get('fields');
    const fields = fieldsText === null ? undefined : parseFields(fieldsText);
    const vms = state === null ? yakima.vms : yakima.vms.filter((v) => v.state === state);
    // A watcher of 10,000 VMs asks for the few counters it shows: half the bytes to send and parse.
    sendJson(res, 200, { vms: fields ? vms.map((v) => pick(counters(v), fields)) : vms.map(counters) });
  });
  on('POST', '/v1/vms', async (req, res) => {
    const raw = await readJsonBody(req);
    if (!validateAddVm(raw)) {
      const e = validateAddVm.errors?.[0];
      throw new ApiError(400, `bad request body: ${e ? `${e.instancePath || 'body'} ${e.message}` : 'invalid'}`);
    }
    const body = raw as AddVmRequest;
    if (!isAbsolute(body.image)) throw new ApiError(400, `image must be an absolute path (got '${body.image}')`);
    if (body.name !== undefined && yakima.vms.some((v) => v.name === body.name)) throw new ApiError(409, `a VM named '${body.name}' already exists`);
    let vm: Vm;
    try {
      const image = await readImageFile(body.image);
      vm = yakima.addVm(image, { name: body.name, args: body.args, memorySize: body.memoryBytes });
    } catch (e) {
      throw new ApiError(422, `cannot boot ${body.image}: ${e instanceof Error ? e.message : String(e)}`);
    }
    vm.console.endInput();
    sendJson(res, 201, counters(vm));
  });
  on('GET', '/v1/vms/:vm', (_req, res, p) => sendJson(res, 200, counters(findVm(p.vm))));
  on('POST', '/v1/vms/:vm/stop', lifecycle((vm) => yakima.stopVm(vm)));
  on('POST', '/v1/vms/:vm/pause', lifecycle((vm) => yakima.pauseVm(vm)));
  on('POST', '/v1/vms/:vm/resume', lifecycle((vm) => yakima.resumeVm(vm)));
  on('POST', '/v1/vms/:vm/swap-out', lifecycle((vm) => yakima.swapOut(vm)));
  on('POST', '/v1/vms/:vm/swap-in', lifecycle((vm) => yakima.swapIn(vm)));
  on('GET', '/v1/vms/:vm/console', (req, res, p, q) => {
    const vm = findVm(p.vm);
    const bytesText = q.get('bytes');
    let bytes = ctx.tail.capacity;
    if (bytesText !== null) {
      bytes = Number(bytesText);
      if (!/^[0-9]+$/.test(bytesText) || bytes > MAX_TAIL_BYTES) throw new ApiError(400, `bad bytes '${bytesText}': expected a whole number up to ${MAX_TAIL_BYTES}`);
    }
    const followText = q.get('follow');
    if (followText !== null && followText !== 'true' && followText !== 'false') throw new ApiError(400, `bad follow '${followText}': expected true or false`);
    const tail = ctx.tail.tail(vm.name, bytes);
    if (followText !== 'true' || vm.finished) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tail.length });
      res.end(tail);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
    res.write(tail);
    ctx.followers.add(res);
    // A slow reader must not make the instance buffer without bound: drop it instead.
    const unfollow = ctx.tail.follow(vm.name, {
      data: (chunk) => {
        if (res.writableLength > 4 * ctx.tail.capacity) res.destroy();
        else res.write(chunk);
      },
      end: () => res.end(),
    });
    res.on('close', () => {
      unfollow();
      ctx.followers.delete(res);
    });
  });
  on('GET', '/metrics', (_req, res) => {
    const vms = yakima.vms.map(counters);
    const text = formatMetrics(ctx.name, hostInfo(), totalsOf(yakima, vms), vms);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://yakima');
    const method = req.method ?? 'GET';
    const found = method === 'GET' || method === 'POST' ? router.find(method, url.pathname) : null;
    if (!found) {
      const other = (['GET', 'POST'] as const).some((m) => m !== method && router.find(m, url.pathname));
      if (other) throw new ApiError(405, `method ${method} is not allowed on ${url.pathname}`);
      throw new ApiError(404, `no such endpoint: ${method} ${url.pathname}`);
    }
    if (method === 'GET') req.resume(); // a body on GET is ignored, not left to stall the socket
    await (found.store as Handler)(req, res, found.params, url.searchParams);
  };
}
