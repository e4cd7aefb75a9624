/**
 * The tar layer of a `.dni` image (POSIX.1-1988 ustar, as specified in the POSIX `pax`
 * utility's "ustar Interchange Format"): 512-byte header blocks, each followed by the entry's
 * data padded to a whole block, and two all-zero blocks marking the end of the archive.
 *
 * Writing and extraction use node-tar (`tar` v7) entirely in memory: entries are built as
 * `tar.ReadEntry` objects and fed to a `tar.Pack`; reading feeds the bytes to a `tar.Parser`.
 * Because node-tar is lenient where an image reader must not be (it ignores a partial last
 * header, a missing end-of-archive marker, and trailing bytes, and it silently decompresses
 * gzip input), every archive is first walked by `scanArchive`, which enforces the strict
 * subset of ustar a `.dni` may use:
 * - only regular-file entries (typeflag `0`), no pax/GNU extension headers, no directories;
 * - valid header checksums and `ustar` magic;
 * - every entry's data and padding present;
 * - the two zero blocks present, and nothing but zero bytes after them.
 */

import { Header, Pack, Parser, ReadEntry } from 'tar';
import { ImageError } from './errors.js';
import { IMAGE_LIMITS } from './validate.js';

/** Size of a tar block, in bytes. */
export const TAR_BLOCK = 512;

/** One file of an archive: its path inside the archive and its bytes. */
export interface ArchiveFile {
  path: string;
  data: Uint8Array;
}

/** Where `scanArchive` found an entry: path, byte offset of its data, and data size in bytes. */
export interface ScannedEntry {
  path: string;
  offset: number;
  size: number;
}

/** Fixed metadata of every entry we write, so identical inputs give identical archives. */
const FIXED_MTIME = new Date(0);
const FIXED_MODE = 0o644;

/**
 * Packs files, in the given order, into a deterministic ustar archive.
 *
 * Every header has mode 0644, uid/gid 0, mtime 0 (1970-01-01), empty uname/gname and no pax
 * extension, so the output depends only on the paths and bytes. Paths must be short ASCII
 * (< 100 bytes), which keeps every header plain ustar.
 *
 * @returns the archive bytes, ending with the two zero blocks.
 * @throws ImageError `bad-entry` if a path cannot be stored in a plain ustar header or node-tar
 *   reports a problem; `too-large` if the archive would exceed `IMAGE_LIMITS.MAX_IMAGE_BYTES`.
 */
export async function packArchive(files: readonly ArchiveFile[]): Promise<Uint8Array> {
  let total = 2 * TAR_BLOCK;
  for (const f of files) {
    if (!/^[\x21-\x7e]{1,99}$/.test(f.path)) {
      throw new ImageError('bad-entry', '', `archive path ${JSON.stringify(f.path)} cannot be stored in a ustar header`);
    }
    total += TAR_BLOCK + roundUpBlock(f.data.length);
  }
  if (total > IMAGE_LIMITS.MAX_IMAGE_BYTES) {
    throw new ImageError('too-large', '', `image would be ${total} bytes; the limit is ${IMAGE_LIMITS.MAX_IMAGE_BYTES}`);
  }

  const out = new Uint8Array(total);
  let pos = 0;
  let failure: unknown;
  const pack = new Pack({
    mtime: FIXED_MTIME,
    noDirRecurse: true,
    strict: true,
    onwarn: (code: string, message: string) => {
      failure ??= new Error(`${code}: ${message}`);
    },
  });
  const finished = new Promise<void>((resolve, reject) => {
    pack.on('data', (chunk: Buffer) => {
      if (pos + chunk.length > out.length) {
        failure ??= new Error('node-tar produced more bytes than expected');
        return;
      }
      out.set(chunk, pos);
      pos += chunk.length;
    });
    pack.on('end', () => resolve());
    pack.on('error', (e: unknown) => reject(e));
  });

  try {
    for (const f of files) {
      const header = new Header({
        path: f.path,
        type: 'File',
        size: f.data.length,
        mode: FIXED_MODE,
        uid: 0,
        gid: 0,
        mtime: FIXED_MTIME,
      });
      const entry = new ReadEntry(header);
      pack.add(entry);
      entry.end(Buffer.from(f.data.buffer, f.data.byteOffset, f.data.length));
    }
    pack.end();
    await finished;
  } catch (e) {
    throw new ImageError('bad-entry', '', `node-tar failed to build the archive: ${errorText(e)}`, { cause: e });
  }
  if (failure !== undefined) {
    throw new ImageError('bad-entry', '', `node-tar failed to build the archive: ${errorText(failure)}`, { cause: failure });
  }
  if (pos !== total) {
    throw new ImageError('bad-entry', '', `node-tar produced ${pos} bytes, expected ${total}`);
  }
  return out;
}

/**
 * Walks the archive's headers without copying any data and checks its structure strictly
 * (see the module comment). Returns the entries in archive order.
 *
 * @throws ImageError `not-tar`, `truncated`, `bad-entry`, `too-large` (more than
 *   `IMAGE_LIMITS.MAX_ENTRIES` entries), `extra-file` (a path appears twice).
 */
export function scanArchive(bytes: Uint8Array): ScannedEntry[] {
  const len = bytes.length;
  if (len === 0) throw new ImageError('not-tar', '', 'input is empty, not a tar archive');
  if (len > IMAGE_LIMITS.MAX_IMAGE_BYTES) {
    throw new ImageError('too-large', '', `image is ${len} bytes; the limit is ${IMAGE_LIMITS.MAX_IMAGE_BYTES}`);
  }
  if (len >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    throw new ImageError('not-tar', '', 'input is gzip-compressed; a .dni image is an uncompressed tar archive');
  }
  if (len >= 4 && bytes[0] === 0x28 && bytes[1] === 0xb5 && bytes[2] === 0x2f && bytes[3] === 0xfd) {
    throw new ImageError('not-tar', '', 'input is zstd-compressed; a .dni image is an uncompressed tar archive');
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, len);
  if (len < TAR_BLOCK) {
    // Either a tar archive cut inside its first header, or something else entirely.
    if (len >= 263 && hasUstarMagic(buf, 0)) {
      throw new ImageError('truncated', '', `archive is only ${len} bytes, it ends inside its first header`);
    }
    throw new ImageError('not-tar', '', `input is ${len} bytes, shorter than one tar header (${TAR_BLOCK}), not a tar archive`);
  }

  const entries: ScannedEntry[] = [];
  const seen = new Set<string>();
  let off = 0;
  for (;;) {
    if (off === len) {
      throw new ImageError('truncated', '', `archive ends at byte ${off} without the end-of-archive marker (two zero blocks)`);
    }
    if (off + TAR_BLOCK > len) {
      const where = isZero(buf, off, len) ? 'inside the end-of-archive marker' : `inside the header block at byte ${off}`;
      throw new ImageError('truncated', '', `archive ends at byte ${len}, ${where}`);
    }
    if (isZero(buf, off, off + TAR_BLOCK)) {
      if (off + 2 * TAR_BLOCK > len) {
        throw new ImageError('truncated', '', `archive ends at byte ${len}, inside the end-of-archive marker (two zero blocks)`);
      }
      if (!isZero(buf, off + TAR_BLOCK, off + 2 * TAR_BLOCK)) {
        throw new ImageError('bad-entry', '', `lone zero block at byte ${off} followed by more data`);
      }
      // Padding after the marker (e.g. to a 10240-byte record) must be zeros only.
      if (!isZero(buf, off + 2 * TAR_BLOCK, len)) {
        throw new ImageError('bad-entry', '', `non-zero data after the end-of-archive marker at byte ${off}`);
      }
      return entries;
    }

    const first = off === 0;
    let header: Header;
    try {
      header = new Header(buf, off);
    } catch (e) {
      throw first
        ? new ImageError('not-tar', '', `first block is not a tar header: ${errorText(e)}`, { cause: e })
        : new ImageError('bad-entry', '', `malformed header at byte ${off}: ${errorText(e)}`, { cause: e });
    }
    if (!header.cksumValid || !hasUstarMagic(buf, off)) {
      const what = !header.cksumValid ? 'checksum mismatch' : 'missing ustar magic';
      if (first) throw new ImageError('not-tar', '', `first block is not a ustar header (${what})`);
      throw new ImageError('bad-entry', '', `damaged header at byte ${off} (${what})`);
    }
    const path = header.path ?? '';
    if (header.typeKey !== '0') {
      throw new ImageError(
        'bad-entry',
        '',
        `entry ${JSON.stringify(path)} at byte ${off} has tar type ${JSON.stringify(header.type)}; a .dni holds only regular files`,
      );
    }
    if (path === '') throw new ImageError('bad-entry', '', `entry at byte ${off} has an empty path`);
    const size = header.size;
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) {
      throw new ImageError('bad-entry', '', `entry ${JSON.stringify(path)} at byte ${off} has an invalid size field`);
    }
    if (size > IMAGE_LIMITS.MAX_IMAGE_BYTES) {
      throw new ImageError('too-large', '', `entry ${JSON.stringify(path)} claims ${size} bytes; the limit is ${IMAGE_LIMITS.MAX_IMAGE_BYTES}`);
    }
    const dataStart = off + TAR_BLOCK;
    const next = dataStart + roundUpBlock(size);
    if (next > len) {
      throw new ImageError(
        'truncated',
        '',
        `entry ${JSON.stringify(path)} needs ${size} bytes of data (padded to ${roundUpBlock(size)}) at byte ${dataStart}, only ${len - dataStart} remain`,
      );
    }
    if (entries.length >= IMAGE_LIMITS.MAX_ENTRIES) {
      throw new ImageError('too-large', '', `archive holds more than ${IMAGE_LIMITS.MAX_ENTRIES} entries`);
    }
    if (seen.has(path)) {
      throw new ImageError('extra-file', '', `archive holds ${JSON.stringify(path)} more than once`);
    }
    seen.add(path);
    entries.push({ path, offset: dataStart, size });
    off = next;
  }
}

/**
 * Reads an archive into memory: `scanArchive` first, then node-tar's `Parser` (strict mode)
 * extracts each entry's bytes. Both must agree on every entry, or the archive is rejected.
 *
 * @returns the files in archive order, each `data` a fresh `Uint8Array` copy.
 * @throws ImageError as `scanArchive`; `bad-entry` or `truncated` for anything node-tar reports.
 */
export async function readArchive(bytes: Uint8Array): Promise<ArchiveFile[]> {
  const scanned = scanArchive(bytes);
  // An archive of only the end marker is valid tar with no files (node-tar would call it
  // "unrecognized"); let the caller report the missing manifest.
  if (scanned.length === 0) return [];
  const files: ArchiveFile[] = [];
  let failure: unknown;
  let done = false;

  const parser = new Parser({
    strict: true,
    zstd: false,
    brotli: false,
    maxMetaEntrySize: TAR_BLOCK,
    onwarn: (code: string, message: string | Error) => {
      failure ??= new Error(`${code}: ${errorText(message)}`);
    },
  });
  parser.on('error', (e: unknown) => {
    failure ??= e;
  });
  parser.on('entry', (entry: ReadEntry) => {
    const index = files.length;
    const expected = scanned[index];
    if (expected === undefined || entry.type !== 'File' || entry.path !== expected.path || entry.size !== expected.size) {
      failure ??= new Error(`node-tar saw entry ${JSON.stringify(entry.path)} where the scan expected ${JSON.stringify(expected?.path)}`);
      entry.resume();
      return;
    }
    const data = new Uint8Array(expected.size);
    const file: ArchiveFile = { path: expected.path, data };
    files.push(file);
    let pos = 0;
    entry.on('data', (chunk: Buffer) => {
      const n = Math.min(chunk.length, data.length - pos);
      if (n < chunk.length) failure ??= new Error(`node-tar gave too much data for ${JSON.stringify(expected.path)}`);
      data.set(chunk.subarray(0, n), pos);
      pos += n;
    });
    entry.on('end', () => {
      if (pos !== data.length) failure ??= new Error(`node-tar gave ${pos} of ${data.length} bytes for ${JSON.stringify(expected.path)}`);
    });
  });
  const ended = new Promise<void>((resolve) => {
    parser.on('end', () => {
      done = true;
      resolve();
    });
  });

  try {
    parser.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    failure ??= e;
  }
  // The parser works synchronously on an in-memory buffer; allow one turn of the event loop
  // for any deferred event, and never wait longer than that.
  if (!done && failure === undefined) {
    await Promise.race([ended, new Promise<void>((resolve) => setImmediate(resolve))]);
  }

  if (failure !== undefined) {
    const text = errorText(failure);
    const code = /truncat/i.test(text) ? 'truncated' : 'bad-entry';
    throw new ImageError(code, '', `tar parser rejected the archive: ${text}`, { cause: failure });
  }
  if (!done) throw new ImageError('bad-entry', '', 'tar parser did not finish reading the archive');
  if (files.length !== scanned.length) {
    throw new ImageError('bad-entry', '', `tar parser found ${files.length} entries, the header scan found ${scanned.length}`);
  }
  return files;
}

// ---- helpers ----

function roundUpBlock(n: number): number {
  return Math.ceil(n / TAR_BLOCK) * TAR_BLOCK;
}

function isZero(buf: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

/** POSIX `ustar\0` + version `00`, or the GNU variant `ustar  \0`. */
function hasUstarMagic(buf: Buffer, off: number): boolean {
  const magic = buf.toString('latin1', off + 257, off + 263);
  return magic === 'ustar\0' || magic === 'ustar ';
}

function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
