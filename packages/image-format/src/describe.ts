/**
 * The human-readable form of an image, as printed by `denali inspect`.
 * (`denali inspect --json` prints `JSON.stringify(image.manifest, null, 2)` instead.)
 */

import { PAGE_SIZE } from './abi.js';
import type { DenaliImage, SegmentFlags } from './manifest.js';
import { hex } from './validate.js';

const UNITS = ['KiB', 'MiB', 'GiB', 'TiB'] as const;

/**
 * Formats a byte count with binary units: `"512 B"`, `"1.5 KiB"`, `"16 MiB"`, `"1 GiB"`.
 * Whole values print without decimals, others with one decimal (rounded). Negative or
 * non-finite inputs print as `"<n> B"`.
 *
 * @param n a size in bytes.
 */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 1024) return `${n} B`;
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  let text = Number.isInteger(value) ? String(value) : value.toFixed(1);
  if (text === '1024.0' && unit < UNITS.length - 1) {
    unit++;
    text = '1';
  }
  if (text.endsWith('.0')) text = text.slice(0, -2);
  return `${text} ${UNITS[unit]}`;
}

/** Options of `describeImage`. */
export interface DescribeOptions {
  /** Size of the `.dni` file in bytes, if known; printed as the image size. */
  archiveBytes?: number;
}

/**
 * Renders an image as plain text with aligned columns and no colors: name, architecture,
 * ABI and format versions, entry point (hex), memory and stack size (binary units and hex),
 * default args, a segment table (load range `[start, end)` in hex, file size, memory size,
 * flags as `r-x`, the first 12 hex digits of the SHA-256) and the total sizes.
 *
 * Sizes are in bytes rendered with `formatBytes`; addresses are guest-physical.
 *
 * @returns several lines, ending with a newline.
 */
export function describeImage(image: DenaliImage, options: DescribeOptions = {}): string {
  const m = image.manifest;
  const fileTotal = m.segments.reduce((sum, s) => sum + s.fileSize, 0);
  const memTotal = m.segments.reduce((sum, s) => sum + s.memorySize, 0);
  const lastByte = m.segments.reduce((end, s) => Math.max(end, s.loadAddress + s.memorySize), 0);
  const imageEnd = Math.ceil(lastByte / PAGE_SIZE) * PAGE_SIZE;

  const summary: [string, string][] = [
    ['name', m.name],
    ['architecture', m.architecture],
    ['abi version', String(m.abiVersion)],
    ['format version', String(m.formatVersion)],
    ['entry point', hex(m.entryPoint)],
    ['memory', `${formatBytes(m.memorySize)} (${hex(m.memorySize)})`],
    ['stack', `${formatBytes(m.stackSize)} at [${hex(m.memorySize - m.stackSize)}, ${hex(m.memorySize)})`],
    ['args', m.args.length === 0 ? '(none)' : m.args.map(quoteArg).join(' ')],
  ];
  const lines = alignColumns(summary.map(([k, v]) => [`${k}:`, v]));

  lines.push('', `segments (${m.segments.length}):`);
  const table: string[][] = [['#', 'range [start, end)', 'file size', 'mem size', 'flags', 'sha256']];
  m.segments.forEach((s, i) => {
    table.push([
      String(i),
      `${hex(s.loadAddress)}-${hex(s.loadAddress + s.memorySize)}`,
      formatBytes(s.fileSize),
      formatBytes(s.memorySize),
      longFlags(s.flags),
      s.sha256.slice(0, 12),
    ]);
  });
  lines.push(...alignColumns(table, [true, false, true, true, false, false]).map((l) => `  ${l}`));

  lines.push('');
  const totals: [string, string][] = [
    ['segment data', `${formatBytes(fileTotal)} (${fileTotal} bytes) stored, ${formatBytes(memTotal)} in memory`],
    ['image end', `${hex(imageEnd)} (page-aligned; the heap starts here)`],
  ];
  if (options.archiveBytes !== undefined) {
    totals.push(['image size', `${formatBytes(options.archiveBytes)} (${options.archiveBytes} bytes)`]);
  }
  lines.push(...alignColumns(totals.map(([k, v]) => [`${k}:`, v])));
  return `${lines.join('\n')}\n`;
}

/** `"rx"` → `"r-x"`. */
function longFlags(flags: SegmentFlags): string {
  return `${flags.includes('r') ? 'r' : '-'}${flags.includes('w') ? 'w' : '-'}${flags.includes('x') ? 'x' : '-'}`;
}

/** Plain words print as-is; anything else as a JSON string, so spaces and controls stay visible. */
function quoteArg(a: string): string {
  return /^[A-Za-z0-9_./:=,+@%-]+$/.test(a) ? a : JSON.stringify(a);
}

/** Pads each column to its widest cell; `rightAlign[i]` right-aligns column i. No trailing spaces. */
function alignColumns(rows: string[][], rightAlign: boolean[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) =>
    row
      .map((cell, i) => {
        const last = i === row.length - 1;
        if (rightAlign[i]) return cell.padStart(widths[i]!);
        return last ? cell : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd(),
  );
}
