import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FileSwapStore } from '../../src/swap/swap-area.js';

/** The swap area's one file of per-VM slots (swap/swap-area.ts). */
describe('FileSwapStore', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const store = () => {
    const d = mkdtempSync(join(tmpdir(), 'denali-swap-area-'));
    dirs.push(d);
    return new FileSwapStore(d);
  };
  const bytes = (n: number, v: number) => new Uint8Array(n).fill(v);
  const readAll = (s: FileSwapStore, id: number, n: number) => {
    const out = new Uint8Array(n);
    s.read(id, (read) => read([out], 0));
    return out;
  };
  const fileSize = (s: FileSwapStore) => statSync(join(s.where, 'vms.swap')).size;

  it('keeps each VM its own slot, overwritten in place, and reuses freed slots', () => {
    const s = store();
    expect(s.write(1, [bytes(5000, 1), bytes(3000, 2)])).toBe(8000);
    expect(s.write(2, [bytes(70_000, 3)])).toBe(70_000);
    expect(readdirSync(s.where)).toEqual(['vms.swap']);
    const size = fileSize(s);
    expect(readAll(s, 1, 8000).slice(4999, 5001)).toEqual(Uint8Array.of(1, 2));
    expect(readAll(s, 2, 70_000).every((b) => b === 3)).toBe(true);
    s.write(1, [bytes(6000, 4)]); // fits its slot: overwritten in place
    expect(readAll(s, 1, 6000).every((b) => b === 4)).toBe(true);
    s.remove(1);
    s.write(3, [bytes(9000, 5)]); // takes VM 1's freed slot
    expect(fileSize(s)).toBe(size);
    expect(readAll(s, 3, 9000).every((b) => b === 5)).toBe(true);
    s.close();
    expect(readdirSync(join(s.where, '..'))).toEqual([]);
  });

  it('refuses reads past a record and of records it does not hold', () => {
    const s = store();
    s.write(7, [bytes(100, 9)]);
    expect(() => s.read(7, (read) => read([new Uint8Array(101)], 0))).toThrow(/swap record of VM 7 is truncated at byte 100/);
    expect(() => s.read(7, (read) => read([new Uint8Array(10)], 95))).toThrow(/truncated/);
    expect(() => s.read(8, () => 0)).toThrow(/no swap record of VM 8 .*ENOENT/);
    s.remove(7);
    expect(() => s.read(7, () => 0)).toThrow(/ENOENT/);
    s.close();
  });
});
