/**
 * `denali.json`: the description of one service, read by `buildService`.
 *
 * ```json
 * {
 *   "name": "hello",                 // required: service name, 1-64 chars of [A-Za-z0-9._-]
 *   "sources": ["main.c", "asm.S"],  // required: .c / .S / .s files, relative to the directory
 *   "memory": "16M",                 // optional: guest memory, "512K" / "16M" / "1G" or bytes; default 16M
 *   "stack": "256K",                 // optional: main thread's stack; default 256K
 *   "cflags": ["-DNDEBUG"],          // optional: extra compiler flags for the service's sources
 *   "args": ["100"],                 // optional: default boot arguments (argv[1..])
 *   "assets": "www"                  // optional: directory packed into the image (src/assets.ts);
 *                                    //   default "assets" if that directory exists; false: none
 * }
 * ```
 * Unknown fields are rejected so that typos do not go unnoticed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { LAYOUT, PAGE_SIZE, bootArgsBytes, parseSize } from '@denali/image-format';
import { BuildError } from './errors.js';

/** The file name of a service description inside its directory. */
export const SERVICE_FILE = 'denali.json';
/** Default guest memory size, in bytes (16 MiB). */
export const DEFAULT_MEMORY = 16 * 1024 * 1024;

/** A validated `denali.json`; sizes in bytes, source paths absolute. */
export interface ServiceConfig {
  name: string;
  /** Absolute paths of the sources, in the order given. */
  sources: string[];
  memory: number;
  stack: number;
  cflags: string[];
  args: string[];
  /**
   * Absolute path of the directory whose files are packed into the image (read-only, via
   * `ilwaco/assets.h`), or undefined for none.
   */
  assets?: string;
}

/** The assets directory used when denali.json has no `assets` field and it exists. */
export const DEFAULT_ASSETS_DIR = 'assets';

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
const KNOWN = ['name', 'sources', 'memory', 'stack', 'cflags', 'args', 'assets'];
const SOURCE_RE = /\.(c|S|s)$/;

function fail(msg: string): never {
  throw new BuildError(`${SERVICE_FILE}: ${msg}`);
}

function stringArray(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) fail(`'${field}' must be an array of strings`);
  return v.map((s, i) => {
    if (typeof s !== 'string') fail(`'${field}[${i}]' must be a string`);
    return s;
  });
}

function size(v: unknown, field: string): number {
  if (typeof v !== 'string' && typeof v !== 'number') fail(`'${field}' must be a size such as "16M" or a number of bytes`);
  let bytes: number;
  try {
    bytes = parseSize(v);
  } catch {
    fail(`'${field}' is not a size: ${JSON.stringify(v)} (examples: "16M", "512K", "1G", 1048576)`);
  }
  if (bytes % PAGE_SIZE !== 0) fail(`'${field}' (${bytes} bytes) must be a multiple of the page size (${PAGE_SIZE})`);
  return bytes;
}

/**
 * The `assets` field: a directory relative to the service directory (must exist), `false`
 * for none, or absent: `assets/` when that directory exists.
 */
function assetsDir(v: unknown, dir: string): string | undefined {
  if (v === false) return undefined;
  if (v === undefined) {
    const p = resolve(dir, DEFAULT_ASSETS_DIR);
    return existsSync(p) && statSync(p).isDirectory() ? p : undefined;
  }
  if (typeof v !== 'string' || v === '') fail(`'assets' must be a directory path relative to the service directory, or false`);
  if (isAbsolute(v)) fail(`'assets' (${v}) must be relative to the service directory`);
  const p = resolve(dir, v);
  if (!existsSync(p) || !statSync(p).isDirectory()) fail(`'assets': directory not found: ${v}`);
  return p;
}

/**
 * Check a parsed `denali.json` value. `dir` is the service directory (for source paths).
 * @throws BuildError, one line: "denali.json: <field>: <problem>".
 */
export function validateServiceConfig(value: unknown, dir: string): ServiceConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('must hold a JSON object');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!KNOWN.includes(k)) fail(`unknown field '${k}' (known: ${KNOWN.join(', ')})`);
  }
  if (v.name === undefined) fail(`missing field 'name'`);
  if (typeof v.name !== 'string' || !NAME_RE.test(v.name)) {
    fail(`'name' must be 1-64 characters of [A-Za-z0-9._-], not starting with '.' or '-' (got ${JSON.stringify(v.name)})`);
  }
  const name = v.name;
  if (v.sources === undefined) fail(`missing field 'sources'`);
  const rel = stringArray(v.sources, 'sources');
  if (rel.length === 0) fail(`'sources' must name at least one .c or .S file`);
  const sources = rel.map((s, i) => {
    if (!SOURCE_RE.test(s)) fail(`'sources[${i}]' (${s}) must end in .c, .S or .s`);
    if (isAbsolute(s)) fail(`'sources[${i}]' (${s}) must be relative to the service directory`);
    const p = resolve(dir, s);
    if (!existsSync(p) || !statSync(p).isFile()) fail(`'sources[${i}]': file not found: ${s}`);
    return p;
  });
  const memory = v.memory === undefined ? DEFAULT_MEMORY : size(v.memory, 'memory');
  if (memory < LAYOUT.MIN_MEMORY || memory > LAYOUT.MAX_MEMORY) {
    fail(`'memory' (${memory} bytes) must be between ${LAYOUT.MIN_MEMORY / 1024 / 1024}M and ${LAYOUT.MAX_MEMORY / 1024 / 1024 / 1024}G`);
  }
  const stack = v.stack === undefined ? LAYOUT.DEFAULT_STACK_SIZE : size(v.stack, 'stack');
  if (stack === 0) fail(`'stack' must not be 0`);
  if (stack > memory - LAYOUT.IMAGE_BASE - PAGE_SIZE) fail(`'stack' (${stack} bytes) does not fit in 'memory' (${memory} bytes) above the image`);
  const cflags = v.cflags === undefined ? [] : stringArray(v.cflags, 'cflags');
  const args = v.args === undefined ? [] : stringArray(v.args, 'args');
  const argBytes = bootArgsBytes(name, args);
  if (argBytes > LAYOUT.BOOTARGS_MAX) fail(`'args' take ${argBytes} bytes with the name; at most ${LAYOUT.BOOTARGS_MAX} fit`);
  const assets = assetsDir(v.assets, dir);
  return { name, sources, memory, stack, cflags, args, ...(assets === undefined ? {} : { assets }) };
}

/**
 * Read and validate `<dir>/denali.json`.
 * @throws BuildError if the directory or file is missing, the JSON is malformed, or a field is bad.
 */
export function loadServiceConfig(dir: string): ServiceConfig {
  const absDir = resolve(dir);
  if (!existsSync(absDir) || !statSync(absDir).isDirectory()) throw new BuildError(`service directory not found: ${dir}`);
  const file = join(absDir, SERVICE_FILE);
  if (!existsSync(file)) throw new BuildError(`no ${SERVICE_FILE} in ${dir}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`invalid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  return validateServiceConfig(parsed, absDir);
}
