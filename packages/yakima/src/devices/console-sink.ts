import type { ConsoleSink } from './console.js';

/** Longest line, in bytes, a prefixed console holds back waiting for its newline; longer ones are split. */
export const CONSOLE_LINE_MAX = 4096;

/** Options of `StreamConsoleSink`. */
export interface StreamConsoleSinkOptions {
  /** Where the one-line notice about dropped output goes (said once). Default: nowhere. */
  log?: (line: string) => void;
  /** Name of the stream in that notice. Default 'stdout'. */
  streamName?: string;
}

/**
 * Console output to a host stream (terminal, pipe, file). With one VM the guest's bytes pass
 * through untouched; with several, each line is prefixed with the VM's name (`hello-2 | text`)
 * and a VM's unfinished line is held back until its newline, its exit, or `CONSOLE_LINE_MAX`
 * bytes (then it is written as a line of its own), so lines never interleave and the held-back
 * bytes stay bounded.
 *
 * Honours the stream's backpressure (`write` returns false past its high-water mark, and the
 * sink calls its `onDrain` callback on 'drain'), so VMs are slowed to the reader's speed. When
 * the stream fails (EPIPE: the reader went away) the sink becomes `closed`, drops and counts
 * everything after, and says so once.
 */
export class StreamConsoleSink implements ConsoleSink {
  private readonly partial = new Map<string, Buffer>();
  private drainCb: (() => void) | undefined;
  private waitingDrain = false;
  private failed: string | undefined;
  /** Bytes discarded because the stream failed. */
  droppedBytes = 0;

  constructor(
    private readonly out: NodeJS.WritableStream,
    /** Prefix lines with the VM name (use when more than one VM runs). */
    private readonly prefix: boolean,
    private readonly opts: StreamConsoleSinkOptions = {},
  ) {
    out.on('drain', () => {
      this.waitingDrain = false;
      this.drainCb?.();
    });
    out.on('error', (e: NodeJS.ErrnoException) => this.fail(e.code ?? e.message));
  }

  get closed(): boolean {
    return this.failed !== undefined;
  }

  onDrain(cb: () => void): void {
    this.drainCb = cb;
  }

  write(vmName: string, bytes: Uint8Array): boolean {
    if (!this.prefix) return this.emit(bytes);
    let buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const held = this.partial.get(vmName);
    if (held) buf = Buffer.concat([held, buf]);
    const tag = Buffer.from(`${vmName} | `);
    const lines: Buffer[] = [];
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl >= 0 && nl - start < CONSOLE_LINE_MAX) {
        lines.push(tag, buf.subarray(start, nl + 1));
        start = nl + 1;
      } else if (buf.length - start >= CONSOLE_LINE_MAX) {
        lines.push(tag, buf.subarray(start, start + CONSOLE_LINE_MAX), NEWLINE);
        start += CONSOLE_LINE_MAX;
      } else break;
    }
    if (start < buf.length) this.partial.set(vmName, Buffer.from(buf.subarray(start)));
    else this.partial.delete(vmName);
    return lines.length === 0 ? !this.waitingDrain : this.emit(Buffer.concat(lines));
  }

  close(vmName: string): void {
    const rest = this.partial.get(vmName);
    if (rest) {
      this.partial.delete(vmName);
      this.emit(Buffer.concat([Buffer.from(`${vmName} | `), rest, NEWLINE]));
    }
  }

  /** Bytes written to the stream and not yet taken by its reader. */
  get unflushedBytes(): number {
    return (this.out as NodeJS.WritableStream & { writableLength?: number }).writableLength ?? 0;
  }

  /**
   * Wait until the stream has handed everything to its reader, at most `ms` milliseconds (a
   * reader that does not read must not hold up an exit).
   * @returns the bytes still not delivered (0 when all were).
   */
  async flush(ms: number): Promise<number> {
    if (this.closed) return 0;
    if (this.unflushedBytes > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, ms);
        function done(): void {
          clearTimeout(t);
          resolve();
        }
        this.out.write('', done);
      });
    }
    return this.closed ? 0 : this.unflushedBytes;
  }

  private emit(bytes: Uint8Array): boolean {
    if (this.failed !== undefined) {
      this.droppedBytes += bytes.length;
      return true;
    }
    const ok = this.out.write(bytes);
    if (!ok) this.waitingDrain = true;
    return ok;
  }

  private fail(why: string): void {
    if (this.failed !== undefined) return;
    this.failed = why;
    this.droppedBytes += this.unflushedBytes;
    this.opts.log?.(`denali: console output dropped from now on: ${this.opts.streamName ?? 'stdout'} failed (${why})`);
    this.waitingDrain = false;
    this.drainCb?.(); // wake writers: from now on everything is dropped at once
  }
}

const NEWLINE = Buffer.from('\n');

/** Default bound of `MemoryConsoleSink`: bytes kept per VM (the newest). */
export const MEMORY_SINK_LIMIT = 8 * 1024 * 1024;

/**
 * Collects each VM's console output in memory (tests, benchmarks, `denali` library users),
 * keeping the newest `limit` bytes per VM; older bytes are dropped and counted in `truncated`,
 * so a guest cannot grow host memory through it either.
 */
export class MemoryConsoleSink implements ConsoleSink {
  private readonly chunks = new Map<string, { list: Buffer[]; bytes: number }>();
  /** Bytes dropped per VM because its output passed `limit`. */
  readonly truncated = new Map<string, number>();
  /** Called on every write with the VM name and the bytes. */
  onWrite?: (vmName: string, bytes: Uint8Array) => void;

  constructor(
    /** Bytes kept per VM, newest first; default `MEMORY_SINK_LIMIT`. */
    private readonly limit = MEMORY_SINK_LIMIT,
  ) {}

  write(vmName: string, bytes: Uint8Array): void {
    let vm = this.chunks.get(vmName);
    if (!vm) this.chunks.set(vmName, (vm = { list: [], bytes: 0 }));
    vm.list.push(Buffer.from(bytes));
    vm.bytes += bytes.length;
    while (vm.bytes > this.limit) {
      const head = vm.list[0]!;
      const cut = Math.min(head.length, vm.bytes - this.limit);
      if (cut === head.length) vm.list.shift();
      else vm.list[0] = head.subarray(cut);
      vm.bytes -= cut;
      this.truncated.set(vmName, (this.truncated.get(vmName) ?? 0) + cut);
    }
    this.onWrite?.(vmName, bytes);
  }

  close(): void {}

  /** What `vmName` wrote (its newest `limit` bytes), decoded as UTF-8. */
  text(vmName: string): string {
    return Buffer.concat(this.chunks.get(vmName)?.list ?? []).toString('utf8');
  }
}
