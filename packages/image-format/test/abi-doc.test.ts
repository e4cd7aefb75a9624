import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HYPERCALL, IRQ, VREG_RO, VREG_RW } from '../src/abi.js';

// docs/architecture.md is written by hand; this keeps its tables equal to the ABI module.
const doc = readFileSync(resolve(import.meta.dirname, '../../../docs/architecture.md'), 'utf8');
const rows = doc.split('\n').filter((l) => l.startsWith('|'));
const hex2 = (n: number): string => '`0x' + n.toString(16).padStart(2, '0') + '`';

describe('docs/architecture.md agrees with abi.ts', () => {
  it.each(Object.entries(VREG_RO))('read-only register %s at offset %i', (name, off) => {
    expect(rows.some((r) => r.includes(`| ${hex2(off)} | ${name} |`))).toBe(true);
  });
  it.each(Object.entries(VREG_RW))('read-write register %s at offset %i', (name, off) => {
    expect(rows.some((r) => r.includes(`| ${hex2(off)} | ${name} |`))).toBe(true);
  });
  it.each(Object.entries(HYPERCALL))('hypercall %s is number %i', (name, n) => {
    expect(rows.some((r) => r.startsWith(`| ${n} | ${name} |`))).toBe(true);
  });
  it.each(Object.entries(IRQ))('interrupt line %s is bit value %i', (name, bit) => {
    expect(rows.some((r) => r.startsWith(`| ${Math.log2(bit)} | ${name} |`))).toBe(true);
  });
});
