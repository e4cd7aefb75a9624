/**
 * Reading and writing `.dni` images.
 *
 * A `.dni` is an uncompressed POSIX ustar archive (see `archive.ts`) holding, in this order:
 * - `manifest.json`: the `Manifest` (manifest.ts), 2-space JSON with keys in a fixed order
 *   and a trailing newline;
 * - `segments/0.bin`, `segments/1.bin`, …: the stored bytes of each segment, in manifest order.
 *
 * The VMM loads an image much like an OS loads a process (Denali paper, section 3.1.2): it
 * copies each segment's `fileSize` bytes to `loadAddress`, zeroes the rest of the segment's
 * `memorySize` (BSS), puts the stack at the top of memory and jumps to `entryPoint`.
 */

import { createHash, randomBytes } from 'node:crypto';
import { open, rename, stat, unlink, readFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ABI_VERSION, ARCH_ID } from './abi.js';
import { readArchive, packArchive } from './archive.js';
import type { ArchiveFile } from './archive.js';
import { ImageError } from './errors.js';
import { FORMAT_VERSION } from './manifest.js';
import type { DenaliImage, ImageInput, Manifest } from './manifest.js';
import { IMAGE_LIMITS, segmentFileName, validateManifest } from './validate.js';

/** Path of the manifest inside the archive. */
export const MANIFEST_FILE = 'manifest.json';

/** Lowercase hex SHA-256 of `data`. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The canonical bytes of `manifest.json`: `JSON.stringify` with 2-space indent, keys in the
 * order of the `Manifest` and `SegmentManifest` interfaces, and a trailing newline (UTF-8).
 * The manifest is re-validated first.
 *
 * @throws ImageError as `validateManifest`.
 */
export function encodeManifest(manifest: Manifest): Uint8Array {
  const canonical = validateManifest(manifest);
  return new TextEncoder().encode(`${JSON.stringify(canonical, null, 2)}\n`);
}

/**
 * Builds the manifest `writeImage` would write for `input`: derives each segment's `file`
 * (`segments/<i>.bin`), `fileSize` (= `data.length`, bytes) and `sha256`, and validates it.
 *
 * @throws ImageError `bad-field`/`too-large`/… exactly as `readImage` would reject the result;
 *   `bad-field` at `segments[i].data` if a segment's data is not a `Uint8Array`.
 */
export function manifestFromInput(input: ImageInput): Manifest {
  if (typeof input !== 'object' || input === null) {
    throw new ImageError('bad-field', '', 'image input must be an object');
  }
  const rawSegments: unknown = input.segments;
  if (!Array.isArray(rawSegments)) {
    throw new ImageError('bad-field', 'segments', 'must be an array');
  }
  if (rawSegments.length > IMAGE_LIMITS.MAX_SEGMENTS) {
    throw new ImageError('too-large', 'segments', `${rawSegments.length} segments; at most ${IMAGE_LIMITS.MAX_SEGMENTS} are allowed`);
  }
  const segments = rawSegments.map((s: unknown, i: number) => {
    if (typeof s !== 'object' || s === null) {
      throw new ImageError('bad-field', `segments[${i}]`, 'must be an object');
    }
    const seg = s as Record<string, unknown>;
    const data = seg['data'];
    if (!(data instanceof Uint8Array)) {
      throw new ImageError('bad-field', `segments[${i}].data`, 'must be a Uint8Array');
    }
    if (data.length > IMAGE_LIMITS.MAX_IMAGE_BYTES) {
      throw new ImageError('too-large', `segments[${i}].data`, `${data.length} bytes is larger than any image may be`);
    }
    return {
      file: segmentFileName(i),
      loadAddress: seg['loadAddress'],
      fileSize: data.length,
      memorySize: seg['memorySize'],
      flags: seg['flags'],
      sha256: sha256Hex(data),
    };
  });
  return validateManifest({
    formatVersion: FORMAT_VERSION,
    name: input.name,
    architecture: ARCH_ID,
    abiVersion: ABI_VERSION,
    entryPoint: input.entryPoint,
    memorySize: input.memorySize,
    stackSize: input.stackSize,
    args: input.args,
    segments,
  });
}

/**
 * Builds a `.dni` image in memory.
 *
 * Validates `input` with the same rules as `readImage` (so every written image reads back),
 * then writes `manifest.json` followed by `segments/<i>.bin` for each segment in order.
 * Deterministic: identical inputs give byte-identical images (fixed mtime 0, uid/gid 0,
 * mode 0644, no user/group names, plain ustar headers, fixed entry order). Segment bytes are
 * stored in full (`fileSize === data.length`); BSS is expressed by `memorySize > data.length`.
 *
 * @returns the archive bytes.
 * @throws ImageError from `manifestFromInput`, or `too-large`/`bad-entry` from the tar layer.
 */
export async function writeImage(input: ImageInput): Promise<Uint8Array> {
  const manifest = manifestFromInput(input);
  const files: ArchiveFile[] = [{ path: MANIFEST_FILE, data: encodeManifest(manifest) }];
  input.segments.forEach((s, i) => files.push({ path: segmentFileName(i), data: s.data }));
  return packArchive(files);
}

/**
 * `writeImage`, then writes the bytes to `path` atomically: into a temporary file in the
 * same directory, flushed to disk, then renamed over `path`. On any failure the temporary file
 * is removed and `path` is left as it was (absent or the previous image).
 *
 * @returns the image bytes written.
 * @throws ImageError as `writeImage`; `io` (with `cause`) if the file system fails.
 */
export async function writeImageFile(path: string, input: ImageInput): Promise<Uint8Array> {
  const bytes = await writeImage(input);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  let created = false;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    created = true;
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    created = false;
  } catch (e) {
    if (created) await unlink(tmp).catch(() => undefined);
    throw new ImageError('io', '', `cannot write image ${JSON.stringify(path)}: ${errorText(e)}`, { cause: e });
  }
  return bytes;
}

/**
 * Parses and fully validates a `.dni` image.
 *
 * Checks, in order: the archive structure (`scanArchive`: ustar headers, checksums, truncation,
 * end marker, entry types, limits), `manifest.json` presence, UTF-8/JSON, every manifest rule
 * (`validateManifest`), then each segment file: present, size equal to `fileSize`, SHA-256
 * equal to `sha256`; and finally that the archive holds no other file.
 *
 * Never throws anything but `ImageError`, for any input, and never waits on anything but the
 * in-memory parse.
 *
 * @param bytes the whole archive.
 * @returns the validated manifest (canonical key order; a missing `stackSize` filled with
 *   `LAYOUT.DEFAULT_STACK_SIZE`) and fresh copies of the segment bytes in manifest order.
 * @throws ImageError with any code but `io`.
 */
export async function readImage(bytes: Uint8Array): Promise<DenaliImage> {
  try {
    return await readImageUnchecked(bytes);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    // Defensive: nothing else should get here, but the contract is "only ImageError".
    throw new ImageError('bad-entry', '', `cannot read image: ${errorText(e)}`, { cause: e });
  }
}

async function readImageUnchecked(bytes: Uint8Array): Promise<DenaliImage> {
  if (!(bytes instanceof Uint8Array)) {
    throw new ImageError('not-tar', '', 'image input must be a Uint8Array');
  }
  const files = await readArchive(bytes);
  const byPath = new Map(files.map((f) => [f.path, f.data]));

  const manifestBytes = byPath.get(MANIFEST_FILE);
  if (manifestBytes === undefined) {
    throw new ImageError('missing-manifest', '', `archive has no ${MANIFEST_FILE}`);
  }
  if (manifestBytes.length > IMAGE_LIMITS.MAX_MANIFEST_BYTES) {
    throw new ImageError(
      'too-large',
      '',
      `${MANIFEST_FILE} is ${manifestBytes.length} bytes; the limit is ${IMAGE_LIMITS.MAX_MANIFEST_BYTES}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(manifestBytes);
  } catch (e) {
    throw new ImageError('bad-json', '', `${MANIFEST_FILE} is not valid UTF-8`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ImageError('bad-json', '', `${MANIFEST_FILE} is not valid JSON: ${errorText(e)}`, { cause: e });
  }
  const manifest = validateManifest(json);

  const segments = manifest.segments.map((seg, i) => {
    const data = byPath.get(seg.file);
    if (data === undefined) {
      throw new ImageError('missing-segment', `segments[${i}].file`, `archive has no ${JSON.stringify(seg.file)}`);
    }
    if (data.length !== seg.fileSize) {
      throw new ImageError(
        'bad-entry',
        `segments[${i}].fileSize`,
        `manifest says ${seg.fileSize} bytes but ${JSON.stringify(seg.file)} holds ${data.length}`,
      );
    }
    const digest = sha256Hex(data);
    if (digest !== seg.sha256) {
      throw new ImageError(
        'digest-mismatch',
        `segments[${i}].sha256`,
        `${JSON.stringify(seg.file)} hashes to ${digest}, manifest says ${seg.sha256}`,
      );
    }
    return data;
  });

  const expected = new Set([MANIFEST_FILE, ...manifest.segments.map((s) => s.file)]);
  for (const f of files) {
    if (!expected.has(f.path)) {
      throw new ImageError('extra-file', '', `archive holds ${JSON.stringify(f.path)}, which the manifest does not name`);
    }
  }
  return { manifest, segments };
}

/**
 * Reads and validates the `.dni` file at `path` (see `readImage`). The file's size is checked
 * against `IMAGE_LIMITS.MAX_IMAGE_BYTES` before it is read.
 *
 * @throws ImageError as `readImage`; `io` (with `cause`) if the file cannot be read;
 *   `too-large` if the file is over the limit.
 */
export async function readImageFile(path: string): Promise<DenaliImage> {
  let bytes: Uint8Array;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > IMAGE_LIMITS.MAX_IMAGE_BYTES) {
      throw new ImageError('too-large', '', `${path} is ${st.size} bytes; the limit is ${IMAGE_LIMITS.MAX_IMAGE_BYTES}`);
    }
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof ImageError) throw e;
    throw new ImageError('io', '', `cannot read image ${JSON.stringify(path)}: ${errorText(e)}`, { cause: e });
  }
  return readImage(bytes);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
