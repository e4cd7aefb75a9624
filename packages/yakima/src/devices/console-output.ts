import type { ConsoleSink } from './console.js';

/**
 * A VM's side of the shared console path: what `ConsoleOutput` needs from a `ConsoleDevice`.
 */
export interface ConsoleWriter {
  /** Hand the buffered bytes to `sink`; returns the sink's answer (false: it is full now). */
  flushTo(sink: ConsoleSink): boolean;
  /** True while bytes are buffered. */
  readonly hasOutput: boolean;
}

/**
 * Flow control between the VMs' bounded console buffers and one shared host sink (a terminal
 * or pipe): while the sink says it is full (`write` returned false, as a Node stream does past
 * its high-water mark), buffered output waits in the VMs' own buffers, whose writers then
 * block (see `ConsoleDevice.write`); when the sink drains, waiting VMs flush in FIFO order
 * until it is full again. Host memory held is thus at most one sink high-water mark plus one
 * buffer, plus the per-VM buffers — never proportional to what the guests write.
 */
export class ConsoleOutput {
  private readonly waiting = new Set<ConsoleWriter>();
  private ready = true;

  constructor(readonly sink: ConsoleSink) {
    sink.onDrain?.(() => this.drained());
  }

  /** The one `ConsoleOutput` of `sink` (created on first use), so every VM on a sink shares it. */
  static of(sink: ConsoleSink): ConsoleOutput {
    let out = outputs.get(sink);
    if (!out) outputs.set(sink, (out = new ConsoleOutput(sink)));
    return out;
  }

  /** True when the sink is not known to be full. */
  get writable(): boolean {
    return this.ready;
  }

  /** `writer` has buffered bytes: flush them now if the sink has room, else queue it. */
  offer(writer: ConsoleWriter): void {
    if (!this.ready || this.waiting.size > 0) {
      this.waiting.add(writer);
      return;
    }
    this.ready = writer.flushTo(this.sink) !== false;
  }

  /** Flush `writer` whatever the sink's state (its VM is gone; the bytes are already bounded). */
  flushNow(writer: ConsoleWriter): void {
    this.waiting.delete(writer);
    if (writer.hasOutput) this.ready = writer.flushTo(this.sink) !== false && this.ready;
  }

  private drained(): void {
    this.ready = true;
    for (const w of this.waiting) {
      this.waiting.delete(w);
      if (!w.hasOutput) continue;
      this.ready = w.flushTo(this.sink) !== false;
      if (!this.ready) return;
    }
  }
}

const outputs = new WeakMap<ConsoleSink, ConsoleOutput>();
