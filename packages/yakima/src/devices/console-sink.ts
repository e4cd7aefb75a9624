import type { ConsoleSink } from './console.js';

/**
 * Console output to a host stream. With one VM the guest's bytes pass through untouched;
 * with several, each complete line is prefixed with the VM's name (`hello-2 | text`) and a
 * VM's unfinished line is held back until its newline or its exit, so lines never interleave.
 */
export class StreamConsoleSink implements ConsoleSink {
  private readonly partial = new Map<string, Buffer>();

  constructor(
    private readonly out: NodeJS.WritableStream,
    /** Prefix lines with the VM name (use when more than one VM runs). */
    private readonly prefix: boolean,
  ) {}

  write(vmName: string, bytes: Uint8Array): void {
    if (!this.prefix) {
      this.out.write(bytes);
      return;
    }
    let buf = Buffer.concat([this.partial.get(vmName) ?? Buffer.alloc(0), bytes]);
    let nl: number;
    const lines: Buffer[] = [];
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      lines.push(Buffer.from(`${vmName} | `), buf.subarray(0, nl + 1));
      buf = buf.subarray(nl + 1);
    }
    if (lines.length > 0) this.out.write(Buffer.concat(lines));
    if (buf.length > 0) this.partial.set(vmName, Buffer.from(buf));
    else this.partial.delete(vmName);
  }

  close(vmName: string): void {
    const rest = this.partial.get(vmName);
    if (rest) {
      this.partial.delete(vmName);
      this.out.write(Buffer.concat([Buffer.from(`${vmName} | `), rest, Buffer.from('\n')]));
    }
  }
}

/** Collects each VM's console output in memory (tests, benchmarks, `denali` library users). */
export class MemoryConsoleSink implements ConsoleSink {
  private readonly chunks = new Map<string, Buffer[]>();
  /** Called on every write with the VM name and the bytes. */
  onWrite?: (vmName: string, bytes: Uint8Array) => void;

  write(vmName: string, bytes: Uint8Array): void {
    let list = this.chunks.get(vmName);
    if (!list) this.chunks.set(vmName, (list = []));
    list.push(Buffer.from(bytes));
    this.onWrite?.(vmName, bytes);
  }

  close(): void {}

  /** Everything `vmName` wrote, decoded as UTF-8. */
  text(vmName: string): string {
    return Buffer.concat(this.chunks.get(vmName) ?? []).toString('utf8');
  }
}
