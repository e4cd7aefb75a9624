import { describe, expect, test } from 'vitest';
import { describeImage, formatBytes, readImage, writeImage } from '../src/index.js';
import { sampleInput } from './helpers.js';

describe('formatBytes', () => {
  test.each([
    [0, '0 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [4660, '4.6 KiB'],
    [256 * 1024, '256 KiB'],
    [16 * 1024 * 1024, '16 MiB'],
    [1024 * 1024 - 1, '1 MiB'],
    [1024 ** 3, '1 GiB'],
    [2.5 * 1024 ** 3, '2.5 GiB'],
  ])('%d bytes is %s', (n, text) => {
    expect(formatBytes(n)).toBe(text);
  });
});

describe('describeImage', () => {
  test('shows every documented item in aligned plain text', async () => {
    const bytes = await writeImage(sampleInput());
    const image = await readImage(bytes);
    const text = describeImage(image, { archiveBytes: bytes.length });
    expect(text).not.toMatch(/\u001b/); // no colors
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.split('\n')) expect(line).toBe(line.trimEnd());
    expect(text).toMatch(/^name: +echo-server$/m);
    expect(text).toMatch(/^architecture: +denali-x86-32$/m);
    expect(text).toMatch(/^abi version: +1$/m);
    expect(text).toMatch(/^format version: +1$/m);
    expect(text).toMatch(/^entry point: +0x00100010$/m);
    expect(text).toMatch(/^memory: +16 MiB \(0x01000000\)$/m);
    expect(text).toMatch(/^stack: +256 KiB at \[0x00fc0000, 0x01000000\)$/m);
    expect(text).toMatch(/^args: +--port 7 "hello world"$/m);
    expect(text).toMatch(/^image size: +10\.5 KiB \(10752 bytes\)$/m);
    // Segment table: one row per segment, columns aligned (same start of the sha column).
    const rows = text.split('\n').filter((l) => /^ +\d+ +0x/.test(l));
    expect(rows).toHaveLength(3);
    expect(rows[0]).toMatch(/0x00100000-0x00101800 +4\.6 KiB +6 KiB +r-x +[0-9a-f]{12}$/);
    expect(rows[1]).toMatch(/0x00102000-0x00102300 +768 B +768 B +r-- +/);
    expect(rows[2]).toMatch(/0x00103000-0x00108000 +512 B +20 KiB +rw- +/);
    const shaCol = rows.map((r) => r.search(/[0-9a-f]{12}$/));
    expect(new Set(shaCol).size).toBe(1);
    expect(rows[0]!.endsWith(image.manifest.segments[0]!.sha256.slice(0, 12))).toBe(true);
  });

  test('no args and no archive size', async () => {
    const input = sampleInput();
    input.args = [];
    const text = describeImage(await readImage(await writeImage(input)));
    expect(text).toMatch(/^args: +\(none\)$/m);
    expect(text).not.toMatch(/image size/);
  });
});
