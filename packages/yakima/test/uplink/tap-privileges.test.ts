import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Runs a child without CAP_NET_ADMIN (setpriv drops it) and checks the one-line error.
const hasSetpriv = (() => {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'pipe' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();
if (!hasSetpriv) console.log('[uplink/tap-privileges] skipped: needs root and setpriv to drop CAP_NET_ADMIN');

describe.skipIf(!hasSetpriv)('--net tap without CAP_NET_ADMIN', () => {
  it('probeTap says why and attachTapUplink fails with one line', () => {
    const script = fileURLToPath(new URL('./tap-noperm-child.ts', import.meta.url));
    const r = spawnSync('setpriv', ['--bounding-set=-net_admin', '--inh-caps=-net_admin', process.execPath, '--import', 'tsx', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^probe: --net tap needs root or CAP_NET_ADMIN \(.*EPERM.*\)$/);
    expect(lines[1]).toMatch(/^error: --net tap needs root or CAP_NET_ADMIN \(.*EPERM.*\)$/);
  });
});
