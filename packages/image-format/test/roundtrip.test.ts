import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Parser, type ReadEntry } from 'tar';
import {
  ABI_VERSION,
  ARCH_ID,
  FORMAT_VERSION,
  ImageError,
  LAYOUT,
  readImage,
  readImageFile,
  sha256Hex,
  writeImage,
  writeImageFile,
} from '../src/index.js';
import { TAR_BLOCK } from '../src/archive.js';
import { expectImageError, headerOffsets, patternBytes, sampleInput, sampleManifestJson, imageWithManifest } from './helpers.js';

/** Lists an archive with node-tar itself (an independent reader of our output). */
async function listWithNodeTar(bytes: Uint8Array): Promise<{ path: string; size: number; header: ReadEntry['header'] }[]> {
  const out: { path: string; size: number; header: ReadEntry['header'] }[] = [];
  await new Promise<void>((resolve, reject) => {
    const p = new Parser({ strict: true });
    p.on('entry', (e: ReadEntry) => {
      out.push({ path: e.path, size: e.size, header: e.header });
      e.resume();
    });
    p.on('end', () => resolve());
    p.on('error', reject);
    p.end(Buffer.from(bytes));
  });
  return out;
}

describe('round trip', () => {
  test('write then read gives the same manifest and bytes', async () => {
    const input = sampleInput();
    const bytes = await writeImage(input);
    expect(bytes.length % TAR_BLOCK).toBe(0);
    const image = await readImage(bytes);
    expect(image.manifest).toEqual({
      formatVersion: FORMAT_VERSION,
      name: input.name,
      architecture: ARCH_ID,
      abiVersion: ABI_VERSION,
      entryPoint: input.entryPoint,
      memorySize: input.memorySize,
      stackSize: input.stackSize,
      args: input.args,
      segments: input.segments.map((s, i) => ({
        file: `segments/${i}.bin`,
        loadAddress: s.loadAddress,
        fileSize: s.data.length,
        memorySize: s.memorySize,
        flags: s.flags,
        sha256: sha256Hex(s.data),
      })),
    });
    expect(image.segments).toHaveLength(input.segments.length);
    image.segments.forEach((seg, i) => {
      expect(seg).toBeInstanceOf(Uint8Array);
      expect(seg).toEqual(input.segments[i]!.data);
      expect(seg.length).toBe(image.manifest.segments[i]!.fileSize);
    });
  });

  test('returned segments are copies, not views of the input bytes', async () => {
    const bytes = await writeImage(sampleInput());
    const image = await readImage(bytes);
    const before = Uint8Array.from(image.segments[0]!);
    bytes.fill(0xee);
    expect(image.segments[0]).toEqual(before);
    expect(image.segments[0]!.buffer).not.toBe(bytes.buffer);
  });

  test('writing twice gives byte-identical output, whatever the key order of the input', async () => {
    const a = await writeImage(sampleInput());
    const s = sampleInput();
    const reordered = {
      segments: s.segments.map((x) => ({ data: Uint8Array.from(x.data), flags: x.flags, memorySize: x.memorySize, loadAddress: x.loadAddress })),
      args: [...s.args],
      stackSize: s.stackSize,
      memorySize: s.memorySize,
      entryPoint: s.entryPoint,
      name: s.name,
    };
    const b = await writeImage(reordered);
    expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
    expect(sha256Hex(a)).toBe(sha256Hex(await writeImage(sampleInput())));
  });

  test('the archive holds manifest.json first, then segments in order, with fixed portable headers', async () => {
    const bytes = await writeImage(sampleInput());
    const entries = await listWithNodeTar(bytes);
    expect(entries.map((e) => e.path)).toEqual(['manifest.json', 'segments/0.bin', 'segments/1.bin', 'segments/2.bin']);
    for (const e of entries) {
      expect(e.header.type).toBe('File');
      expect(e.header.mode).toBe(0o644);
      expect(e.header.uid).toBe(0);
      expect(e.header.gid).toBe(0);
      expect(e.header.mtime?.getTime()).toBe(0);
      expect(e.header.uname ?? '').toBe('');
      expect(e.header.gname ?? '').toBe('');
    }
    // ustar magic + version in every header, and the two zero blocks at the end.
    for (const off of headerOffsets(bytes)) {
      expect(Buffer.from(bytes.subarray(off + 257, off + 265)).toString('latin1')).toBe('ustar\u000000');
    }
    expect(bytes.subarray(bytes.length - 2 * TAR_BLOCK).every((b) => b === 0)).toBe(true);
  });

  test('manifest.json is valid 2-space JSON with the documented fields in order and a trailing newline', async () => {
    const bytes = await writeImage(sampleInput());
    const size = parseInt(Buffer.from(bytes.subarray(124, 136)).toString('latin1').trim(), 8);
    const text = new TextDecoder().decode(bytes.subarray(TAR_BLOCK, TAR_BLOCK + size));
    expect(text.endsWith('}\n')).toBe(true);
    const json = JSON.parse(text);
    expect(Object.keys(json)).toEqual([
      'formatVersion',
      'name',
      'architecture',
      'abiVersion',
      'entryPoint',
      'memorySize',
      'stackSize',
      'args',
      'segments',
    ]);
    expect(Object.keys(json.segments[0])).toEqual(['file', 'loadAddress', 'fileSize', 'memorySize', 'flags', 'sha256']);
    expect(text).toBe(`${JSON.stringify(json, null, 2)}\n`);
    expect(json.segments[0].sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  test('empty segment data (pure BSS) and the largest segment count round-trip', async () => {
    const input = sampleInput();
    input.segments = Array.from({ length: 64 }, (_, i) => ({
      loadAddress: LAYOUT.IMAGE_BASE + i * 0x1000,
      memorySize: 0x1000,
      flags: i === 0 ? ('rx' as const) : ('rw' as const),
      data: i % 3 === 0 ? new Uint8Array(0) : patternBytes(i * 10, i),
    }));
    input.entryPoint = LAYOUT.IMAGE_BASE;
    const image = await readImage(await writeImage(input));
    expect(image.segments.map((s) => s.length)).toEqual(input.segments.map((s) => s.data.length));
  });

  test('a multi-MiB segment round-trips', async () => {
    const input = sampleInput();
    input.segments[2] = { loadAddress: LAYOUT.IMAGE_BASE + 0x3000, memorySize: 4 * 1024 * 1024, flags: 'rw', data: patternBytes(3 * 1024 * 1024 + 7, 9) };
    const bytes = await writeImage(input);
    const image = await readImage(bytes);
    expect(sha256Hex(image.segments[2]!)).toBe(sha256Hex(input.segments[2]!.data));
    expect(image.segments[2]!.length).toBe(3 * 1024 * 1024 + 7);
  });

  test('a manifest without stackSize reads with the ABI default', async () => {
    const m = sampleManifestJson();
    delete m.stackSize;
    const image = await readImage(await imageWithManifest(m));
    expect(image.manifest.stackSize).toBe(LAYOUT.DEFAULT_STACK_SIZE);
    expect(Object.keys(image.manifest)[6]).toBe('stackSize');
  });

  test('an archive padded with zero blocks to a 10240-byte record still reads', async () => {
    const bytes = await writeImage(sampleInput());
    const padded = new Uint8Array(Math.ceil(bytes.length / 10240) * 10240 + 10240);
    padded.set(bytes);
    await expect(readImage(padded)).resolves.toBeDefined();
  });
});

describe('files', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dni-test-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('writeImageFile writes the same bytes as writeImage, readImageFile reads them', async () => {
    const path = join(dir, 'echo.dni');
    const written = await writeImageFile(path, sampleInput());
    expect(new Uint8Array(await readFile(path))).toEqual(written);
    expect(written).toEqual(await writeImage(sampleInput()));
    const image = await readImageFile(path);
    expect(image.manifest.name).toBe('echo-server');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('a failed write leaves the previous image untouched and no temp file behind', async () => {
    const path = join(dir, 'keep.dni');
    await writeFile(path, 'previous');
    const bad = sampleInput();
    bad.memorySize = 123;
    await expectImageError(writeImageFile(path, bad), 'bad-field', 'memorySize');
    expect(await readFile(path, 'utf8')).toBe('previous');
    // A file-system failure (directory does not exist) is an ImageError 'io'.
    await expectImageError(writeImageFile(join(dir, 'no-such-dir', 'x.dni'), sampleInput()), 'io');
    expect((await readdir(dir)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  test('readImageFile on a missing file or a directory is ImageError io', async () => {
    const e = await expectImageError(readImageFile(join(dir, 'missing.dni')), 'io');
    expect(e.cause).toBeDefined();
    await expectImageError(readImageFile(dir), 'io');
  });

  test('ImageError carries code, field and a one-line message', async () => {
    const bad = sampleInput();
    bad.segments[1]!.loadAddress = 0x1000;
    const e = await expectImageError(writeImage(bad), 'reserved-region', 'segments[1].loadAddress');
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('ImageError');
    expect(e).toBeInstanceOf(ImageError);
    expect(e.message).toMatch(/^segments\[1\]\.loadAddress: 0x00001000 is below the image base/);
  });
});
