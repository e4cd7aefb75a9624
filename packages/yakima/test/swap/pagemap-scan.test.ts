import { openSync, closeSync, writeSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nativeMemoryUsable } from './helpers.js';
import { LINUX, libc } from '../../src/cpu/kvm/libc.js';
import { createMemfd, ftruncateFd, readPrivatePages, scanPrivatePages } from '../../src/memory/native.js';

const PAGES = 64;

/**
 * The PAGEMAP_SCAN path of `privatePageIndices` (swap-out, budget measurements) must find the
 * same private pages as reading /proc/self/pagemap: a private mapping of a memory file whose
 * pages were read (shared with the file), written (copy-on-write copies) or never touched.
 */
describe.skipIf(!nativeMemoryUsable)('private page scan', () => {
  it('agrees with the pagemap entries on a private mapping of a memory file', (ctx) => {
    const c = libc();
    const fd = createMemfd('pagemap-scan-test');
    ftruncateFd(fd, PAGES * 4096); // no page past the end (SIGBUS)
    const page = new Uint8Array(4096).fill(7);
    for (let p = 0; p < PAGES; p += 2) writeSync(fd, page, 0, page.length, p * 4096); // every other page holds data
    const addr = c.mmap(null, PAGES * 4096, LINUX.PROT_READ | LINUX.PROT_WRITE, LINUX.MAP_PRIVATE, fd, 0);
    const pagemap = openSync('/proc/self/pagemap', 'r');
    try {
      const view = new Uint8Array(c.view(addr, PAGES * 4096));
      let sum = 0;
      for (const p of [0, 1, 2, 3, 10, 11, 40]) sum += view[p * 4096]!; // read: shared (or the zero page)
      for (const p of [4, 5, 6, 20, 21, 22, 23, 63]) view[p * 4096 + 5] = sum & 0xff; // written: private copies
      const scanned = scanPrivatePages(pagemap, addr, PAGES);
      if (scanned === undefined) ctx.skip('PAGEMAP_SCAN is not available on this kernel (Linux 6.7+)');
      const read = readPrivatePages(pagemap, addr, PAGES);
      expect([...read]).toEqual(expect.arrayContaining([4, 5, 6, 20, 21, 22, 23, 63]));
      expect([...scanned!]).toEqual([...read]);
    } finally {
      closeSync(pagemap);
      c.munmap(addr, PAGES * 4096);
      closeSync(fd);
    }
  });
});
