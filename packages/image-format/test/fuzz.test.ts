/**
 * Fuzzing readImage: seeded truncations, byte flips, block shuffles and structured header
 * damage of a valid image. Every case must either read (and then satisfy the image invariants)
 * or throw ImageError -- never another exception, never a hang.
 *
 * Reproduce a failure with DNI_FUZZ_SEED=<seed printed in the failure message>.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { ImageError, readImage, sha256Hex, validateManifest, writeImage, type DenaliImage } from '../src/index.js';
import { TAR_BLOCK } from '../src/archive.js';
import { fixChecksum, headerOffsets, sampleInput } from './helpers.js';

const BASE_SEED = Number(process.env['DNI_FUZZ_SEED'] ?? 0x5eed_d1a1);
/** Longest any single case may take, in ms: reading ~10 KiB must never come near it. */
const CASE_LIMIT_MS = 1000;

/** mulberry32: a tiny seeded PRNG, good enough to pick positions and bytes. */
function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)]! };
}

function checkInvariants(image: DenaliImage): void {
  const m = image.manifest;
  expect(validateManifest(JSON.parse(JSON.stringify(m)))).toEqual(m);
  expect(image.segments).toHaveLength(m.segments.length);
  image.segments.forEach((seg, i) => {
    expect(seg).toBeInstanceOf(Uint8Array);
    expect(seg.length).toBe(m.segments[i]!.fileSize);
    expect(sha256Hex(seg)).toBe(m.segments[i]!.sha256);
  });
}

interface Outcome {
  ok: number;
  codes: Map<string, number>;
}

/** Runs one case; returns the ImageError code or 'ok'. Fails the test with the seed on anything else. */
async function runCase(bytes: Uint8Array, label: string, seed: number, out: Outcome, allowed?: readonly string[]): Promise<string> {
  const start = performance.now();
  let code = 'ok';
  let image: DenaliImage | undefined;
  try {
    image = await readImage(bytes);
  } catch (e) {
    if (!(e instanceof ImageError)) {
      throw new Error(`seed=${seed} case=${label}: readImage threw a non-ImageError: ${(e as Error)?.stack ?? String(e)}`);
    }
    code = e.code;
    expect(e.message, `seed=${seed} case=${label}`).not.toMatch(/\n/);
    out.codes.set(code, (out.codes.get(code) ?? 0) + 1);
    const key = `${label.split(/[#@ ]/)[0]}:${code}`;
    allCodes.set(key, (allCodes.get(key) ?? 0) + 1);
  }
  if (image !== undefined) {
    try {
      checkInvariants(image);
    } catch (e) {
      throw new Error(`seed=${seed} case=${label}: invariant broken after a successful read: ${(e as Error).message}`);
    }
    out.ok++;
  }
  const ms = performance.now() - start;
  expect(ms, `seed=${seed} case=${label}: took ${ms.toFixed(0)} ms`).toBeLessThan(CASE_LIMIT_MS);
  if (allowed) expect(allowed, `seed=${seed} case=${label}: got ${code}`).toContain(code);
  return code;
}

/** Per case kind, how often each error code came up; printed with DNI_FUZZ_STATS=1. */
const allCodes = new Map<string, number>();
afterAll(() => {
  if (process.env['DNI_FUZZ_STATS']) console.log(JSON.stringify([...allCodes]));
});

function newOutcome(): Outcome {
  return { ok: 0, codes: new Map() };
}

describe('fuzzing readImage', () => {
  let image: Uint8Array;
  let offs: number[];
  let manifestLength: number;
  const ready = (async () => {
    image = await writeImage(sampleInput());
    offs = headerOffsets(image);
    manifestLength = offs[1]! - TAR_BLOCK; // manifest.json is the first entry; includes its padding
  })();

  test('truncations of every length class are always reported', { timeout: 20_000 }, async () => {
    await ready;
    const seed = BASE_SEED + 1;
    const r = prng(seed);
    const out = newOutcome();
    const lengths: [string, number][] = [['empty', 0]];
    for (let i = 0; i < 60; i++) lengths.push(['under-one-block', 1 + r.int(TAR_BLOCK - 1)]);
    for (const off of offs) {
      for (let i = 0; i < 40; i++) lengths.push([`mid-header@${off}`, off + 1 + r.int(TAR_BLOCK - 1)]);
      lengths.push([`at-header@${off}`, off]);
    }
    for (let k = 0; k < offs.length; k++) {
      const dataStart = offs[k]! + TAR_BLOCK;
      const dataEnd = k + 1 < offs.length ? offs[k + 1]! : image.length - 2 * TAR_BLOCK;
      for (let i = 0; i < 80; i++) lengths.push([`mid-data#${k}`, dataStart + r.int(dataEnd - dataStart)]);
    }
    const trailer = image.length - 2 * TAR_BLOCK;
    for (let i = 0; i < 60; i++) lengths.push(['in-trailer', trailer + r.int(2 * TAR_BLOCK)]);
    lengths.push(['no-trailer', trailer], ['half-trailer', trailer + TAR_BLOCK], ['one-short', image.length - 1]);
    for (let i = 0; i < 200; i++) lengths.push(['random', r.int(image.length)]);

    for (const [label, len] of lengths) {
      const allowed = len < TAR_BLOCK ? ['not-tar', 'truncated'] : ['truncated'];
      // Copy, so the parser cannot see bytes beyond the cut through a shared buffer.
      await runCase(image.slice(0, len), `${label} len=${len}`, seed, out, allowed);
    }
    expect(out.ok).toBe(0);
    expect(lengths.length).toBeGreaterThan(800);
  });

  test('random byte flips either read with intact invariants or raise ImageError', { timeout: 20_000 }, async () => {
    await ready;
    const seed = BASE_SEED + 2;
    const r = prng(seed);
    const out = newOutcome();
    const N = 1500;
    for (let c = 0; c < N; c++) {
      const bytes = image.slice();
      const flips = r.int(4) === 0 ? 2 + r.int(7) : 1; // mostly single flips, sometimes a burst
      // Bias the flips towards header blocks (the tar structure) and the manifest text (the
      // validation rules); the rest land anywhere.
      for (let f = 0; f < flips; f++) {
        const where = r.next();
        const pos =
          where < 0.4 ? r.pick(offs) + r.int(TAR_BLOCK)
          : where < 0.7 ? TAR_BLOCK + r.int(manifestLength)
          : r.int(bytes.length);
        bytes[pos] = r.next() < 0.5 ? bytes[pos]! ^ (1 << r.int(8)) : r.int(256);
      }
      await runCase(bytes, `flip#${c}`, seed, out);
    }
    // The fuzzer must actually reach many different checks.
    expect(out.codes.size, JSON.stringify([...out.codes])).toBeGreaterThanOrEqual(4);
  });

  test('block shuffles, duplications, deletions and insertions', { timeout: 20_000 }, async () => {
    await ready;
    const seed = BASE_SEED + 3;
    const r = prng(seed);
    const out = newOutcome();
    const nBlocks = image.length / TAR_BLOCK;
    const block = (b: Uint8Array, i: number) => b.slice(i * TAR_BLOCK, (i + 1) * TAR_BLOCK);
    for (let c = 0; c < 600; c++) {
      const blocks = Array.from({ length: nBlocks }, (_, i) => block(image, i));
      const op = r.int(4);
      const i = r.int(blocks.length);
      const j = r.int(blocks.length);
      if (op === 0) [blocks[i], blocks[j]] = [blocks[j]!, blocks[i]!];
      else if (op === 1) blocks.splice(j, 0, blocks[i]!.slice());
      else if (op === 2) blocks.splice(i, 1);
      else {
        const junk = new Uint8Array(TAR_BLOCK);
        for (let k = 0; k < TAR_BLOCK; k++) junk[k] = r.int(256);
        blocks.splice(i, 0, junk);
      }
      const bytes = new Uint8Array(blocks.length * TAR_BLOCK);
      blocks.forEach((b, k) => bytes.set(b, k * TAR_BLOCK));
      await runCase(bytes, `block-op${op}#${c} i=${i} j=${j}`, seed, out);
    }
  });

  test('headers with valid checksums but random fields', { timeout: 20_000 }, async () => {
    await ready;
    const seed = BASE_SEED + 4;
    const r = prng(seed);
    const out = newOutcome();
    // Field offsets/lengths of a ustar header (POSIX): name, mode, uid, gid, size, mtime, typeflag,
    // linkname, magic, version, uname, gname, devmajor, devminor, prefix.
    const fields: [number, number][] = [
      [0, 100], [100, 8], [108, 8], [116, 8], [124, 12], [136, 12], [156, 1],
      [157, 100], [257, 6], [263, 2], [265, 32], [297, 32], [329, 8], [337, 8], [345, 155],
    ];
    const octal = '01234567 \0';
    for (let c = 0; c < 600; c++) {
      const bytes = image.slice();
      const h = r.pick(offs);
      const [fo, fl] = r.pick(fields);
      const style = r.int(3);
      for (let k = 0; k < fl; k++) {
        bytes[h + fo + k] =
          style === 0 ? r.int(256) : style === 1 ? octal.charCodeAt(r.int(octal.length)) : r.pick([0, 0x30, 0x37, 0x80, 0xff]);
      }
      fixChecksum(bytes, h);
      await runCase(bytes, `header@${h} field@${fo} style${style}#${c}`, seed, out);
    }
  });

  test('random garbage of random lengths', { timeout: 20_000 }, async () => {
    const seed = BASE_SEED + 5;
    const r = prng(seed);
    const out = newOutcome();
    for (let c = 0; c < 300; c++) {
      const len = r.int(4) === 0 ? r.int(64) * TAR_BLOCK : r.int(8192);
      const bytes = new Uint8Array(len);
      const dense = r.next() < 0.5;
      for (let k = 0; k < len; k++) bytes[k] = dense || r.int(16) === 0 ? r.int(256) : 0;
      const code = await runCase(bytes, `garbage#${c} len=${len}`, seed, out);
      expect(code, `seed=${seed} garbage#${c}`).not.toBe('ok');
    }
  });
});
