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
}
