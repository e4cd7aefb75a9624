import { request, type IncomingMessage } from 'node:http';
import { isListening, listSocketNames, socketPath, type Totals, type HostInfo, type VmCounters } from '@denali/yakima';

/** `GET /v1/instance` (openapi.json `Instance`). */
export interface InstanceInfo {
  name: string;
  pid: number;
  version: string;
  backend: string;
  socket: string;
  startedAt: string;
  uptimeSeconds: number;
  network: boolean;
  host: HostInfo;
  totals: Totals;
}

export type { VmCounters };

/** An error answer of a control API, or a failure to reach it. */
export class ControlError extends Error {
  constructor(
    message: string,
    /** HTTP status, or 0 when the instance could not be reached. */
    readonly status: number,
  ) {
    super(message);
  }
}

/** Most bytes of a JSON answer the client reads (10,000 VMs' counters are a few MB). */
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

/** A client of one instance's control socket (openapi.json in packages/yakima/src/api). */
export class ControlClient {
  constructor(
    readonly name: string,
    readonly socket: string = socketPath(name),
  ) {}

  /**
   * One request; resolves to the parsed JSON answer (or text for non-JSON answers).
   * @throws ControlError with the API's error message, or status 0 when unreachable.
   */
  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await this.open(method, path, body);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_ANSWER_BYTES) throw new ControlError(`instance ${this.name}: answer too large`, 0);
      chunks.push(c);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    const isJson = (res.headers['content-type'] ?? '').startsWith('application/json');
    const status = res.statusCode ?? 0;
    if (status >= 400) {
      let msg = text;
      if (isJson) {
        try {
          msg = (JSON.parse(text) as { error?: string }).error ?? text;
        } catch {
          /* keep the text */
        }
      }
      throw new ControlError(msg, status);
    }
    return (isJson ? JSON.parse(text) : text) as T;
  }

  /** Start a request and resolve with the response (for streams). @throws ControlError when unreachable. */
  open(method: 'GET' | 'POST', path: string, body?: unknown): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = request(
        {
          socketPath: this.socket,
          method,
          path,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        resolve,
      );
      req.on('error', (e) => reject(new ControlError(`cannot reach instance ${this.name} (${this.socket}): ${e.message}`, 0)));
      req.end(payload);
    });
  }

  instance(): Promise<InstanceInfo> {
    return this.call('GET', '/v1/instance');
  }

  async vms(): Promise<VmCounters[]> {
    return (await this.call<{ vms: VmCounters[] }>('GET', '/v1/vms')).vms;
  }

  /** Run a lifecycle action ('stop', 'pause', 'resume', 'swap-out', 'swap-in') on a VM. */
  action(vm: string, action: 'stop' | 'pause' | 'resume' | 'swap-out' | 'swap-in'): Promise<VmCounters> {
    return this.call('POST', `/v1/vms/${encodeURIComponent(vm)}/${action}`);
  }

  /** The last `bytes` of a VM's console output. */
  async consoleTail(vm: string, bytes?: number): Promise<string> {
    return this.call<string>('GET', `/v1/vms/${encodeURIComponent(vm)}/console${bytes === undefined ? '' : `?bytes=${bytes}`}`);
  }
}

/** Names of the instances of this user that answer on their socket. */
export async function liveInstances(): Promise<string[]> {
  const names = listSocketNames();
  const live = await Promise.all(names.map((n) => isListening(socketPath(n))));
  return names.filter((_, i) => live[i]);
}

/** Message when no instance is running. */
export const NO_INSTANCE = 'no Denali instance is running (start one with `denali serve` or `denali run --detach IMAGE`)';

/**
 * The instance to talk to: `name`, or the only one running.
 * @throws Error when `name` is not running, none runs, or several run and none was named.
 */
export async function resolveInstance(name?: string): Promise<ControlClient> {
  if (name !== undefined) {
    const c = new ControlClient(name);
    if (!(await isListening(c.socket))) throw new Error(`no instance named '${name}' is running (denali ps lists them)`);
    return c;
  }
  const live = await liveInstances();
  if (live.length === 0) throw new Error(NO_INSTANCE);
  if (live.length > 1) throw new Error(`several instances are running (${live.join(', ')}): say which one`);
  return new ControlClient(live[0]!);
}

/**
 * Find the instance holding VM `ref` (`VM` or `INSTANCE/VM`), searching `host` or every running instance.
 * @throws Error when no instance or several hold such a VM.
 */
export async function resolveVm(ref: string, host?: string): Promise<{ client: ControlClient; vm: string }> {
  const slash = ref.indexOf('/');
  if (slash > 0) return { client: await resolveInstance(ref.slice(0, slash)), vm: ref.slice(slash + 1) };
  const candidates = host !== undefined ? [await resolveInstance(host)] : (await liveInstances()).map((n) => new ControlClient(n));
  if (candidates.length === 0) throw new Error(NO_INSTANCE);
  const holders: ControlClient[] = [];
  for (const c of candidates) {
    try {
      await c.call('GET', `/v1/vms/${encodeURIComponent(ref)}`);
      holders.push(c);
    } catch (e) {
      if (!(e instanceof ControlError) || e.status !== 404) throw e;
    }
  }
  if (holders.length === 0) {
    throw new Error(`no VM named '${ref}' in ${candidates.length === 1 ? `instance ${candidates[0]!.name}` : `any of ${candidates.map((c) => c.name).join(', ')}`}`);
  }
  if (holders.length > 1) throw new Error(`VM '${ref}' is in several instances (${holders.map((c) => c.name).join(', ')}): say INSTANCE/${ref}`);
  return { client: holders[0]!, vm: ref };
}
