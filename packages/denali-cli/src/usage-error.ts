/**
 * A bad command line (flag value, flag combination, reference to a VM that is not there):
 * `main` prints its message as one line and exits with status 2, the status commander gives
 * its own usage errors, so every usage error of `denali` exits 2 and every run-time failure 1.
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }

  /**
   * True for a UsageError from any copy of this module: the CLI bundle loads the commands from
   * a second bundle with its own copy of this class, so `instanceof` cannot tell across them.
   */
  static is(e: unknown): e is UsageError {
    return e instanceof Error && e.name === 'UsageError';
  }
}
