/**
 * A swapped-out VM's mapping kept for the next swap-in of its template (`WarmSlot`): the VM
 * mapped over it sees its template on every page except those the caller overwrites, never a
 * page of the VM that left it.
 */
import { describe, expect, it } from 'vitest';
import { nativeMemoryUsable } from './helpers.js';
import { GuestMemory } from '../../src/boot/guest-memory.js';
import { MemoryTemplate, privatePages, releaseWarm, retireWarm, unmapGuestMemory } from '../../src/memory/template.js';

const SIZE = 4 << 20;
const PAGE = 4096;

const fillPage = (m: GuestMemory, p: number, v: number): void => void m.u8.fill(v, p * PAGE, (p + 1) * PAGE);
const pageIs = (m: GuestMemory, p: number, v: number): boolean => m.u8.subarray(p * PAGE, (p + 1) * PAGE).every((b) => b === v);

describe.skipIf(!nativeMemoryUsable)('kept mappings of swapped-out VMs', () => {
  it('drop the pages the next VM does not overwrite, keep the others for it, and copy on write as before', () => {
    const src = new GuestMemory(SIZE);
    fillPage(src, 300, 0xaa);
    fillPage(src, 301, 0xbb);
    const t = MemoryTemplate.ofMemory(src, 'warm test');
    try {
      const a = t.map();
      for (const p of [299, 300, 301, 302, 304, 400, 401]) fillPage(a, p, 0x11);
      const held = privatePages(a);
      expect([...held]).toEqual([299, 300, 301, 302, 304, 400, 401]);
      const warm = retireWarm(a, held)!;
      expect(warm).toBeDefined();
      // The next VM's record covers 300, 302 and 303 (303 was never private to the first VM).
      const overwrite = Uint32Array.of(300, 302, 303);
      const b = t.mapWarm(warm, overwrite);
      for (const p of overwrite) fillPage(b, p, 0x22);
      expect(pageIs(b, 299, 0)).toBe(true); // template zero again
      expect(pageIs(b, 301, 0xbb)).toBe(true); // template data again
      expect(pageIs(b, 304, 0) && pageIs(b, 400, 0) && pageIs(b, 401, 0)).toBe(true);
      for (const p of overwrite) expect(pageIs(b, p, 0x22)).toBe(true);
      expect([...privatePages(b)]).toEqual([300, 302, 303]);
      // Nothing the first VM wrote is left anywhere.
      for (let p = 0; p < SIZE / PAGE; p++) expect(b.u8.subarray(p * PAGE, (p + 1) * PAGE).includes(0x11), `page ${p}`).toBe(false);
      unmapGuestMemory(b);
    } finally {
      t.close();
    }
  });

  it('serve only their own template, and can be given up', () => {
    const t1 = MemoryTemplate.ofMemory(new GuestMemory(SIZE), 'one');
    const t2 = MemoryTemplate.ofMemory(new GuestMemory(SIZE), 'two');
    try {
      const a = t1.map();
      fillPage(a, 500, 1);
      const warm = retireWarm(a, privatePages(a))!;
      expect(() => t2.mapWarm(warm, new Uint32Array(0))).toThrow(/warm slot of one cannot hold memory of two/);
      releaseWarm(warm);
      const b = t1.map(); // a fresh mapping, possibly of the same parked slot: no page of a
      expect(pageIs(b, 500, 0)).toBe(true);
      unmapGuestMemory(b);
    } finally {
      t1.close();
      t2.close();
    }
  });
});
