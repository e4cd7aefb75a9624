/**
 * The on-disk form of a swapped-out VM (one record per VM in the swap area), little-endian:
 *
 *   header (32 bytes): magic "DNSW", version, VM id, memory size, page count, backend name
 *     length, vCPU state length, metadata length;
 *   metadata: backend name, vCPU state (each padded to 4 bytes), page indices (u32 each);
 *   pages: the VM's private, non-zero pages (4 KiB each) in index order.
 *
 * Pages still shared with the VM's memory template and pages that are zero where the template
 * is zero are not written: swap-in maps the template again and reads just these pages over it.
 */
import { PAGE_SIZE } from '@denali/image-format';
import type { VcpuState } from '../cpu/vcpu.js';

const MAGIC = 0x57534e44; // "DNSW"
const VERSION = 1;
/** Bytes of the fixed header. */
export const RECORD_HEADER = 32;

const pad4 = (n: number): number => (n + 3) & ~3;

/** What swap-in needs to know about a record before reading it. */
export interface RecordShape {
  pages: number;
  /** Bytes of metadata after the header. */
  metaLength: number;
  /** Total bytes of the record. */
  length: number;
}

/**
 * The pieces of a record (header and metadata copied; pages as views of `memory`, adjacent
 * pages in one view) ready for one writev.
 */
export function encodeRecord(vmId: number, memory: Uint8Array, state: VcpuState, pages: Uint32Array): { chunks: Uint8Array[]; shape: RecordShape } {
  const backend = new TextEncoder().encode(state.backend);
  const metaLength = pad4(backend.length) + pad4(state.bytes.length) + 4 * pages.length;
  const head = new Uint8Array(RECORD_HEADER + metaLength);
  const dv = new DataView(head.buffer);
  [MAGIC, VERSION, vmId, memory.length, pages.length, backend.length, state.bytes.length, metaLength].forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
  let o = RECORD_HEADER;
  head.set(backend, o);
  o += pad4(backend.length);
  head.set(state.bytes, o);
  o += pad4(state.bytes.length);
  for (const p of pages) {
    dv.setUint32(o, p, true);
    o += 4;
  }
  const chunks: Uint8Array[] = [head];
  forEachRun(pages, (first, count) => chunks.push(memory.subarray(first * PAGE_SIZE, (first + count) * PAGE_SIZE)));
  return { chunks, shape: { pages: pages.length, metaLength, length: head.length + pages.length * PAGE_SIZE } };
}

/**
 * Parse the header and metadata of a record read into `head` (RECORD_HEADER + metaLength bytes).
 * @throws Error naming what is wrong when the record does not belong to `vmId` or is malformed.
 */
export function decodeRecordHead(vmId: number, memorySize: number, head: Uint8Array): { state: VcpuState; pages: Uint32Array } {
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const [magic, version, id, size, pages, backendLength, stateLength, metaLength] = Array.from({ length: 8 }, (_, i) => dv.getUint32(i * 4, true));
  if (magic !== MAGIC || version !== VERSION) throw new Error(`swap record of VM ${vmId} has a bad header`);
  if (id !== vmId || size !== memorySize) throw new Error(`swap record of VM ${vmId} belongs to VM ${id} with ${size} bytes of memory`);
  if (pad4(backendLength!) + pad4(stateLength!) + 4 * pages! !== metaLength || RECORD_HEADER + metaLength! > head.length) {
    throw new Error(`swap record of VM ${vmId} has inconsistent lengths`);
  }
  let o = RECORD_HEADER;
  const backend = new TextDecoder().decode(head.subarray(o, o + backendLength!));
  o += pad4(backendLength!);
  const bytes = head.slice(o, o + stateLength!);
  o += pad4(stateLength!);
  const idx = new Uint32Array(pages!);
  for (let i = 0; i < pages!; i++) {
    idx[i] = dv.getUint32(o + 4 * i, true);
    if (idx[i]! >= memorySize / PAGE_SIZE || (i > 0 && idx[i]! <= idx[i - 1]!)) throw new Error(`swap record of VM ${vmId} has a bad page index`);
  }
  return { state: { backend, bytes }, pages: idx };
}

/** Call `fn(first, count)` for each run of consecutive indices in ascending `pages`. */
export function forEachRun(pages: Uint32Array, fn: (first: number, count: number) => void): void {
  let i = 0;
  while (i < pages.length) {
    let j = i + 1;
    while (j < pages.length && pages[j] === pages[j - 1]! + 1) j++;
    fn(pages[i]!, j - i);
    i = j;
  }
}
