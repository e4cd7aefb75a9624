/** Exit status after a stop signal: 128 + its number (SIGINT 2 → 130, SIGTERM 15 → 143). */
const STATUS: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * SIGINT (Ctrl-C) and SIGTERM for a long-running command: the first one stops it in order
 * (the current `onStop` action: abandon the build, stop booting, stop the VMs); a second one
 * forces an exit at once after `forceCleanup` (which must be synchronous, e.g. removing temp
 * files). Both signals behave the same, so `kill` and a service manager get the same orderly
 * stop as a person at the terminal.
 */
export class StopSignals {
  /** The first signal received, if any. */
  received: 'SIGINT' | 'SIGTERM' | undefined;
  /** What to do on the first signal; replaced as the command moves on (build, boot, run). */
  onStop: (() => void) | undefined;
  /** Resolves on the first signal. */
  readonly stopped: Promise<void>;
  private resolveStopped!: () => void;
  private readonly handlers = new Map<'SIGINT' | 'SIGTERM', () => void>();

  constructor(private readonly forceCleanup: () => void = () => {}) {
    this.stopped = new Promise((r) => (this.resolveStopped = r));
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const h = (): void => this.on(sig);
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
  }

  /** Exit status for the signal received (130 or 143), or undefined. */
  get status(): number | undefined {
    return this.received && STATUS[this.received];
  }

  /** Restore the default signal behaviour. */
  dispose(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
    this.handlers.clear();
  }

  private on(sig: 'SIGINT' | 'SIGTERM'): void {
    if (this.received !== undefined) {
      process.stderr.write(`denali: ${sig} again, exiting now\n`);
      this.forceCleanup();
      process.exit(STATUS[this.received]);
    }
    this.received = sig;
    const what = sig === 'SIGINT' ? 'interrupted' : 'terminated';
    process.stderr.write(`\ndenali: ${what}, stopping (${sig === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again to force)\n`);
    this.resolveStopped();
    this.onStop?.();
  }
}
