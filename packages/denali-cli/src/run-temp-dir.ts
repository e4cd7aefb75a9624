import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A private temporary directory for one `denali run` (built images, compiler intermediates)
 * that no way of stopping leaves behind: `remove()` on the normal path and on Ctrl-C/SIGTERM;
 * and for SIGKILL or a crash, a detached watcher (`sh`) that holds the read end of a pipe
 * from this process and removes the directory when the pipe closes — the kernel closes it
 * whenever this process ends, however it ends.
 */
export class RunTempDir {
  readonly path: string;
  private watcher: ChildProcess | undefined;
  private removed = false;

  /** @throws Error from mkdir (e.g. no space, no permission on the temp dir, EEXIST by a 2^-48 chance). */
  constructor(prefix = 'denali-run-') {
    // The watcher starts before the directory exists, so a SIGKILL at any moment finds
    // either no directory or one that a watcher will remove.
    this.path = join(tmpdir(), prefix + randomBytes(6).toString('base64url'));
    try {
      // `$0` is the directory; `cat` returns when our end of its stdin closes.
      this.watcher = spawn('sh', ['-c', 'cat >/dev/null; rm -rf -- "$0"; sleep 1; rm -rf -- "$0"', this.path], {
        detached: true, // not in our process group: Ctrl-C at the terminal must not kill it first
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      this.watcher.on('error', () => {}); // no sh: the synchronous paths still clean up
      this.watcher.unref();
      (this.watcher.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    } catch {
      this.watcher = undefined;
    }
    mkdirSync(this.path, { mode: 0o700 });
  }

  /** Remove the directory now (synchronous, so it also works from a signal handler). Idempotent. */
  remove(): void {
    if (this.removed) return;
    this.removed = true;
    rmSync(this.path, { recursive: true, force: true, maxRetries: 3 });
    this.watcher?.stdin?.destroy(); // the watcher's rm then finds nothing and it exits
  }
}
