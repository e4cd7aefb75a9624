/**
 * The assets packer (src/assets.ts) and the denali.json `assets` field: blob layout, order,
 * alignment, determinism, symlink and size limits.
 */
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ASSET_MAGIC,
  BuildError,
  MAX_ASSET_BYTES,
  collectAssets,
  packAssets,
  readAssetBlob,
  validateServiceConfig,
} from '../src/index.js';
import { freshDir } from './helpers.js';

/** Write files {relative path: content} under a fresh directory; returns it. */
async function tree(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await freshDir('assets-');
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(join(dir, p, '..'), { recursive: true });
    writeFileSync(join(dir, p), data);
  }
  return dir;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

describe('packAssets', () => {
  it('lays out header, sorted entries, NUL-terminated strings and 16-byte aligned data', async () => {
    const dir = await tree({ 'b.txt': 'bee', 'a/z.html': '<p>z</p>', 'a.css': '', 'A.bin': Buffer.from([0, 1, 2, 255]) });
    const blob = packAssets(dir);
    expect(blob.toString('latin1', 0, 8)).toBe(ASSET_MAGIC);
    expect(blob.readUInt32LE(8)).toBe(1);
    expect(blob.readUInt32LE(12)).toBe(4);
    expect(blob.readUInt32LE(16)).toBe(32 + 16 * 4);
    expect(blob.readUInt32LE(28)).toBe(blob.length);
    expect(blob.length % 16).toBe(0);
    const entries = readAssetBlob(blob);
    // Bytewise order: 'A' < 'a', and "a.css" < "a/z.html" because '.' (0x2e) < '/' (0x2f).
    expect(entries.map((e) => e.path)).toEqual(['A.bin', 'a.css', 'a/z.html', 'b.txt']);
    expect(entries.map((e) => Buffer.from(e.data).toString('latin1'))).toEqual(['\x00\x01\x02\xff', '', '<p>z</p>', 'bee']);
    for (let i = 0; i < 4; i++) {
      const e = 32 + 16 * i;
      expect(blob.readUInt32LE(e + 8) % 16).toBe(0);
      expect(blob[blob.readUInt32LE(e) + blob.readUInt32LE(e + 4)]).toBe(0);
    }
  });

  it('is deterministic and independent of file times and creation order', async () => {
    const a = await tree({ 'x/1.txt': 'one', 'y.txt': 'why', 'x/0.txt': 'zero' });
    const b = await tree({ 'y.txt': 'why', 'x/0.txt': 'zero', 'x/1.txt': 'one' });
    const first = packAssets(a);
    expect(packAssets(a).equals(first)).toBe(true);
    expect(packAssets(b).equals(first)).toBe(true);
    writeFileSync(join(b, 'y.txt'), 'whY');
    expect(packAssets(b).equals(first)).toBe(false);
  });

  it('packs an empty tree as a header only', async () => {
    const dir = await freshDir('empty-');
    const blob = packAssets(dir);
    expect(blob.length).toBe(32);
    expect(readAssetBlob(blob)).toEqual([]);
  });

  it('follows symlinks inside the tree and rejects ones leading out of it', async () => {
    const dir = await tree({ 'real/doc.txt': 'inside', 'other.txt': 'x' });
    symlinkSync('real/doc.txt', join(dir, 'link.txt'));
    symlinkSync('real', join(dir, 'alias'));
    expect(collectAssets(dir).map((f) => f.path)).toEqual(['alias/doc.txt', 'link.txt', 'other.txt', 'real/doc.txt']);
    const outside = await tree({ 'secret.txt': 'no' });
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'escape.txt'));
    const err = errorOf(() => packAssets(dir));
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toMatch(/symlink points outside the assets directory: .*escape\.txt/);
  });

  it('rejects broken symlinks and symlink cycles', async () => {
    const dir = await tree({ 'a.txt': 'a' });
    symlinkSync('missing', join(dir, 'dangling'));
    expect(errorOf(() => collectAssets(dir)).message).toMatch(/broken symlink: .*dangling/);
    const dir2 = await tree({ 'sub/a.txt': 'a' });
    symlinkSync('..', join(dir2, 'sub', 'up'));
    expect(errorOf(() => collectAssets(dir2)).message).toMatch(/symlink cycle/);
  });

  it('rejects trees over the size limit before reading them', async () => {
    expect(MAX_ASSET_BYTES).toBe(64 * 1024 * 1024);
    const dir = await freshDir('huge-');
    writeFileSync(join(dir, 'huge.bin'), '');
    truncateSync(join(dir, 'huge.bin'), MAX_ASSET_BYTES + 1); // sparse: costs no disk
    const err = errorOf(() => collectAssets(dir));
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toMatch(/more than 67108864 bytes \(64 MiB\)/);
    const small = await tree({ 'a.bin': Buffer.alloc(10), 'b.bin': Buffer.alloc(10) });
    expect(() => collectAssets(small, { maxBytes: 20 })).not.toThrow();
    expect(() => collectAssets(small, { maxBytes: 19 })).toThrow(BuildError);
  });

  it('readAssetBlob rejects damaged blobs', async () => {
    const blob = packAssets(await tree({ 'a.txt': 'aaa', 'b.txt': 'bbb' }));
    const bad = (mutate: (b: Buffer) => void): void => {
      const copy = Buffer.from(blob);
      mutate(copy);
      expect(() => readAssetBlob(copy)).toThrow(/asset blob/);
    };
    bad((b) => b.write('X', 0));
    bad((b) => b.writeUInt32LE(2, 8));
    bad((b) => b.writeUInt32LE(b.length + 16, 28));
    bad((b) => b.writeUInt32LE(b.length, 32 + 8)); // data offset past the end
    bad((b) => b.writeUInt32LE(b.readUInt32LE(32), 48)); // both entries name the same path
  });
});

describe("denali.json 'assets'", () => {
  async function service(extra: Record<string, unknown>, dirs: string[] = []): Promise<{ dir: string; json: Record<string, unknown> }> {
    const dir = await tree({ 'main.c': 'int main(void){return 0;}\n' });
    for (const d of dirs) mkdirSync(join(dir, d), { recursive: true });
    return { dir, json: { name: 'svc', sources: ['main.c'], ...extra } };
  }

  it('defaults to assets/ when it exists, else none', async () => {
    const a = await service({}, ['assets']);
    expect(validateServiceConfig(a.json, a.dir).assets).toBe(join(a.dir, 'assets'));
    const b = await service({});
    expect(validateServiceConfig(b.json, b.dir).assets).toBeUndefined();
  });

  it('takes a relative directory, or false for none', async () => {
    const a = await service({ assets: 'www/root' }, ['www/root', 'assets']);
    expect(validateServiceConfig(a.json, a.dir).assets).toBe(join(a.dir, 'www/root'));
    const b = await service({ assets: false }, ['assets']);
    expect(validateServiceConfig(b.json, b.dir).assets).toBeUndefined();
  });

  it('rejects missing, absolute and non-string values in one line', async () => {
    const s = await service({});
    const msg = (assets: unknown): string => errorOf(() => validateServiceConfig({ ...s.json, assets }, s.dir)).message;
    expect(msg('nope')).toBe("denali.json: 'assets': directory not found: nope");
    expect(msg('/abs')).toBe("denali.json: 'assets' (/abs) must be relative to the service directory");
    expect(msg(3)).toMatch(/^denali\.json: 'assets' must be a directory path/);
    expect(msg(true)).toMatch(/^denali\.json: 'assets' must be a directory path/);
    writeFileSync(join(s.dir, 'file'), '');
    expect(msg('file')).toBe("denali.json: 'assets': directory not found: file");
  });
});
