import type { ConsoleSink } from './console.js';

/** Default bound on the recent console output kept per VM, in bytes. */
export const CONSOLE_TAIL_BYTES = 16 * 1024;

/** Listener of one VM's console: `data` for each write, `end` once when the VM is gone. */
export interface ConsoleFollower {
  data(bytes: Uint8Array): void;
  end(): void;
}

/**
 * A byte ring of fixed capacity that grows on demand (most VMs write little, and thousands of
 * them share a host), then overwrites its oldest bytes.
 */
class ByteRing {
  private buf = new Uint8Array(256);
  private start = 0;
  private len = 0;
  /** Bytes ever written, so followers and clients can tell how much was lost. */
  total = 0;

  constructor(private readonly capacity: number) {}

  write(bytes: Uint8Array): void {
    this.total += bytes.length;
    if (bytes.length >= this.capacity) {
      this.grow(this.capacity);
      this.buf.set(bytes.subarray(bytes.length - this.capacity));
      this.start = 0;
      this.len = this.capacity;
      return;
    }
    if (this.len + bytes.length > this.buf.length && this.buf.length < this.capacity) this.grow(Math.min(this.capacity, Math.max(this.buf.length * 2, this.len + bytes.length)));
    const cap = this.buf.length;
    let end = (this.start + this.len) % cap;
    for (let off = 0; off < bytes.length; ) {
      const n = Math.min(bytes.length - off, cap - end);
      this.buf.set(bytes.subarray(off, off + n), end);
      off += n;
      end = (end + n) % cap;
    }
    const over = this.len + bytes.length - cap;
    if (over > 0) {
      this.start = (this.start + over) % cap;
      this.len = cap;
    } else {
      this.len += bytes.length;
    }
  }

  /** The last `max` bytes held (all of them by default). */
  tail(max = this.len): Uint8Array {
    const n = Math.min(max, this.len);
    const out = new Uint8Array(n);
    const cap = this.buf.length;
    const from = (this.start + this.len - n) % cap;
    const first = Math.min(n, cap - from);
    out.set(this.buf.subarray(from, from + first));
    out.set(this.buf.subarray(0, n - first), first);
    return out;
  }

  private grow(size: number): void {
    const next = new Uint8Array(size);
    next.set(this.tail());
    this.buf = next;
    this.start = 0;
  }
}

/**
 * A console sink that keeps the last `capacity` bytes of each VM's output (for `denali logs`
 * and the control API's console tail) and passes every write on to `inner`. Followers get each
 * later write as it happens. Memory is bounded: at most `capacity` bytes per VM name, and the
 * ring of a VM is dropped with `forget`.
 */
export class ConsoleTailSink implements ConsoleSink {
  private readonly rings = new Map<string, ByteRing>();
  private readonly followers = new Map<string, Set<ConsoleFollower>>();
  private readonly closedVms = new Set<string>();

  constructor(
    private readonly inner: ConsoleSink | undefined,
    /** Bytes kept per VM. */
    readonly capacity = CONSOLE_TAIL_BYTES,
  ) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new RangeError('console tail capacity must be a positive number of bytes');
  }

  /** Keeps the bytes, then passes them on; returns the inner sink's backpressure answer. */
  write(vmName: string, bytes: Uint8Array): boolean | void {
    let ring = this.rings.get(vmName);
    if (!ring) this.rings.set(vmName, (ring = new ByteRing(this.capacity)));
    ring.write(bytes);
    for (const f of this.followers.get(vmName) ?? []) f.data(bytes);
    return this.inner?.write(vmName, bytes);
  }

  onDrain(cb: () => void): void {
    this.inner?.onDrain?.(cb);
  }

  /** True once the inner sink discards everything (its reader went away). */
  get closed(): boolean {
    return this.inner?.closed === true;
  }

  close(vmName: string): void {
    this.closedVms.add(vmName);
    const fs = this.followers.get(vmName);
    this.followers.delete(vmName);
    for (const f of fs ?? []) f.end();
    this.inner?.close(vmName);
  }

  /** The last `maxBytes` bytes `vmName` wrote (fewer when it wrote less or the ring is smaller). */
  tail(vmName: string, maxBytes = this.capacity): Uint8Array {
    return this.rings.get(vmName)?.tail(maxBytes) ?? new Uint8Array();
  }

  /** Bytes `vmName` has written in all (kept or not). */
  totalBytes(vmName: string): number {
    return this.rings.get(vmName)?.total ?? 0;
  }

  /**
   * Call `f` for every later write of `vmName`, and `f.end()` once when it closes (at once if it
   * already has). @returns a function that unsubscribes.
   */
  follow(vmName: string, f: ConsoleFollower): () => void {
    if (this.closedVms.has(vmName)) {
      f.end();
      return () => {};
    }
    let set = this.followers.get(vmName);
    if (!set) this.followers.set(vmName, (set = new Set()));
    set.add(f);
    return () => {
      set.delete(f);
      if (set.size === 0 && this.followers.get(vmName) === set) this.followers.delete(vmName);
    };
  }

  /** Drop what is kept for `vmName` (its VM was removed). */
  forget(vmName: string): void {
    this.rings.delete(vmName);
    this.closedVms.delete(vmName);
  }
}
