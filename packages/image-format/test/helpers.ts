/** Shared fixtures for the image-format tests. */
import { packArchive, TAR_BLOCK } from '../src/archive.js';
import type { ArchiveFile } from '../src/archive.js';
import { encodeManifest, manifestFromInput, writeImage } from '../src/image.js';
import { ImageError, type ImageErrorCode } from '../src/errors.js';
import { LAYOUT, PAGE_SIZE } from '../src/abi.js';
import type { ImageInput, Manifest } from '../src/manifest.js';
import { expect } from 'vitest';

/** Deterministic pseudo-random bytes (not crypto; just varied content). */
export function patternBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A small valid image: text (rx), rodata (r), data+bss (rw). */
export function sampleInput(): ImageInput {
  return {
    name: 'echo-server',
    entryPoint: LAYOUT.IMAGE_BASE + 0x10,
    memorySize: 16 * 1024 * 1024,
    stackSize: 256 * 1024,
    args: ['--port', '7', 'hello world'],
    segments: [
      { loadAddress: LAYOUT.IMAGE_BASE, memorySize: 0x1800, flags: 'rx', data: patternBytes(0x1234, 1) },
      { loadAddress: LAYOUT.IMAGE_BASE + 0x2000, memorySize: 0x300, flags: 'r', data: patternBytes(0x300, 2) },
      { loadAddress: LAYOUT.IMAGE_BASE + 0x3000, memorySize: 0x5000, flags: 'rw', data: patternBytes(0x200, 3) },
    ],
  };
}

/** The manifest `writeImage(sampleInput())` writes, as a plain mutable JSON value. */
export function sampleManifestJson(): Record<string, any> {
  return JSON.parse(JSON.stringify(manifestFromInput(sampleInput())));
}

/** The segment files of `sampleInput()`, as archive files. */
export function sampleSegmentFiles(): ArchiveFile[] {
  return sampleInput().segments.map((s, i) => ({ path: `segments/${i}.bin`, data: s.data }));
}

const enc = new TextEncoder();

/**
 * Packs an archive whose manifest is `manifest` (any JSON value, or raw text), followed by
 * the sample segment files (or `segments` if given). Uses the real tar writer so only the
 * content is malformed.
 */
export async function imageWithManifest(
  manifest: unknown,
  segments: ArchiveFile[] = sampleSegmentFiles(),
): Promise<Uint8Array> {
  const text = typeof manifest === 'string' ? manifest : `${JSON.stringify(manifest, null, 2)}\n`;
  return packArchive([{ path: 'manifest.json', data: enc.encode(text) }, ...segments]);
}

export async function sampleImage(): Promise<Uint8Array> {
  return writeImage(sampleInput());
}

/** Recomputes the ustar checksum of the header block at `off` (after a deliberate edit). */
export function fixChecksum(buf: Uint8Array, off: number): void {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : buf[off + i]!;
  const field = `${sum.toString(8).padStart(6, '0')}\0 `;
  for (let i = 0; i < 8; i++) buf[off + 148 + i] = field.charCodeAt(i);
}

/** Writes an ASCII string into a header field (NUL padded) and fixes the checksum. */
export function setHeaderField(buf: Uint8Array, headerOff: number, fieldOff: number, len: number, value: string): void {
  for (let i = 0; i < len; i++) buf[headerOff + fieldOff + i] = i < value.length ? value.charCodeAt(i) : 0;
  fixChecksum(buf, headerOff);
}

/** Byte offsets of every header in a well-formed archive (walks sizes). */
export function headerOffsets(buf: Uint8Array): number[] {
  const offs: number[] = [];
  let off = 0;
  while (off + TAR_BLOCK <= buf.length && buf.subarray(off, off + TAR_BLOCK).some((b) => b !== 0)) {
    offs.push(off);
    const sizeText = Buffer.from(buf.subarray(off + 124, off + 136)).toString('latin1').replace(/\0.*$/, '').trim();
    const size = parseInt(sizeText, 8);
    off += TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
  }
  return offs;
}

/** Awaits `p`, expecting an ImageError with `code` (and `field` if given); returns it. */
export async function expectImageError(
  p: Promise<unknown>,
  code: ImageErrorCode,
  field?: string,
): Promise<ImageError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ImageError ${code}`).toBeInstanceOf(ImageError);
  const err = caught as ImageError;
  expect({ code: err.code, field: err.field }).toEqual({ code, field: field ?? err.field });
  expect(err.message).not.toMatch(/\n/);
  if (field) expect(err.message).toContain(field);
  return err;
}

export { encodeManifest, PAGE_SIZE, LAYOUT };
export type { Manifest };
