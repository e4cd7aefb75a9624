import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/**
 * Delete namespaces `PREFIX<pid>` left by test processes that died (their pid is gone), so a
 * killed run does not leak them. Never throws.
 */
export function cleanupStaleNetns(prefix: string): void {
  try {
    const list = execFileSync('ip', ['netns', 'list'], { stdio: 'pipe' }).toString();
    for (const line of list.split('\n')) {
      const name = line.split(' ')[0] ?? '';
      const m = new RegExp(`^${prefix}(\\d+)$`).exec(name);
      if (!m) continue;
      try {
        process.kill(Number(m[1]), 0);
      } catch {
        deleteNetns(name);
      }
    }
  } catch {
    /* no ip netns support: nothing to clean */
  }
}

/** Create a network namespace with loopback up. @throws when `ip netns` fails. */
export function createNetns(name: string): void {
  execFileSync('ip', ['netns', 'add', name], { stdio: 'pipe' });
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up'], { stdio: 'pipe' });
}

export function deleteNetns(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'pipe' });
  } catch {
    /* already gone */
  }
}

/** Run a command in the namespace, synchronously. */
export function inNetns(name: string, cmd: string[]): string {
  return execFileSync('ip', ['netns', 'exec', name, ...cmd], { stdio: 'pipe', timeout: 10_000 }).toString();
}

export interface PeerEvent {
  event?: string;
  port?: number;
  mode?: string;
  received?: number;
  sha256?: string;
  sentSha256?: string;
  endedBy?: string;
  [k: string]: unknown;
}

/** The kernel-TCP peer process (kernel-peer.mjs) running inside a namespace. */
export class KernelPeer {
  private readonly proc: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: PeerEvent) => void>();
  private readonly events: PeerEvent[] = [];
  private readonly eventWaiters: Array<{ pred: (e: PeerEvent) => boolean; res: (e: PeerEvent) => void }> = [];
  readonly ready: Promise<void>;

  constructor(netns: string) {
    const script = fileURLToPath(new URL('./kernel-peer.mjs', import.meta.url));
    this.proc = spawn('ip', ['netns', 'exec', netns, process.execPath, script], { stdio: ['pipe', 'pipe', 'inherit'] });
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as PeerEvent & { id?: number };
      if (m.event === 'ready') return ready();
      if (m.id !== undefined) {
        this.waiting.get(m.id)?.(m);
        this.waiting.delete(m.id);
        return;
      }
      const w = this.eventWaiters.findIndex((x) => x.pred(m));
      if (w >= 0) this.eventWaiters.splice(w, 1)[0]!.res(m);
      else this.events.push(m);
    });
  }

  /** Send a command; resolves with its reply. @throws when the peer reports an error. */
  async call(cmd: Record<string, unknown>): Promise<PeerEvent> {
    const id = this.nextId++;
    const r = await new Promise<PeerEvent>((res) => {
      this.waiting.set(id, res);
      this.proc.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    });
    if (r['ok'] !== true) throw new Error(String(r['error']));
    return r;
  }

  /** Next event matching `pred` (already seen or future). */
  nextEvent(pred: (e: PeerEvent) => boolean, timeoutMs = 20_000): Promise<PeerEvent> {
    const i = this.events.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.events.splice(i, 1)[0]!);
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error('kernel peer event timed out')), timeoutMs);
      this.eventWaiters.push({
        pred,
        res: (e) => {
          clearTimeout(t);
          res(e);
        },
      });
    });
  }

  kill(): void {
    this.proc.stdin!.end();
    this.proc.kill();
  }
}
