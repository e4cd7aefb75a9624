/**
 * Generates `packages/ilwaco-sdk/include/denali/abi.h` from the guest ABI in
 * `packages/image-format/src/abi.ts` (the single source of truth shared with Yakima).
 *
 * Run with `pnpm gen:abi`. `test/abi-header.test.ts` fails when the committed header
 * differs from what {@link generateAbiHeader} produces.
 *
 * Every `export const` of abi.ts is translated, in source order, with its doc comment.
 * Naming: a top-level number `FOO` becomes `DENALI_FOO`; a member `BAR` of a table `FOO`
 * becomes `DENALI_FOO_BAR`, except for `LAYOUT`, whose members are emitted unprefixed
 * (`DENALI_VREG_RO_BASE`). Strings and string arrays (`C_ABI_FLAGS`) become C string
 * literals. Tables that describe memory blocks (they have a `SIZE` member: `EXIT_ARGS`,
 * `IDLE_ARGS`, `CONSOLE_ARGS`, `UPCALL_FRAME`, ...) also become C structs of u16/u32/u64 fields
 * with `_Static_assert`s on every offset and on the size.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as abi from '@denali/image-format';

/** Absolute path of the generated header inside the SDK. */
export const ABI_HEADER_PATH = resolve(dirname(fileURLToPath(import.meta.url)), '../include/denali/abi.h');

/** Path of abi.ts, next to the image-format package's entry point. */
const ABI_SOURCE = resolve(dirname(fileURLToPath(import.meta.resolve('@denali/image-format'))), 'abi.ts');

/**
 * Every `export const` of abi.ts in source order, each with the text of the doc comment
 * right before it (empty when none). The values come from the package's exports (the
 * package index re-exports all of abi.ts); a name the package does not export is an error.
 */
function abiExports(mod: Record<string, unknown>): { name: string; doc: string }[] {
  const src = readFileSync(ABI_SOURCE, 'utf8');
  const found: { name: string; doc: string }[] = [];
  const re = /(?:\/\*\*((?:[^*]|\*(?!\/))*)\*\/\s*)?export const (\w+)/g;
  for (const m of src.matchAll(re)) {
    const doc = (m[1] ?? '')
      .split('\n')
      .map((l) => l.replace(/^\s*\*? ?/, '').trimEnd())
      .filter((l, i, all) => l !== '' || (i > 0 && i < all.length - 1))
      .join('\n')
      .trim();
    found.push({ name: m[2]!, doc });
  }
  for (const e of found) if (!(e.name in mod)) throw new Error(`@denali/image-format does not export abi.ts's ${e.name}`);
  if (found.length === 0) throw new Error(`no exports found in ${ABI_SOURCE}`);
  return found;
}

function comment(doc: string): string[] {
  if (!doc) return [];
  const lines = doc.split('\n');
  if (lines.length === 1) return [`/* ${lines[0]!.replaceAll('*/', '* /')} */`];
  return ['/*', ...lines.map((l) => (l ? ` * ${l.replaceAll('*/', '* /')}` : ' *')), ' */'];
}

/** Tables whose members are emitted without the table name. */
const UNPREFIXED_TABLES = new Set(['LAYOUT']);

function hex(n: number, topLevel = false): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new Error(`abi value ${n} is not a u32`);
  }
  // Offsets and addresses in hex; counts and round decimal quantities (TICK_RATE) in decimal.
  if (n < 10 || n % 1000 === 0 || (topLevel && n < 0x1000)) return String(n);
  return `0x${n.toString(16)}`;
}

function define(name: string, value: string): string {
  return `#define ${name.padEnd(40)} ${value}`;
}

function cString(s: string): string {
  return JSON.stringify(s);
}

/** C struct for an argument block: fields sorted by offset; each field's width is the gap to the next. */
function structFor(table: string, members: Record<string, number>): string[] {
  const size = members.SIZE;
  if (size === undefined) throw new Error(`${table} has no SIZE`);
  const fields = Object.entries(members)
    .filter(([k]) => k !== 'SIZE')
    .sort((a, b) => a[1] - b[1]);
  const tag = `denali_${table.toLowerCase()}`;
  const lines = [`/** Memory block \`${table}\` (offsets in abi.ts). */`, `struct ${tag} {`];
  const asserts: string[] = [];
  let expected = 0;
  fields.forEach(([name, off], i) => {
    const end = i + 1 < fields.length ? fields[i + 1]![1] : size;
    const width = end - off;
    if (off !== expected) throw new Error(`${table}.${name}: gap before offset ${off}`);
    const type = width === 2 ? 'uint16_t' : width === 4 ? 'uint32_t' : width === 8 ? 'uint64_t' : undefined;
    if (type === undefined) throw new Error(`${table}.${name}: unsupported width ${width}`);
    lines.push(`    ${type} ${name.toLowerCase()};`);
    asserts.push(
      `_Static_assert(offsetof(struct ${tag}, ${name.toLowerCase()}) == DENALI_${table}_${name}, "${table}.${name}");`,
    );
    expected = end;
  });
  lines.push('};');
  asserts.push(`_Static_assert(sizeof(struct ${tag}) == DENALI_${table}_SIZE, "${table}.SIZE");`);
  return [...lines, ...asserts, ''];
}

/** Produce the full text of `include/denali/abi.h` from the ABI module. Pure; deterministic. */
export function generateAbiHeader(): string {
  const mod = abi as unknown as Record<string, unknown>;
  const out: string[] = [
    '/*',
    ' * denali/abi.h: the Denali guest ABI (memory layout, virtual registers, IRQ bits,',
    ' * hypercall numbers and argument blocks, upcall frame, C ABI flags).',
    ' *',
    ' * GENERATED by packages/ilwaco-sdk/scripts/gen-abi-header.ts from',
    ' * packages/image-format/src/abi.ts. DO NOT EDIT: change abi.ts and run `pnpm gen:abi`.',
    ' * Units: addresses and sizes in bytes, times in ticks (1 tick = 1 microsecond).',
    ' * Usable from C and from assembly (.S); the structs are hidden from the assembler.',
    ' */',
    '#ifndef DENALI_ABI_H',
    '#define DENALI_ABI_H',
    '',
  ];
  const structs: string[] = [];
  for (const { name, doc } of abiExports(mod)) {
    const value = mod[name];
    if (typeof value === 'number') {
      out.push('', ...comment(doc), define(`DENALI_${name}`, hex(value, !name.endsWith('_BASE'))));
    } else if (typeof value === 'string') {
      out.push('', ...comment(doc), define(`DENALI_${name}`, cString(value)));
    } else if (Array.isArray(value)) {
      out.push('', ...comment(doc), define(`DENALI_${name}`, cString(value.join(' '))));
    } else if (typeof value === 'object' && value !== null) {
      const members = value as Record<string, number>;
      out.push('', ...comment(doc || name));
      const prefix = UNPREFIXED_TABLES.has(name) ? 'DENALI_' : `DENALI_${name}_`;
      for (const [k, v] of Object.entries(members)) {
        if (typeof v !== 'number') throw new Error(`${name}.${k} is not a number`);
        out.push(define(`${prefix}${k}`, hex(v)));
      }
      if ('SIZE' in members) structs.push(...structFor(name, members));
    } else {
      throw new Error(`cannot translate ${name}`);
    }
  }
  out.push(
    '',
    '#ifndef __ASSEMBLER__',
    '#include <stddef.h>',
    '#include <stdint.h>',
    '',
    '/** A u32 read-only virtual register at byte offset `off` (a DENALI_VREG_RO_* constant). */',
    '#define DENALI_VREG_RO_U32(off) (*(volatile const uint32_t *)(uintptr_t)(DENALI_VREG_RO_BASE + (off)))',
    '/** A u32 read-write virtual register at byte offset `off` (a DENALI_VREG_RW_* constant). */',
    '#define DENALI_VREG_RW_U32(off) (*(volatile uint32_t *)(uintptr_t)(DENALI_VREG_RW_BASE + (off)))',
    '',
    ...structs,
    '#endif /* __ASSEMBLER__ */',
    '',
    '#endif /* DENALI_ABI_H */',
    '',
  );
  return out.join('\n').replace(/\n{3,}/g, '\n\n');
}

function isMain(): boolean {
  const entry = process.argv[1];
  return entry !== undefined && resolve(entry) === fileURLToPath(import.meta.url);
}

if (isMain()) {
  writeFileSync(ABI_HEADER_PATH, generateAbiHeader());
  console.log(`wrote ${ABI_HEADER_PATH}`);
}
