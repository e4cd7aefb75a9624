/**
 * The virtual console (paper 3.1.2: a generic console device that needs no initialization).
 * Output goes to a `ConsoleSink`; input is a byte queue filled by the host and drained by the
 * guest's non-blocking CONSOLE_READ hypercall. When input arrives the VM gets `IRQ.CONSOLE`.
 */

/** Where a VM's console output goes. `name` is the VM's display name. */
export interface ConsoleSink {
  write(vmName: string, bytes: Uint8Array): void;
  /** The VM is gone: flush anything held back for it (an unfinished line). */
  close(vmName: string): void;
}

/** Bound on queued, unread console input per VM, in bytes; the host stops reading past it. */
export const CONSOLE_INPUT_LIMIT = 1 << 20;

/** One VM's console. */
export class ConsoleDevice {
  private input: Uint8Array[] = [];
  private inputBytes = 0;
  private inputEnded = false;
  /** Bytes the guest has written, for statistics. */
  bytesWritten = 0;
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
  ) {}

  /** Guest output (CONSOLE_WRITE). The bytes are copied before this returns. */
  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.firstByteAt ??= performance.now();
    this.bytesWritten += bytes.length;
    this.sink.write(this.vmName, bytes.slice());
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

  close(): void {
    this.sink.close(this.vmName);
  }
}
