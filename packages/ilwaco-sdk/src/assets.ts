/**
 * Assets: a service's document tree packed into its image at build time (the paper's web
 * server compiled its document tree into the program, section 4.2.2; Ilwaco has no file
 * system, section 3.4). `denali build` walks the `assets` directory, packs every regular file
 * into one deterministic blob, and links it into the image's read-only segment, where
 * `lib/assets.c` (`include/ilwaco/assets.h`) serves it without copying.
 *
 * Blob format, version 1 (all integers little-endian u32; offsets from the blob's start):
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 8 | magic `"ILWASSET"` |
 * | 8 | 4 | version (1) |
 * | 12 | 4 | count: number of entries |
 * | 16 | 4 | strings offset (= 32 + 16 * count) |
 * | 20 | 4 | strings size in bytes |
 * | 24 | 4 | data offset (16-byte aligned) |
 * | 28 | 4 | total blob size in bytes (16-byte aligned) |
 * | 32 | 16 * count | entries `{pathOffset, pathLength, dataOffset, size}` |
 *
 * Entries are sorted by path, bytewise on UTF-8 (C `strcmp` order), so lookups can bisect.
 * Paths are relative, `/`-separated, without `.`/`..` segments; the string table holds each
 * followed by a NUL (pathLength excludes it). File data starts 16-byte aligned and is padded
 * with zeros to the next multiple of 16. Nothing else (no times, owners, modes) goes in, so the
 * same tree always gives the same bytes.
 */
import { lstatSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { BuildError } from './errors.js';

/** The blob's magic number: the first 8 bytes. */
export const ASSET_MAGIC = 'ILWASSET';
/** The blob format version this SDK writes and reads. */
export const ASSET_VERSION = 1;
/** Largest total size of the files in an assets directory (64 MiB). */
export const MAX_ASSET_BYTES = 64 * 1024 * 1024;
/** Longest asset path in bytes (UTF-8), without the NUL. */
export const MAX_ASSET_PATH = 1024;
/** Size of the fixed header in bytes. */
const HEADER = 32;
/** Size of one entry in bytes. */
const ENTRY = 16;
/** Alignment of every file's data, in bytes. */
const ALIGN = 16;

/** One file found in an assets directory. */
export interface AssetFile {
  /** Path relative to the assets directory, `/`-separated. */
  path: string;
  /** Absolute path of the file to read (after following symlinks). */
  source: string;
  /** Size in bytes. */
  size: number;
}

/** One asset as read back from a blob. */
export interface AssetEntry {
  path: string;
  /** The file's bytes (a view into the blob). */
  data: Uint8Array;
}

/** Options of {@link collectAssets} and {@link packAssets}. */
export interface AssetOptions {
  /** Limit on the total size of the files, in bytes; default {@link MAX_ASSET_BYTES}. */
  maxBytes?: number;
}

const align = (n: number): number => (n + ALIGN - 1) & ~(ALIGN - 1);

function inside(root: string, p: string): boolean {
  const r = relative(root, p);
  return !isAbsolute(r) && r !== '..' && !r.startsWith(`..${sep}`);
}

/**
 * List the regular files under `dir`, sorted by path (bytewise, UTF-8).
 *
 * Symlinks are followed when their target lies inside `dir` (a link to a directory is walked
 * as that directory; a cycle is an error). Sockets, FIFOs and devices are skipped.
 * @throws BuildError (one line, naming the file) for a symlink that leads outside the tree or
 *   nowhere, a symlink cycle, a path longer than {@link MAX_ASSET_PATH} bytes or holding a NUL
 *   or backslash, or files totalling more than `maxBytes` (checked from their sizes before
 *   anything is read).
 */
export function collectAssets(dir: string, opts: AssetOptions = {}): AssetFile[] {
  const maxBytes = opts.maxBytes ?? MAX_ASSET_BYTES;
  let root: string;
  try {
    root = realpathSync(dir);
  } catch {
    throw new BuildError(`assets directory not found: ${dir}`);
  }
  if (!statSync(root).isDirectory()) throw new BuildError(`assets: not a directory: ${dir}`);
  const files: AssetFile[] = [];
  let total = 0;

  const walk = (real: string, rel: string, active: Set<string>): void => {
    for (const name of readdirSync(real).sort()) {
      const relPath = rel === '' ? name : `${rel}/${name}`;
      const shown = `${dir}/${relPath}`;
      if (name.includes('\\') || name.includes('\0')) throw new BuildError(`assets: unsupported file name (backslash or NUL): ${shown}`);
      let full = join(real, name);
      let st = lstatSync(full);
      if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(full);
        } catch {
          throw new BuildError(`assets: broken symlink: ${shown}`);
        }
        if (!inside(root, target)) throw new BuildError(`assets: symlink points outside the assets directory: ${shown}`);
        full = target;
        st = statSync(full);
      }
      if (st.isDirectory()) {
        if (active.has(full)) throw new BuildError(`assets: symlink cycle at ${shown}`);
        active.add(full);
        walk(full, relPath, active);
        active.delete(full);
      } else if (st.isFile()) {
        if (Buffer.byteLength(relPath) > MAX_ASSET_PATH) throw new BuildError(`assets: path longer than ${MAX_ASSET_PATH} bytes: ${shown}`);
        total += st.size;
        if (total > maxBytes) {
          throw new BuildError(`assets: ${dir} holds more than ${maxBytes} bytes (${maxBytes / 1024 / 1024} MiB), the limit for an image's assets`);
        }
        files.push({ path: relPath, source: full, size: st.size });
      }
    }
  };
  walk(root, '', new Set([root]));
  const keyed = files.map((f) => ({ f, k: Buffer.from(f.path, 'utf8') }));
  keyed.sort((a, b) => Buffer.compare(a.k, b.k));
  return keyed.map((x) => x.f);
}

/**
 * Pack files into a blob (format in this module's comment). `files` need not be sorted.
 * @throws BuildError if a file cannot be read or changed size since it was listed.
 */
export function packAssetFiles(files: AssetFile[]): Buffer {
  const sorted = files.map((f) => ({ f, k: Buffer.from(f.path, 'utf8') })).sort((a, b) => Buffer.compare(a.k, b.k));
  const count = sorted.length;
  const stringsOffset = HEADER + ENTRY * count;
  const stringsSize = sorted.reduce((n, x) => n + x.k.length + 1, 0);
  const dataOffset = align(stringsOffset + stringsSize);
  const datas = sorted.map(({ f }) => {
    let d: Buffer;
    try {
      d = readFileSync(f.source);
    } catch (e) {
      throw new BuildError(`assets: cannot read ${f.source}: ${(e as Error).message.split('\n')[0]}`, { cause: e });
    }
    if (d.length !== f.size) throw new BuildError(`assets: ${f.source} changed while being packed`);
    return d;
  });
  let total = dataOffset;
  for (const d of datas) total += align(d.length);
  if (total > 0xffffffff) throw new BuildError('assets: blob larger than 4 GiB');
  const blob = Buffer.alloc(total);
  blob.write(ASSET_MAGIC, 0, 'latin1');
  blob.writeUInt32LE(ASSET_VERSION, 8);
  blob.writeUInt32LE(count, 12);
  blob.writeUInt32LE(stringsOffset, 16);
  blob.writeUInt32LE(stringsSize, 20);
  blob.writeUInt32LE(dataOffset, 24);
  blob.writeUInt32LE(total, 28);
  let str = stringsOffset;
  let data = dataOffset;
  sorted.forEach(({ k }, i) => {
    const e = HEADER + ENTRY * i;
    const d = datas[i]!;
    blob.writeUInt32LE(str, e);
    blob.writeUInt32LE(k.length, e + 4);
    blob.writeUInt32LE(data, e + 8);
    blob.writeUInt32LE(d.length, e + 12);
    k.copy(blob, str);
    str += k.length + 1;
    d.copy(blob, data);
    data += align(d.length);
  });
  return blob;
}

/** {@link collectAssets} then {@link packAssetFiles}: the blob for directory `dir`. */
export function packAssets(dir: string, opts: AssetOptions = {}): Buffer {
  return packAssetFiles(collectAssets(dir, opts));
}

/**
 * Read a blob back, validating every offset (for tools such as `denali inspect`, and tests).
 * @throws Error with a one-line reason when the blob is malformed.
 */
export function readAssetBlob(blob: Uint8Array): AssetEntry[] {
  const b = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const bad = (why: string): never => {
    throw new Error(`asset blob: ${why}`);
  };
  if (b.length < HEADER || b.toString('latin1', 0, 8) !== ASSET_MAGIC) bad('bad magic');
  if (b.readUInt32LE(8) !== ASSET_VERSION) bad(`unsupported version ${b.readUInt32LE(8)}`);
  const count = b.readUInt32LE(12);
  const stringsOffset = b.readUInt32LE(16);
  const stringsSize = b.readUInt32LE(20);
  const dataOffset = b.readUInt32LE(24);
  const total = b.readUInt32LE(28);
  if (total !== b.length) bad(`size field ${total} != blob size ${b.length}`);
  if (stringsOffset !== HEADER + ENTRY * count || stringsOffset + stringsSize > dataOffset || dataOffset > total) bad('bad table offsets');
  const out: AssetEntry[] = [];
  let prev: Buffer | undefined;
  for (let i = 0; i < count; i++) {
    const e = HEADER + ENTRY * i;
    const [po, pl, dof, size] = [b.readUInt32LE(e), b.readUInt32LE(e + 4), b.readUInt32LE(e + 8), b.readUInt32LE(e + 12)];
    if (po < stringsOffset || po + pl >= stringsOffset + stringsSize || b[po + pl] !== 0) bad(`entry ${i}: bad path`);
    if (dof < dataOffset || dof % ALIGN !== 0 || dof + size > total) bad(`entry ${i}: bad data range`);
    const k = b.subarray(po, po + pl);
    if (prev && Buffer.compare(prev, k) >= 0) bad(`entry ${i}: paths not sorted`);
    prev = k;
    out.push({ path: k.toString('utf8'), data: b.subarray(dof, dof + size) });
  }
  return out;
}

/** Quote a path for a GNU as string literal. */
function asString(p: string): string {
  return `"${p.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n')}"`;
}

/**
 * Assembly source that puts the blob at `blobPath` into the read-only section
 * `.rodata.ilwaco_assets` (16-byte aligned) between the symbols `__ilwaco_assets_start` and
 * `__ilwaco_assets_end`, which `lib/assets.c` declares weak (absent = no assets). The same
 * source assembles for i386 (guest) and x86-64 (the native baseline).
 */
export function assetsAssembly(blobPath: string): string {
  return [
    '/* Generated by @denali/ilwaco-sdk (src/assets.ts): the service\'s assets blob. */',
    '\t.section .rodata.ilwaco_assets,"a",@progbits',
    '\t.balign 16',
    '\t.globl __ilwaco_assets_start',
    '\t.globl __ilwaco_assets_end',
    '__ilwaco_assets_start:',
    `\t.incbin ${asString(blobPath)}`,
    '__ilwaco_assets_end:',
    '\t.section .note.GNU-stack,"",@progbits',
    '',
  ].join('\n');
}
