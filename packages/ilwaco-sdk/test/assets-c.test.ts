/**
 * The C side of assets (lib/assets.c, include/ilwaco/assets.h) and their path into images:
 * one probe program exercises lookup, normalization, iteration and the read API. It runs
 * compiled for the host against the same blob (always), and as an Ilwaco guest under hostrun
 * (where this machine allows it); both must print what this file predicts. Images built from
 * the same tree must be byte-identical and carry the blob in their read-only segment.
 */
import { execa } from 'execa';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readImageFile } from '@denali/image-format';
import { assetsAssembly, buildService, packAssets, sdkPaths } from '../src/index.js';
import { buildElf, freshDir, getHostRun, runElf } from './helpers.js';

const PROBE = String.raw`
#include <ilwaco/assets.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static unsigned long fnv(const unsigned char *p, size_t n) {
    unsigned long h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = ((h ^ p[i]) * 16777619u) & 0xffffffffu;
    return h;
}

int main(void) {
    size_t n = ilwaco_asset_count();
    printf("count %lu\n", (unsigned long)n);
    for (size_t i = 0; i < n; i++) {
        const struct ilwaco_asset *a = ilwaco_asset_at(i);
        printf("entry %s %lu %lu %d\n", a->path, (unsigned long)a->size, fnv(a->data, a->size), (int)((unsigned long)a->data % 16));
    }
    printf("at-end %s\n", ilwaco_asset_at(n) ? "object" : "NULL");
    static const char *finds[] = {"index.html", "/index.html", "//docs//a.txt", "./docs/./a.txt", "docs/../index.html",
                                  "docs", "docs/", "missing", "", "/", "docs/a.txt/"};
    for (size_t i = 0; i < sizeof finds / sizeof finds[0]; i++) {
        const struct ilwaco_asset *a = ilwaco_asset_find(finds[i]);
        printf("find [%s] %s\n", finds[i], a ? a->path : "NULL");
    }
    printf("find-null %s\n", ilwaco_asset_find(NULL) ? "object" : "NULL");
    /* Every entry, and near misses (last byte +1/-1, one byte shorter, one longer), against a
     * linear scan: the binary search skips shared prefixes, so probe around them. */
    int each = 1;
    for (size_t i = 0; i < n; i++) {
        const struct ilwaco_asset *a = ilwaco_asset_at(i);
        if (ilwaco_asset_find(a->path) != a) each = 0;
        size_t l = strlen(a->path);
        for (int v = 0; v < 4; v++) {
            char q[80];
            memcpy(q, a->path, l + 1);
            if (v == 0) q[l - 1]++;
            if (v == 1) q[l - 1]--;
            if (v == 2) q[l - 1] = 0;
            if (v == 3) q[l] = 'x', q[l + 1] = 0;
            const struct ilwaco_asset *want = NULL;
            for (size_t j = 0; j < n; j++)
                if (strcmp(ilwaco_asset_at(j)->path, q) == 0) want = ilwaco_asset_at(j);
            if (ilwaco_asset_find(q) != want) {
                printf("find-each [%s] wrong\n", q);
                each = 0;
            }
        }
    }
    printf("find-each %s\n", each ? "ok" : "FAIL");
    static const char *dirs[] = {"", "/", "docs", "docs/", "/docs/sub", "doc", "index.html", "docs/a.txt", "../x"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) printf("isdir [%s] %d\n", dirs[i], ilwaco_asset_isdir(dirs[i]));
    static const char *norms[] = {"/a//b/./c/", "..", "a/..b", "/", "./x/.", "a/b/../c"};
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        char out[64];
        int r = ilwaco_asset_normalize(norms[i], out, sizeof out);
        printf("norm [%s] %d [%s]\n", norms[i], r, out);
    }
    char tiny[4];
    printf("norm-small %d\n", ilwaco_asset_normalize("abcd", tiny, sizeof tiny));

    ilwaco_asset_file f;
    int ri;
    unsigned char buf[100];
    printf("open %d\n", ilwaco_asset_open(&f, "/docs/sub/b.bin"));
    long got = ilwaco_asset_read(&f, buf, sizeof buf);
    printf("read %ld %lu\n", got, fnv(buf, got > 0 ? (size_t)got : 0));
    printf("seek-end %ld\n", ilwaco_asset_seek(&f, -10, ILWACO_ASSET_SEEK_END));
    got = ilwaco_asset_read(&f, buf, sizeof buf);
    printf("read %ld %lu\n", got, fnv(buf, got > 0 ? (size_t)got : 0));
    printf("read-eof %ld\n", ilwaco_asset_read(&f, buf, sizeof buf));
    printf("seek-cur %ld\n", ilwaco_asset_seek(&f, -2550, ILWACO_ASSET_SEEK_CUR));
    errno = 0;
    long rl = ilwaco_asset_seek(&f, -1, ILWACO_ASSET_SEEK_SET);
    printf("seek-neg %ld %d\n", rl, errno == EINVAL);
    printf("seek-past %ld\n", ilwaco_asset_seek(&f, 5000, ILWACO_ASSET_SEEK_SET));
    printf("read-past %ld\n", ilwaco_asset_read(&f, buf, sizeof buf));
    printf("close %d\n", ilwaco_asset_close(&f));
    errno = 0;
    ri = ilwaco_asset_close(&f);
    printf("close-again %d %d\n", ri, errno == EBADF);
    errno = 0;
    ri = ilwaco_asset_open(&f, "nope");
    printf("open-missing %d %d\n", ri, errno == ENOENT);
    errno = 0;
    ri = ilwaco_asset_open(&f, "docs");
    printf("open-dir %d %d\n", ri, errno == ENOENT);
    errno = 0;
    ri = ilwaco_asset_open(&f, "../index.html");
    printf("open-dotdot %d %d\n", ri, errno == EINVAL);
    return 0;
}
`;

const FILES: Record<string, Buffer> = {
  'index.html': Buffer.from('<h1>hello</h1>\n'),
  'docs/a.txt': Buffer.from('A'.repeat(100)),
  'docs/sub/b.bin': Buffer.from(Array.from({ length: 2560 }, (_, i) => (i * 7) & 0xff)),
  'z.txt': Buffer.alloc(0),
  // Paths sharing long prefixes (the lookup skips common prefixes), a path that is a prefix
  // of another, and a directory whose name extends another's.
  ...Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`page-${String(i).padStart(2, '0')}.html`, Buffer.from(`page ${i}`)])),
  'docs/a': Buffer.from('short'),
  'docs/ab.txt': Buffer.from('ab'),
  'docs/sub2/c.txt': Buffer.from('c'),
};

function fnv(b: Uint8Array): number {
  let h = 2166136261;
  for (const x of b) h = Math.imul(h ^ x, 16777619) >>> 0;
  return h;
}

/** What the probe must print for FILES. */
function expected(): string {
  const paths = Object.keys(FILES).sort();
  const b = FILES['docs/sub/b.bin']!;
  const lines = [`count ${paths.length}`, ...paths.map((p) => `entry ${p} ${FILES[p]!.length} ${fnv(FILES[p]!)} 0`), 'at-end NULL'];
  const finds: [string, string][] = [
    ['index.html', 'index.html'],
    ['/index.html', 'index.html'],
    ['//docs//a.txt', 'docs/a.txt'],
    ['./docs/./a.txt', 'docs/a.txt'],
    ['docs/../index.html', 'NULL'],
    ['docs', 'NULL'],
    ['docs/', 'NULL'],
    ['missing', 'NULL'],
    ['', 'NULL'],
    ['/', 'NULL'],
    ['docs/a.txt/', 'NULL'],
  ];
  lines.push(...finds.map(([q, r]) => `find [${q}] ${r}`), 'find-null NULL', 'find-each ok');
  const dirs: [string, number][] = [['', 1], ['/', 1], ['docs', 1], ['docs/', 1], ['/docs/sub', 1], ['doc', 0], ['index.html', 0], ['docs/a.txt', 0], ['../x', 0]];
  lines.push(...dirs.map(([q, r]) => `isdir [${q}] ${r}`));
  lines.push('norm [/a//b/./c/] 6 [a/b/c/]', 'norm [..] -1 []', 'norm [a/..b] 5 [a/..b]', 'norm [/] 0 []', 'norm [./x/.] 1 [x]', 'norm [a/b/../c] -1 []');
  lines.push('norm-small -2');
  lines.push('open 0', `read 100 ${fnv(b.subarray(0, 100))}`, `seek-end ${b.length - 10}`, `read 10 ${fnv(b.subarray(b.length - 10))}`, 'read-eof 0');
  lines.push('seek-cur 10', 'seek-neg -1 1', 'seek-past 5000', 'read-past 0', 'close 0', 'close-again -1 1');
  lines.push('open-missing -1 1', 'open-dir -1 1', 'open-dotdot -1 1');
  return `${lines.join('\n')}\n`;
}

/** A service directory: denali.json, probe.c and the FILES tree under assets/. */
async function probeService(): Promise<string> {
  const dir = await freshDir('probe-');
  writeFileSync(join(dir, 'denali.json'), JSON.stringify({ name: 'assetprobe', sources: ['probe.c'], memory: '4M' }));
  writeFileSync(join(dir, 'probe.c'), PROBE);
  for (const [p, data] of Object.entries(FILES)) {
    mkdirSync(join(dir, 'assets', p, '..'), { recursive: true });
    writeFileSync(join(dir, 'assets', p), data);
  }
  return dir;
}

/** Compile the probe for the host with lib/assets.c, optionally linking a blob of `assetsDir`. */
async function nativeProbe(dir: string, assetsDir?: string): Promise<string> {
  const inc = join(dir, 'native-include');
  await mkdir(join(inc, 'ilwaco'), { recursive: true });
  await copyFile(join(sdkPaths().includeDir, 'ilwaco', 'assets.h'), join(inc, 'ilwaco', 'assets.h'));
  const srcs = [join(dir, 'probe.c'), join(sdkPaths().libDir, 'assets.c')];
  if (assetsDir) {
    writeFileSync(join(dir, 'assets.blob'), packAssets(assetsDir));
    writeFileSync(join(dir, 'assets.S'), assetsAssembly(join(dir, 'assets.blob')));
    srcs.push(join(dir, 'assets.S'));
  }
  const exe = join(dir, assetsDir ? 'probe-native' : 'probe-empty');
  await execa('gcc', ['-O2', '-Wall', '-Werror', '-I', inc, ...srcs, '-o', exe]);
  return exe;
}

describe('lib/assets.c', () => {
  it('compiled for the host, finds, normalizes, iterates and reads as documented', async () => {
    const dir = await probeService();
    const r = await execa(await nativeProbe(dir, join(dir, 'assets')), { reject: false });
    expect(r.stdout + '\n').toBe(expected());
    expect(r.exitCode).toBe(0);
  });

  it('without an assets blob, the weak symbols give an empty table', async () => {
    const dir = await probeService();
    const r = await execa(await nativeProbe(dir), { reject: false });
    expect(r.stdout).toMatch(/^count 0\nat-end NULL\nfind \[index.html\] NULL\n/);
    expect(r.stdout).toMatch(/^isdir \[\/\] 0$/m);
    expect(r.exitCode).toBe(0);
  });

  it('builds byte-identical images from the same tree, with the blob in the read-only segment', async () => {
    const dir = await probeService();
    const out = await freshDir('img-');
    const a = await buildService(dir, { out: join(out, 'a.dni'), quiet: true });
    const b = await buildService(dir, { out: join(out, 'b.dni'), quiet: true });
    expect(readFileSync(a.imagePath).equals(readFileSync(b.imagePath))).toBe(true);
    expect(a.assets).toEqual({ paths: Object.keys(FILES).sort(), bytes: Object.values(FILES).reduce((n, b) => n + b.length, 0) });
    const blob = packAssets(join(dir, 'assets'));
    const img = await readImageFile(a.imagePath);
    const ro = img.manifest.segments.findIndex((s) => s.flags === 'r');
    expect(ro).toBeGreaterThanOrEqual(0);
    expect(Buffer.from(img.segments[ro]!).indexOf(blob)).toBeGreaterThanOrEqual(0);
    // A changed file changes the image.
    writeFileSync(join(dir, 'assets', 'z.txt'), 'now not empty');
    const c = await buildService(dir, { out: join(out, 'c.dni'), quiet: true });
    expect(readFileSync(c.imagePath).equals(readFileSync(a.imagePath))).toBe(false);
  });

  it('runs the same probe as an Ilwaco guest under hostrun with the same output', async (ctx) => {
    const hr = await getHostRun();
    if (typeof hr === 'string') ctx.skip();
    if (typeof hr === 'string') return;
    const dir = await probeService();
    const { path, config } = await buildElf(dir);
    const r = await runElf(hr, path, [config.name], { memory: config.memory, stack: config.stack });
    expect(r.stdout).toBe(expected());
    expect(r.exitCode).toBe(0);
  });
});
