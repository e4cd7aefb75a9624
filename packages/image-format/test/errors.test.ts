import { gzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { IMAGE_ERROR_CODES, IMAGE_LIMITS, LAYOUT, readImage, writeImage, type ImageErrorCode } from '../src/index.js';
import { packArchive, TAR_BLOCK } from '../src/archive.js';
import {
  expectImageError,
  headerOffsets,
  imageWithManifest,
  sampleImage,
  sampleInput,
  sampleManifestJson,
  sampleSegmentFiles,
  setHeaderField,
} from './helpers.js';

const enc = new TextEncoder();

/** Codes exercised below; the last test checks that every code is covered. */
const covered = new Set<ImageErrorCode>(['io']); // 'io' is covered in roundtrip.test.ts

async function expectRead(bytes: Uint8Array | Promise<Uint8Array>, code: ImageErrorCode, field = '') {
  covered.add(code);
  return expectImageError(readImage(await bytes), code, field);
}

async function expectManifest(mutate: (m: Record<string, any>) => void, code: ImageErrorCode, field: string) {
  const m = sampleManifestJson();
  mutate(m);
  return expectRead(imageWithManifest(m), code, field);
}

describe('archive-level errors', () => {
  test('not-tar: empty, short, text, gzip, zero-length first header', async () => {
    await expectRead(new Uint8Array(0), 'not-tar', '');
    await expectRead(enc.encode('hello'), 'not-tar', '');
    await expectRead(enc.encode('this is not a tar archive\n'.repeat(100)), 'not-tar', '');
    await expectRead(new Uint8Array(gzipSync(await sampleImage())), 'not-tar', '');
    const bad = await sampleImage();
    bad[0] ^= 0xff; // breaks the first header's checksum
    await expectRead(bad, 'not-tar', '');
  });

  test('truncated: mid-header, mid-data, in padding, missing end-of-archive blocks', async () => {
    const img = await sampleImage();
    const offs = headerOffsets(img);
    await expectRead(img.subarray(0, 300), 'truncated', ''); // inside the first header (ustar magic present)
    await expectRead(img.subarray(0, offs[1]! + 100), 'truncated', ''); // inside the second header
    await expectRead(img.subarray(0, offs[1]! + TAR_BLOCK + 1000), 'truncated', ''); // inside segment 0's data
    await expectRead(img.subarray(0, offs[1]! + TAR_BLOCK + 0x1234 + 10), 'truncated', ''); // inside its padding
    await expectRead(img.subarray(0, img.length - 2 * TAR_BLOCK), 'truncated', ''); // no end marker at all
    await expectRead(img.subarray(0, img.length - TAR_BLOCK), 'truncated', ''); // one zero block only
    await expectRead(img.subarray(0, img.length - 1), 'truncated', '');
  });

  test('missing-manifest: no manifest.json, or an empty archive', async () => {
    await expectRead(packArchive(sampleSegmentFiles()), 'missing-manifest', '');
    await expectRead(new Uint8Array(2 * TAR_BLOCK), 'missing-manifest', '');
  });

  test('bad-entry: non-file entry types, damaged later header, bad size field, data after the end marker', async () => {
    const img = await sampleImage();
    const offs = headerOffsets(img);

    const dir = img.slice();
    setHeaderField(dir, offs[2]!, 156, 1, '5'); // directory
    await expectRead(dir, 'bad-entry', '');

    const symlink = img.slice();
    setHeaderField(symlink, offs[2]!, 156, 1, '2');
    await expectRead(symlink, 'bad-entry', '');

    const pax = img.slice();
    setHeaderField(pax, offs[1]!, 156, 1, 'x'); // a pax extended header is not allowed either
    await expectRead(pax, 'bad-entry', '');

    const cksum = img.slice();
    cksum[offs[3]! + 5] ^= 0x01; // header of segments/2.bin, checksum no longer matches
    await expectRead(cksum, 'bad-entry', '');

    const size = img.slice();
    setHeaderField(size, offs[1]!, 124, 12, 'zzzzzzzzzzz');
    await expectRead(size, 'bad-entry', '');

    const trailing = new Uint8Array(img.length + TAR_BLOCK);
    trailing.set(img);
    trailing[trailing.length - 7] = 1;
    await expectRead(trailing, 'bad-entry', '');

    const lone = img.slice(0, img.length - TAR_BLOCK); // one zero block, then a header again
    const withMore = new Uint8Array(lone.length + img.length);
    withMore.set(lone);
    withMore.set(img, lone.length);
    await expectRead(withMore, 'bad-entry', '');
  });

  test('bad-entry: problems only node-tar notices are converted too (linkname on a regular file)', async () => {
    const img = await sampleImage();
    const offs = headerOffsets(img);
    setHeaderField(img, offs[1]!, 157, 100, 'elsewhere');
    const e = await expectRead(img, 'bad-entry', '');
    expect(e.message).toMatch(/tar parser rejected the archive/);
    expect(e.cause).toBeInstanceOf(Error);
  });

  test('bad-entry: a segment file whose size differs from the manifest fileSize', async () => {
    const files = sampleSegmentFiles();
    files[1] = { path: files[1]!.path, data: files[1]!.data.subarray(0, 100) };
    await expectRead(imageWithManifest(sampleManifestJson(), files), 'bad-entry', 'segments[1].fileSize');
  });

  test('digest-mismatch: one flipped data byte', async () => {
    const img = await sampleImage();
    const offs = headerOffsets(img);
    img[offs[2]! + TAR_BLOCK + 17] ^= 0x40; // inside segments/1.bin's data
    await expectRead(img, 'digest-mismatch', 'segments[1].sha256');
  });

  test('missing-segment: the manifest names a file the archive lacks', async () => {
    const files = sampleSegmentFiles().filter((f) => f.path !== 'segments/2.bin');
    await expectRead(imageWithManifest(sampleManifestJson(), files), 'missing-segment', 'segments[2].file');
  });

  test('extra-file: an unexpected file, or the same path twice', async () => {
    const files = [...sampleSegmentFiles(), { path: 'notes.txt', data: enc.encode('hi') }];
    await expectRead(imageWithManifest(sampleManifestJson(), files), 'extra-file', '');
    const dup = [...sampleSegmentFiles(), sampleSegmentFiles()[0]!];
    await expectRead(imageWithManifest(sampleManifestJson(), dup), 'extra-file', '');
    const dupManifest = await imageWithManifest(sampleManifestJson(), [
      { path: 'manifest.json', data: enc.encode('{}') },
      ...sampleSegmentFiles(),
    ]);
    await expectRead(dupManifest, 'extra-file', '');
  });

  test('too-large: entry size field beyond the limit, too many entries, huge manifest', async () => {
    const img = await sampleImage();
    const offs = headerOffsets(img);
    const huge = img.slice();
    setHeaderField(huge, offs[1]!, 124, 12, '77777777777'); // 8 GiB - 1
    await expectRead(huge, 'too-large', '');

    const many = Array.from({ length: IMAGE_LIMITS.MAX_ENTRIES + 1 }, (_, i) => ({ path: `f${i}`, data: new Uint8Array(1) }));
    await expectRead(packArchive(many), 'too-large', '');

    const big = `${JSON.stringify(sampleManifestJson())}${' '.repeat(IMAGE_LIMITS.MAX_MANIFEST_BYTES)}`;
    await expectRead(imageWithManifest(big), 'too-large', '');
  });
});

describe('manifest-level errors', () => {
  test('bad-json: not JSON, not UTF-8, not an object', async () => {
    await expectRead(imageWithManifest('{"formatVersion": 1,'), 'bad-json', '');
    await expectRead(
      packArchive([{ path: 'manifest.json', data: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]) }, ...sampleSegmentFiles()]),
      'bad-json',
      '',
    );
    await expectRead(imageWithManifest([1, 2, 3]), 'bad-json', '');
    await expectRead(imageWithManifest('null'), 'bad-json', '');
  });

  test('unknown-version', async () => {
    await expectManifest((m) => (m.formatVersion = 2), 'unknown-version', 'formatVersion');
  });

  test('unknown-architecture', async () => {
    await expectManifest((m) => (m.architecture = 'x86_64'), 'unknown-architecture', 'architecture');
  });

  test('abi-mismatch', async () => {
    await expectManifest((m) => (m.abiVersion = 99), 'abi-mismatch', 'abiVersion');
  });

  test('overlap: two segments share memory', async () => {
    await expectManifest((m) => (m.segments[2].loadAddress = LAYOUT.IMAGE_BASE + 0x1000), 'overlap', 'segments[2].loadAddress');
    await expectManifest((m) => (m.segments[0].memorySize = 0x2001), 'overlap', 'segments[1].loadAddress');
  });

  test('reserved-region: a segment below the image base', async () => {
    await expectManifest((m) => (m.segments[1].loadAddress = LAYOUT.RAM_BASE), 'reserved-region', 'segments[1].loadAddress');
    await expectManifest((m) => (m.segments[0].loadAddress = 0), 'reserved-region', 'segments[0].loadAddress');
  });

  test('outside-memory: a segment reaching into the stack or past memory', async () => {
    const top = 16 * 1024 * 1024 - 256 * 1024;
    await expectManifest((m) => (m.segments[2].loadAddress = top - 0x1000), 'outside-memory', 'segments[2].memorySize');
    await expectManifest((m) => (m.segments[2].loadAddress = top), 'outside-memory', 'segments[2].loadAddress');
    await expectManifest((m) => (m.segments[1].loadAddress = 0x40000000), 'outside-memory', 'segments[1].loadAddress');
    await expectManifest((m) => (m.stackSize = 16 * 1024 * 1024 - LAYOUT.IMAGE_BASE), 'outside-memory', 'segments[0].loadAddress');
  });

  test('too-large: too many segments, too many or too long args', async () => {
    await expectManifest(
      (m) => (m.segments = Array.from({ length: IMAGE_LIMITS.MAX_SEGMENTS + 1 }, () => m.segments[0])),
      'too-large',
      'segments',
    );
    await expectManifest((m) => (m.args = Array.from({ length: IMAGE_LIMITS.MAX_ARGS + 1 }, () => 'a')), 'too-large', 'args');
    await expectManifest((m) => (m.args = ['x'.repeat(LAYOUT.BOOTARGS_MAX)]), 'too-large', 'args');
  });

  const badFields: [string, (m: Record<string, any>) => void, string][] = [
    ['missing entryPoint', (m) => delete m.entryPoint, 'entryPoint'],
    ['missing name', (m) => delete m.name, 'name'],
    ['missing args', (m) => delete m.args, 'args'],
    ['missing segments', (m) => delete m.segments, 'segments'],
    ['missing formatVersion', (m) => delete m.formatVersion, 'formatVersion'],
    ['unknown top-level field', (m) => (m.compression = 'none'), 'compression'],
    ['__proto__ field', (m) => Object.defineProperty(m, '__proto__', { value: 1, enumerable: true }), '__proto__'],
    ['unknown segment field', (m) => (m.segments[1].align = 4096), 'segments[1].align'],
    ['missing segment field', (m) => delete m.segments[2].flags, 'segments[2].flags'],
    ['name with a slash', (m) => (m.name = 'a/b'), 'name'],
    ['name starting with a dot', (m) => (m.name = '.hidden'), 'name'],
    ['name too long', (m) => (m.name = 'n'.repeat(65)), 'name'],
    ['empty name', (m) => (m.name = ''), 'name'],
    ['name not a string', (m) => (m.name = 7), 'name'],
    ['formatVersion a string', (m) => (m.formatVersion = '1'), 'formatVersion'],
    ['memorySize not a page multiple', (m) => (m.memorySize = 16 * 1024 * 1024 + 1), 'memorySize'],
    ['memorySize below the minimum', (m) => (m.memorySize = LAYOUT.MIN_MEMORY - 4096), 'memorySize'],
    ['memorySize above the maximum', (m) => (m.memorySize = LAYOUT.MAX_MEMORY + 4096), 'memorySize'],
    ['memorySize fractional', (m) => (m.memorySize = 1.5), 'memorySize'],
    ['memorySize negative', (m) => (m.memorySize = -4096), 'memorySize'],
    ['stackSize zero', (m) => (m.stackSize = 0), 'stackSize'],
    ['stackSize not a page multiple', (m) => (m.stackSize = 1000), 'stackSize'],
    ['stackSize too big', (m) => (m.stackSize = 16 * 1024 * 1024), 'stackSize'],
    ['args not an array', (m) => (m.args = '--port 7'), 'args'],
    ['args element not a string', (m) => (m.args[1] = 7), 'args[1]'],
    ['args element with NUL', (m) => (m.args[2] = 'a\u0000b'), 'args[2]'],
    ['no segments', (m) => (m.segments = []), 'segments'],
    ['segment not an object', (m) => (m.segments[1] = 'text'), 'segments[1]'],
    ['loadAddress a string', (m) => (m.segments[0].loadAddress = '0x100000'), 'segments[0].loadAddress'],
    ['loadAddress not page-aligned', (m) => (m.segments[1].loadAddress += 0x10), 'segments[1].loadAddress'],
    ['segment memorySize zero', (m) => (m.segments[1].memorySize = 0), 'segments[1].memorySize'],
    ['fileSize > memorySize', (m) => (m.segments[2].memorySize = 0x100), 'segments[2].fileSize'],
    ['flags unknown', (m) => (m.segments[0].flags = 'wx'), 'segments[0].flags'],
    ['sha256 uppercase', (m) => (m.segments[0].sha256 = m.segments[0].sha256.toUpperCase()), 'segments[0].sha256'],
    ['file name out of order', (m) => (m.segments[0].file = 'segments/1.bin'), 'segments[0].file'],
    ['file name with a path', (m) => (m.segments[0].file = '../etc/passwd'), 'segments[0].file'],
    ['entry point in a non-executable segment', (m) => (m.entryPoint = LAYOUT.IMAGE_BASE + 0x3000), 'entryPoint'],
    ['entry point outside every segment', (m) => (m.entryPoint = 0x200000), 'entryPoint'],
    ['entry point just past the executable segment', (m) => (m.entryPoint = LAYOUT.IMAGE_BASE + 0x1800), 'entryPoint'],
  ];
  test.each(badFields)('bad-field: %s', async (_what, mutate, field) => {
    await expectManifest(mutate, 'bad-field', field);
  });
});

describe('writeImage applies the same rules', () => {
  test('rejects what readImage would reject, with the same code and field', async () => {
    const cases: [(i: ReturnType<typeof sampleInput>) => void, ImageErrorCode, string][] = [
      [(i) => (i.name = '-x'), 'bad-field', 'name'],
      [(i) => (i.segments[2]!.loadAddress = LAYOUT.IMAGE_BASE), 'overlap', 'segments[2].loadAddress'],
      [(i) => (i.segments[0]!.loadAddress = 0x2000), 'reserved-region', 'segments[0].loadAddress'],
      [(i) => (i.segments[2]!.memorySize = 0x100), 'bad-field', 'segments[2].fileSize'],
      [(i) => (i.entryPoint = LAYOUT.IMAGE_BASE + 0x2000), 'bad-field', 'entryPoint'],
      [(i) => ((i.segments[0] as any).data = [1, 2, 3]), 'bad-field', 'segments[0].data'],
      [(i) => ((i as any).segments = null), 'bad-field', 'segments'],
      [(i) => (i.memorySize = 3 * 1024 * 1024 * 1024), 'bad-field', 'memorySize'],
    ];
    for (const [mutate, code, field] of cases) {
      const input = sampleInput();
      mutate(input);
      await expectImageError(writeImage(input), code, field);
    }
  });
});

test('every ImageError code has a test', () => {
  expect([...covered].sort()).toEqual([...IMAGE_ERROR_CODES].sort());
});
