/**
 * The `.dni` manifest: what `manifest.json` inside a Denali image holds.
 * Validation rules live in `validate.ts`; the archive layout in `archive.ts`.
 */

/** Current `.dni` format version written by `writeImage`; `readImage` accepts only this one. */
export const FORMAT_VERSION = 1;

/** Segment permission flags: any non-empty combination of r, w, x in that order ("r", "rx", "rw", "rwx"). */
export type SegmentFlags = 'r' | 'rw' | 'rx' | 'rwx';

/** One loadable segment, as recorded in the manifest. */
export interface SegmentManifest {
  /** File name of the segment's bytes inside the archive, e.g. `segments/0.bin`. */
  file: string;
  /** Guest-physical load address in bytes; page-aligned, at or above `LAYOUT.IMAGE_BASE`. */
  loadAddress: number;
  /** Bytes stored in the archive (copied to `loadAddress`). */
  fileSize: number;
  /** Bytes occupied in guest memory (`>= fileSize`; the rest is zeroed, i.e. BSS). */
  memorySize: number;
  flags: SegmentFlags;
  /** SHA-256 of the `fileSize` stored bytes, lowercase hex (64 chars). */
  sha256: string;
}

/** The whole manifest (`manifest.json`). All sizes in bytes, addresses guest-physical. */
export interface Manifest {
  formatVersion: number;
  /** Service name: 1–64 chars of `[A-Za-z0-9._-]`, not starting with `.` or `-`. */
  name: string;
  /** Must be `ARCH_ID` ("denali-x86-32"). */
  architecture: string;
  /** Guest ABI version the image was built for (`ABI_VERSION`). */
  abiVersion: number;
  /** Entry point: guest address inside an executable segment. */
  entryPoint: number;
  /** Guest memory size: a multiple of the page size, within [MIN_MEMORY, MAX_MEMORY]. */
  memorySize: number;
  /** Stack size, page multiple; the stack sits at the top of memory above every segment. */
  stackSize: number;
  /** Default boot arguments (argv[1..]); argv[0] is the service name. */
  args: string[];
  segments: SegmentManifest[];
}

/** A segment as given to `writeImage`: its place and bytes; file name and digest are derived. */
export interface SegmentInput {
  loadAddress: number;
  memorySize: number;
  flags: SegmentFlags;
  data: Uint8Array;
}

/** What `writeImage` takes. */
export interface ImageInput {
  name: string;
  entryPoint: number;
  memorySize: number;
  stackSize: number;
  args: string[];
  segments: SegmentInput[];
}

/** A validated image, as returned by `readImage`. */
export interface DenaliImage {
  manifest: Manifest;
  /** Segment bytes, in manifest order; `segments[i].length === manifest.segments[i].fileSize`. */
  segments: Uint8Array[];
}
