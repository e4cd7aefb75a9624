/**
 * Which swap-in mechanism is fastest on this host (issue 8): for records of K private pages
 * scattered over a 12 MiB guest memory whose other pages come from a shared template,
 *  (a) "read": map the template privately, then one preadv of the record's pages over it
 *      (what Yakima does);
 *  (b) "mmap": map the template, then map each run of the VM's pages from a sparse swap file
 *      privately over it (MAP_FIXED), letting the kernel fault them in on first touch
 *      (Firecracker's snapshot restore), then touch them as the guest would;
 *  (c) "kept": one preadv into a mapping whose pages are already private (a swapped-out VM's
 *      mapping kept for the next swap-in, `WarmSlot`): no page fault, new page or
 *      copy-on-write copy.
 * Each is timed to the point where every page has been touched once. Also timed: freeing
 * mapping (a) afterwards (munmap), which a swap-in over a kept mapping does not pay.
 */
import { closeSync, ftruncateSync, openSync, readvSync, writeSync, writevSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

const PAGE = 4096;
const SIZE = 12 << 20;
const PROT_RW = 3;
const MAP_PRIVATE = 2;
const MAP_FIXED = 0x10;
const MAP_NORESERVE = 0x4000;

export function compareMechanisms(dir: string): void {
  const koffi = createRequire(resolve(import.meta.dirname, '../../yakima/package.json'))('koffi');
  const lib = koffi.load('libc.so.6');
  const mmap = lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)');
  const munmap = lib.func('int munmap(void *addr, size_t length)');
  const memfd = lib.func('int memfd_create(const char *name, unsigned int flags)');
  const tfd = memfd('bench-template', 1) as number;
  ftruncateSync(tfd, SIZE);
  const junk = Buffer.alloc(2 << 20, 0x5a);
  writeSync(tfd, junk, 0, junk.length, 1 << 20); // an "image" of 2 MiB at 1 MiB

  for (const k of [16, 25, 64, 256]) {
    // K pages: half in runs inside the image, half scattered in heap/stack.
    const pages = new Set<number>();
    for (let i = 0; pages.size < k; i++) pages.add(i % 2 === 0 ? 256 + ((i * 7) % 512) : 1024 + ((i * 131) % 2000));
    const idx = [...pages].sort((a, b) => a - b);
    const data = Buffer.alloc(PAGE, 0xa5);
    const rec = join(dir, `mech-read-${k}`);
    const fd = openSync(rec, 'w');
    writevSync(fd, idx.map(() => data));
    closeSync(fd);
    const sparse = join(dir, `mech-mmap-${k}`);
    const sfd = openSync(sparse, 'w');
    ftruncateSync(sfd, SIZE);
    for (const p of idx) writeSync(sfd, data, 0, PAGE, p * PAGE);
    closeSync(sfd);
    const runs: [number, number][] = [];
    for (const p of idx) {
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === p) last[1]++;
      else runs.push([p, 1]);
    }

    const iters = 300;
    const read: number[] = [];
    const lazy: number[] = [];
    const kept: number[] = [];
    const freed: number[] = [];
    const keptAt = mmap(null, SIZE, PROT_RW, MAP_PRIVATE | MAP_NORESERVE, tfd, 0);
    const keptU8 = new Uint8Array(koffi.view(keptAt, SIZE));
    const keptViews = runs.map(([p, n]) => keptU8.subarray(p * PAGE, (p + n) * PAGE));
    const kfd = openSync(rec, 'r');
    readvSync(kfd, keptViews, 0); // its pages are private from here on
    for (let it = 0; it < iters; it++) {
      // (a) one preadv over the template mapping.
      let t = performance.now();
      let a = mmap(null, SIZE, PROT_RW, MAP_PRIVATE | MAP_NORESERVE, tfd, 0);
      let u8 = new Uint8Array(koffi.view(a, SIZE));
      const rfd = openSync(rec, 'r');
      readvSync(
        rfd,
        runs.map(([p, n]) => u8.subarray(p * PAGE, (p + n) * PAGE)),
        0,
      );
      closeSync(rfd);
      let sum = 0;
      for (const p of idx) sum += u8[p * PAGE]!;
      read.push((performance.now() - t) * 1000);
      t = performance.now();
      munmap(a, SIZE);
      freed.push((performance.now() - t) * 1000);
      // (c) one preadv into the kept mapping.
      t = performance.now();
      readvSync(kfd, keptViews, 0);
      for (const p of idx) sum += keptU8[p * PAGE]!;
      kept.push((performance.now() - t) * 1000);
      // (b) map the sparse file's runs privately over the template, fault in on touch.
      t = performance.now();
      a = mmap(null, SIZE, PROT_RW, MAP_PRIVATE | MAP_NORESERVE, tfd, 0);
      const mfd = openSync(sparse, 'r+');
      for (const [p, n] of runs) mmap(BigInt(a) + BigInt(p * PAGE), n * PAGE, PROT_RW, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, mfd, p * PAGE);
      closeSync(mfd);
      u8 = new Uint8Array(koffi.view(a, SIZE));
      for (const p of idx) sum += u8[p * PAGE]!;
      lazy.push((performance.now() - t) * 1000);
      munmap(a, SIZE);
      if (sum < 0) console.log(sum);
    }
    closeSync(kfd);
    munmap(keptAt, SIZE);
    const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
    console.log(
      `swap-in mechanism, ${k} private pages in ${runs.length} runs: read (preadv into the mapping) median ${med(read).toFixed(0)} µs, mmap-private lazy fault-in median ${med(lazy).toFixed(0)} µs (${runs.length + 1} mappings per VM instead of 1), preadv into a kept mapping median ${med(kept).toFixed(0)} µs; freeing a used mapping median ${med(freed).toFixed(0)} µs`,
    );
  }
  closeSync(tfd);
}
