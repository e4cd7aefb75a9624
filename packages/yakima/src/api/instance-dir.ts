import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** Instance names: what Docker accepts for container names, bounded so socket paths fit (108 bytes). */
export const INSTANCE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,47}$/;

/** Suffix of a control socket file. */
const SOCKET_SUFFIX = '.sock';

/**
 * The directory holding this user's control sockets, created mode 0700 if missing:
 * `$DENALI_RUNTIME_DIR` (tests), else `$XDG_RUNTIME_DIR/denali`, else `<tmpdir>/denali-<uid>`.
 * @throws Error when the directory exists but belongs to another user or is open to others
 *   (someone could plant a socket there).
 */
export function runtimeDir(): string {
  const dir =
    process.env.DENALI_RUNTIME_DIR ||
    (process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'denali') : join(tmpdir(), `denali-${userInfo().uid}`));
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(code === 'EEXIST' || code === 'ENOTDIR' ? `control socket directory ${dir} is not a directory` : `cannot make control socket directory ${dir}: ${(e as Error).message}`);
  }
  const st = lstatSync(dir);
  const uid = process.getuid?.();
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  if (uid !== undefined && st.uid !== uid) throw new Error(`${dir} belongs to another user; set XDG_RUNTIME_DIR`);
  if ((st.mode & 0o077) !== 0) throw new Error(`${dir} is open to other users (mode ${(st.mode & 0o777).toString(8)}); chmod 700 it`);
  return dir;
}

/** Path of the control socket of instance `name`. @throws Error for a name outside `INSTANCE_NAME`. */
export function socketPath(name: string): string {
  checkInstanceName(name);
  return join(runtimeDir(), name + SOCKET_SUFFIX);
}

/** @throws Error naming the problem when `name` is not a valid instance name. */
export function checkInstanceName(name: string): void {
  if (!INSTANCE_NAME.test(name)) {
    throw new Error(`bad instance name '${name}': use 1-48 letters, digits, '_', '.', '-', starting with a letter or digit`);
  }
}

/** Names of the instances that have a socket file here (some may be stale: check by connecting). */
export function listSocketNames(): string[] {
  return readdirSync(runtimeDir())
    .filter((f) => f.endsWith(SOCKET_SUFFIX))
    .map((f) => f.slice(0, -SOCKET_SUFFIX.length))
    .filter((n) => INSTANCE_NAME.test(n))
    .sort();
}

const ADJECTIVES = ['brisk', 'calm', 'eager', 'fond', 'keen', 'lucid', 'mellow', 'nimble', 'quiet', 'sunny', 'swift', 'tidy'];
const PEAKS = ['denali', 'rainier', 'shasta', 'hood', 'baker', 'adams', 'olympus', 'whitney', 'foraker', 'hunter', 'logan', 'elias'];

/** A fresh instance name like `swift-rainier-3f2a` (docker-style: readable, unlikely to collide). */
export function generateInstanceName(): string {
  const r = randomBytes(4);
  return `${ADJECTIVES[r[0]! % ADJECTIVES.length]}-${PEAKS[r[1]! % PEAKS.length]}-${r.readUInt16LE(2).toString(16).padStart(4, '0')}`;
}
