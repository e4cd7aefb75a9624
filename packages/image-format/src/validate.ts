/**
 * Validation rules for the `.dni` manifest (`manifest.json`).
 *
 * The same rules guard both directions: `writeImage` refuses to produce an image that
 * `readImage` would reject. The rules encode the guest-physical memory map of `abi.ts`:
 * the VMM loads an image much like an OS loads a process (Denali paper, section 3.1.2: no
 * BIOS, no virtual MMU, one flat guest-physical address space), so every segment must sit in
 * ordinary RAM at or above `LAYOUT.IMAGE_BASE`, below the stack at the top of memory, and
 * must not overlap another segment.
 */

import { ABI_VERSION, ARCH_ID, LAYOUT, PAGE_SIZE } from './abi.js';
import { ImageError } from './errors.js';
import { FORMAT_VERSION } from './manifest.js';
import type { Manifest, SegmentFlags, SegmentManifest } from './manifest.js';

/**
 * Size and count limits, checked before anything is allocated. All sizes in bytes.
 */
export const IMAGE_LIMITS = {
  /** Largest `.dni` archive accepted or produced: guest memory plus 1 MiB for headers and manifest. */
  MAX_IMAGE_BYTES: LAYOUT.MAX_MEMORY + 1024 * 1024,
  /** Most segments one image may have. */
  MAX_SEGMENTS: 64,
  /** Most entries the archive may hold (the manifest plus one file per segment). */
  MAX_ENTRIES: 64 + 1,
  /** Largest `manifest.json` accepted. */
  MAX_MANIFEST_BYTES: 1024 * 1024,
  /** Most default boot arguments (their total size is bounded by `LAYOUT.BOOTARGS_MAX` too). */
  MAX_ARGS: 256,
} as const;

/** The four allowed segment flag strings (`SegmentFlags`). */
export const SEGMENT_FLAGS: readonly SegmentFlags[] = ['r', 'rw', 'rx', 'rwx'];

/** Service names: 1–64 chars of `[A-Za-z0-9._-]`, not starting with `.` or `-`. */
const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

const MANIFEST_KEYS = [
  'formatVersion',
  'name',
  'architecture',
  'abiVersion',
  'entryPoint',
  'memorySize',
  'stackSize',
  'args',
  'segments',
] as const;
const SEGMENT_KEYS = ['file', 'loadAddress', 'fileSize', 'memorySize', 'flags', 'sha256'] as const;

/** The archive path of segment `index`: `segments/<index>.bin`. */
export function segmentFileName(index: number): string {
  return `segments/${index}.bin`;
}

/** `0x`-prefixed, at least 8 hex digits: how addresses appear in messages. */
export function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/**
 * Bytes the boot arguments occupy in the boot-argument area (`LAYOUT.BOOTARGS_BASE`):
 * argv[0] (the service name) and every argument, each UTF-8 encoded and NUL-terminated.
 */
export function bootArgsBytes(name: string, args: readonly string[]): number {
  let total = Buffer.byteLength(name, 'utf8') + 1;
  for (const a of args) total += Buffer.byteLength(a, 'utf8') + 1;
  return total;
}

/**
 * Checks a parsed `manifest.json` value against every rule and returns a fresh `Manifest`
 * with keys in the canonical order (so it serializes stably).
 *
 * A missing `stackSize` means `LAYOUT.DEFAULT_STACK_SIZE` (abi.ts); every other field is
 * required, and unknown fields are rejected.
 *
 * @param value anything (typically the result of `JSON.parse`).
 * @throws ImageError `bad-json` (not an object), `bad-field`, `unknown-version`,
 *   `unknown-architecture`, `abi-mismatch`, `reserved-region`, `outside-memory`, `overlap`,
 *   `too-large` (too many segments or args, boot arguments beyond `LAYOUT.BOOTARGS_MAX`).
 */
export function validateManifest(value: unknown): Manifest {
  if (!isRecord(value)) {
    throw new ImageError('bad-json', '', 'manifest.json must hold a JSON object');
  }
  const m = value;

  // Version, architecture and ABI first: a manifest from a newer format may legitimately
  // have fields this reader does not know, and the version error is the useful one.
  const formatVersion = requireInteger(m, 'formatVersion', 'formatVersion');
  if (formatVersion !== FORMAT_VERSION) {
    throw new ImageError(
      'unknown-version',
      'formatVersion',
      `format version ${formatVersion} is not supported (this reader knows version ${FORMAT_VERSION})`,
    );
  }
  const architecture = requireString(m, 'architecture', 'architecture');
  if (architecture !== ARCH_ID) {
    throw new ImageError(
      'unknown-architecture',
      'architecture',
      `architecture ${JSON.stringify(architecture)} is not supported (expected ${JSON.stringify(ARCH_ID)})`,
    );
  }
  const abiVersion = requireInteger(m, 'abiVersion', 'abiVersion');
  if (abiVersion !== ABI_VERSION) {
    throw new ImageError(
      'abi-mismatch',
      'abiVersion',
      `image built for guest ABI ${abiVersion}, but this toolchain implements ABI ${ABI_VERSION}`,
    );
  }
  rejectUnknownKeys(m, MANIFEST_KEYS, '');

  const name = requireString(m, 'name', 'name');
  if (!NAME_RE.test(name)) {
    throw new ImageError(
      'bad-field',
      'name',
      `${JSON.stringify(name)} is not a valid service name (1-64 chars of [A-Za-z0-9._-], not starting with '.' or '-')`,
    );
  }

  const memorySize = requireInteger(m, 'memorySize', 'memorySize');
  if (memorySize % PAGE_SIZE !== 0) {
    throw new ImageError('bad-field', 'memorySize', `${memorySize} bytes is not a multiple of the page size (${PAGE_SIZE})`);
  }
  if (memorySize < LAYOUT.MIN_MEMORY || memorySize > LAYOUT.MAX_MEMORY) {
    throw new ImageError(
      'bad-field',
      'memorySize',
      `${memorySize} bytes is outside the allowed range [${LAYOUT.MIN_MEMORY}, ${LAYOUT.MAX_MEMORY}]`,
    );
  }

  const stackSize = isMissing(m, 'stackSize') ? LAYOUT.DEFAULT_STACK_SIZE : requireInteger(m, 'stackSize', 'stackSize');
  if (stackSize === 0 || stackSize % PAGE_SIZE !== 0) {
    throw new ImageError('bad-field', 'stackSize', `${stackSize} bytes is not a positive multiple of the page size (${PAGE_SIZE})`);
  }
  const maxStack = memorySize - LAYOUT.IMAGE_BASE;
  if (stackSize > maxStack) {
    throw new ImageError(
      'bad-field',
      'stackSize',
      `${stackSize} bytes does not fit between the image base ${hex(LAYOUT.IMAGE_BASE)} and the top of memory (at most ${maxStack})`,
    );
  }

  const args = validateArgs(m, name);
  const imageTop = memorySize - stackSize;
  const segments = validateSegments(m, imageTop);

  const entryPoint = requireInteger(m, 'entryPoint', 'entryPoint');
  const inExec = segments.some(
    (s) => s.flags.includes('x') && entryPoint >= s.loadAddress && entryPoint < s.loadAddress + s.memorySize,
  );
  if (!inExec) {
    throw new ImageError('bad-field', 'entryPoint', `entry point ${hex(entryPoint)} is not inside an executable ('x') segment`);
  }

  return { formatVersion, name, architecture, abiVersion, entryPoint, memorySize, stackSize, args, segments };
}

function validateArgs(m: Record<string, unknown>, name: string): string[] {
  if (isMissing(m, 'args')) throw missing('args');
  const raw = m['args'];
  if (!Array.isArray(raw)) throw new ImageError('bad-field', 'args', `must be an array of strings, got ${describeType(raw)}`);
  if (raw.length > IMAGE_LIMITS.MAX_ARGS) {
    throw new ImageError('too-large', 'args', `${raw.length} arguments; at most ${IMAGE_LIMITS.MAX_ARGS} are allowed`);
  }
  const args: string[] = [];
  raw.forEach((a: unknown, i: number) => {
    if (typeof a !== 'string') throw new ImageError('bad-field', `args[${i}]`, `must be a string, got ${describeType(a)}`);
    if (a.includes('\0')) throw new ImageError('bad-field', `args[${i}]`, 'must not contain a NUL character');
    args.push(a);
  });
  const used = bootArgsBytes(name, args);
  if (used > LAYOUT.BOOTARGS_MAX) {
    throw new ImageError(
      'too-large',
      'args',
      `boot arguments take ${used} bytes (name and args, NUL-terminated); the boot-argument area holds ${LAYOUT.BOOTARGS_MAX}`,
    );
  }
  return args;
}

function validateSegments(m: Record<string, unknown>, imageTop: number): SegmentManifest[] {
  if (isMissing(m, 'segments')) throw missing('segments');
  const raw = m['segments'];
  if (!Array.isArray(raw)) throw new ImageError('bad-field', 'segments', `must be an array, got ${describeType(raw)}`);
  if (raw.length > IMAGE_LIMITS.MAX_SEGMENTS) {
    throw new ImageError('too-large', 'segments', `${raw.length} segments; at most ${IMAGE_LIMITS.MAX_SEGMENTS} are allowed`);
  }
  if (raw.length === 0) throw new ImageError('bad-field', 'segments', 'an image needs at least one segment');

  const segments: SegmentManifest[] = raw.map((s: unknown, i: number) => validateSegment(s, i, imageTop));

  // Overlap: sort by start; since every start is page-aligned, byte ranges and page ranges agree.
  const order = segments.map((_, i) => i).sort((a, b) => segments[a]!.loadAddress - segments[b]!.loadAddress || a - b);
  for (let k = 1; k < order.length; k++) {
    const prev = order[k - 1]!;
    const cur = order[k]!;
    const p = segments[prev]!;
    const c = segments[cur]!;
    if (c.loadAddress < p.loadAddress + p.memorySize) {
      throw new ImageError(
        'overlap',
        `segments[${cur}].loadAddress`,
        `segment ${cur} [${hex(c.loadAddress)}, ${hex(c.loadAddress + c.memorySize)}) overlaps segment ${prev} [${hex(p.loadAddress)}, ${hex(p.loadAddress + p.memorySize)})`,
      );
    }
  }
  return segments;
}

function validateSegment(s: unknown, i: number, imageTop: number): SegmentManifest {
  const at = `segments[${i}]`;
  if (!isRecord(s)) throw new ImageError('bad-field', at, `must be an object, got ${describeType(s)}`);
  rejectUnknownKeys(s, SEGMENT_KEYS, at);

  const file = requireString(s, 'file', `${at}.file`);
  const expected = segmentFileName(i);
  if (file !== expected) {
    throw new ImageError('bad-field', `${at}.file`, `${JSON.stringify(file)} must be ${JSON.stringify(expected)}`);
  }

  const loadAddress = requireInteger(s, 'loadAddress', `${at}.loadAddress`);
  if (loadAddress % PAGE_SIZE !== 0) {
    throw new ImageError('bad-field', `${at}.loadAddress`, `${hex(loadAddress)} is not page-aligned (${PAGE_SIZE} bytes)`);
  }
  if (loadAddress < LAYOUT.IMAGE_BASE) {
    throw new ImageError(
      'reserved-region',
      `${at}.loadAddress`,
      `${hex(loadAddress)} is below the image base ${hex(LAYOUT.IMAGE_BASE)} (low memory is reserved for the null page, virtual registers and boot data)`,
    );
  }
  if (loadAddress >= imageTop) {
    throw new ImageError(
      'outside-memory',
      `${at}.loadAddress`,
      `${hex(loadAddress)} is not below the stack at ${hex(imageTop)} (memorySize - stackSize)`,
    );
  }

  const memorySize = requireInteger(s, 'memorySize', `${at}.memorySize`);
  if (memorySize === 0) throw new ImageError('bad-field', `${at}.memorySize`, 'a segment must occupy at least one byte');
  if (loadAddress + memorySize > imageTop) {
    throw new ImageError(
      'outside-memory',
      `${at}.memorySize`,
      `segment [${hex(loadAddress)}, ${hex(loadAddress + memorySize)}) extends past ${hex(imageTop)}, where the stack begins (memorySize - stackSize)`,
    );
  }

  const fileSize = requireInteger(s, 'fileSize', `${at}.fileSize`);
  if (fileSize > memorySize) {
    throw new ImageError('bad-field', `${at}.fileSize`, `${fileSize} bytes is larger than the segment's memorySize (${memorySize})`);
  }

  const flags = requireString(s, 'flags', `${at}.flags`);
  if (!(SEGMENT_FLAGS as readonly string[]).includes(flags)) {
    throw new ImageError('bad-field', `${at}.flags`, `${JSON.stringify(flags)} is not one of ${SEGMENT_FLAGS.map((f) => `"${f}"`).join(', ')}`);
  }

  const sha256 = requireString(s, 'sha256', `${at}.sha256`);
  if (!SHA256_RE.test(sha256)) {
    throw new ImageError('bad-field', `${at}.sha256`, 'must be 64 lowercase hex digits');
  }

  return { file, loadAddress, fileSize, memorySize, flags: flags as SegmentFlags, sha256 };
}

// ---- small helpers ----

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isMissing(obj: Record<string, unknown>, key: string): boolean {
  return !Object.prototype.hasOwnProperty.call(obj, key) || obj[key] === undefined;
}

function missing(field: string): ImageError {
  return new ImageError('bad-field', field, 'required field is missing');
}

function rejectUnknownKeys(obj: Record<string, unknown>, known: readonly string[], at: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      const field = at === '' ? key : `${at}.${key}`;
      throw new ImageError('bad-field', field, 'unknown field');
    }
  }
}

/** A non-negative safe integer, or a `bad-field` error. */
function requireInteger(obj: Record<string, unknown>, key: string, field: string): number {
  if (isMissing(obj, key)) throw missing(field);
  const v = obj[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new ImageError('bad-field', field, `must be a non-negative integer, got ${describeValue(v)}`);
  }
  return v;
}

function requireString(obj: Record<string, unknown>, key: string, field: string): string {
  if (isMissing(obj, key)) throw missing(field);
  const v = obj[key];
  if (typeof v !== 'string') throw new ImageError('bad-field', field, `must be a string, got ${describeType(v)}`);
  return v;
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function describeValue(v: unknown): string {
  return typeof v === 'number' ? String(v) : describeType(v);
}
