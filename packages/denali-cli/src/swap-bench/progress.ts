import cliProgress from 'cli-progress';

/** What a long-running command reports while it works (booting, measuring). */
export interface Progress {
  /** Start a phase: `label` (e.g. "boot 1000 VMs"), `total` units of `unit` (e.g. "VMs", "s"). */
  start(label: string, total: number, unit: string): void;
  /** Units done so far in the current phase, and a short status (e.g. "1,234 req/s"). */
  update(value: number, info?: string): void;
  /** End the current phase (its bar disappears). */
  stop(): void;
  /** A line that stays (a notice), printed above the bar. */
  note(line: string): void;
}

/**
 * A progress bar on a terminal (cli-progress), redrawn in place on stderr; nothing when the
 * stream is not a TTY (pipes, CI, `--json > file`) except the notes.
 */
export class TerminalProgress implements Progress {
  private bar: cliProgress.SingleBar | undefined;
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = stream.isTTY === true;
  }

  start(label: string, total: number, unit: string): void {
    this.stop();
    if (!this.tty) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: '{label} {bar} {value}/{total} {unit} {info}',
        stream: this.stream,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 30,
        fps: 8,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(Math.max(1, total), 0, { label, unit, info: '' });
  }

  update(value: number, info = ''): void {
    this.bar?.update(value, { info });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  note(line: string): void {
    if (this.bar) {
      this.stream.write(`\r\x1b[2K${line}\n`);
      this.bar.render();
    } else {
      this.stream.write(`${line}\n`);
    }
  }
}
