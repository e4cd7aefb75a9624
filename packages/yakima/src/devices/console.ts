/**
 * The virtual console (paper 3.1.2: a generic console device that needs no initialization).
 * Output is a bounded device like the NIC's Tx FIFO: CONSOLE_WRITE copies into a per-VM buffer
 * of `CONSOLE_OUTPUT_LIMIT` bytes, which drains into the shared `ConsoleSink` as fast as the
 * sink (terminal, pipe) takes it; when the buffer is full the write completes partially or
 * not at all and the VM waits, like IDLE, until there is room. Input is a byte queue filled
 * by the host and drained by the guest's non-blocking CONSOLE_READ hypercall. When input
 * arrives the VM gets `IRQ.CONSOLE`.
 */
import { ConsoleOutput, type ConsoleWriter } from './console-output.js';

/** Where a VM's console output goes. `vmName` is the VM's display name. */
export interface ConsoleSink {
  /**
   * Take `bytes` (owned by the sink from now on). Return false when the sink is full (like
   * Node's `Writable.write`): no VM writes to it again until it calls the `onDrain` callback.
   * Returning nothing means "never full" (in-memory sinks).
   */
  write(vmName: string, bytes: Uint8Array): boolean | void;
  /** The VM is gone: flush anything held back for it (an unfinished line). */
  close(vmName: string): void;
  /** Register the one callback to run when a full sink can take bytes again. */
  onDrain?(cb: () => void): void;
  /** True once the sink discards everything (its reader went away); devices count drops. */
  readonly closed?: boolean;
}

/**
 * Per-VM console output buffer, in bytes: the most host memory one VM's pending console output
 * may hold. A guest writing faster than the host sink drains is slowed to the sink's speed.
 */
export const CONSOLE_OUTPUT_LIMIT = 16 * 1024;

/** Bound on queued, unread console input per VM, in bytes; the host stops reading past it. */
export const CONSOLE_INPUT_LIMIT = 1 << 20;

/** One VM's console. */
export class ConsoleDevice implements ConsoleWriter {
  private input: Uint8Array[] = [];
  private inputBytes = 0;
  private inputEnded = false;
  private readonly out: ConsoleOutput;
  private outBuf: Uint8Array | undefined;
  private outLen = 0;
  /** A CONSOLE_WRITE found the buffer full: call `onRoom` once it drains. */
  private writerBlocked = false;
  private closed = false;
  /** Bytes the guest has written (accepted into the buffer), for statistics. */
  bytesWritten = 0;
  /** Bytes accepted but then discarded because the sink's reader went away. */
  bytesDropped = 0;

  /** `performance.now()` (ms) when the guest wrote its first byte, or undefined. */
  firstByteAt: number | undefined;
  /** Called on the guest's first CONSOLE_READ, so the host starts reading its input source only when asked. */
  onFirstRead: (() => void) | undefined;
  private readRequested = false;

  constructor(
    readonly vmName: string,
    private readonly sink: ConsoleSink,
    /** Called when input arrives or ends, so the VM can be sent `IRQ.CONSOLE`. */
    private readonly onInput: () => void,
    /** Called when a writer that found the buffer full may write again (wake the VM). */
    private readonly onRoom: () => void = () => {},
  ) {
    this.out = ConsoleOutput.of(sink);
  }

  /**
   * Guest output (CONSOLE_WRITE): copies as many of `bytes` as the buffer has room for.
   * @returns bytes taken, 0..bytes.length; 0 for a non-empty write means "full: wait for
   *   `onRoom`" (the caller parks the VM and repeats the write then).
   */
  write(bytes: Uint8Array): number {
    if (bytes.length === 0) return 0;
    if (this.closed) return bytes.length;
    const room = CONSOLE_OUTPUT_LIMIT - this.outLen;
    if (room === 0) {
      this.writerBlocked = true;
      return 0;
    }
    const n = Math.min(room, bytes.length);
    this.outBuf ??= new Uint8Array(CONSOLE_OUTPUT_LIMIT);
    this.outBuf.set(bytes.subarray(0, n), this.outLen);
    this.outLen += n;
    this.firstByteAt ??= performance.now();
    this.bytesWritten += n;
    this.out.offer(this);
    return n;
  }

  /** Bytes buffered and not yet handed to the sink. */
  get pendingOutput(): number {
    return this.outLen;
  }

  get hasOutput(): boolean {
    return this.outLen > 0;
  }

  /** @internal Used by `ConsoleOutput`: move the buffer into the sink as one chunk. */
  flushTo(sink: ConsoleSink): boolean {
    const n = this.outLen;
    if (n === 0) return true;
    this.outLen = 0;
    let ok: boolean | void = true;
    if (sink.closed) this.bytesDropped += n;
    else ok = sink.write(this.vmName, this.outBuf!.slice(0, n));
    if (this.writerBlocked) {
      this.writerBlocked = false;
      this.onRoom();
    }
    return ok !== false;
  }

  /** Host input for the guest. Returns false when the queue is over `CONSOLE_INPUT_LIMIT`. */
  pushInput(bytes: Uint8Array): boolean {
    if (this.inputEnded || bytes.length === 0) return this.inputBytes < CONSOLE_INPUT_LIMIT;
    this.input.push(bytes.slice());
    this.inputBytes += bytes.length;
    this.onInput();
    return this.inputBytes < CONSOLE_INPUT_LIMIT;
  }

  /** No more host input: reads return end-of-input once the queue is drained. */
  endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.onInput();
  }

  /**
   * Move up to `dest.length` queued bytes into `dest` (CONSOLE_READ; never blocks).
   * @returns bytes copied, and `eof` when the queue is empty and input has ended.
   */
  read(dest: Uint8Array): { done: number; eof: boolean } {
    if (!this.readRequested) {
      this.readRequested = true;
      this.onFirstRead?.();
    }
    let done = 0;
    while (done < dest.length && this.input.length > 0) {
      const head = this.input[0]!;
      const n = Math.min(head.length, dest.length - done);
      dest.set(head.subarray(0, n), done);
      done += n;
      if (n === head.length) this.input.shift();
      else this.input[0] = head.subarray(n);
    }
    this.inputBytes -= done;
    return { done, eof: this.inputEnded && this.input.length === 0 };
  }

  /** True when no input is queued and more may still come (the host should keep reading). */
  get wantsInput(): boolean {
    return !this.inputEnded && this.inputBytes < CONSOLE_INPUT_LIMIT;
  }

  /** The VM is gone: flush its buffer and unfinished line (bounded), release the buffer. */
  close(): void {
    if (this.closed) return;
    this.out.flushNow(this);
    this.closed = true;
    this.outBuf = undefined;
    this.sink.close(this.vmName);
  }
}
