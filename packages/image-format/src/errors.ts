/**
 * The one error type of the `.dni` image layer.
 *
 * Every failure of `readImage`, `readImageFile`, `writeImage` and `writeImageFile` is an
 * `ImageError`; nothing else escapes them, whatever bytes they are given.
 */

/**
 * What went wrong, as a stable machine-readable code.
 *
 * Archive level (the tar container, POSIX ustar):
 * - `not-tar`      the bytes are not a ustar archive at all (empty, compressed, no valid first header).
 * - `truncated`    the archive ends early: inside a header, inside an entry's data or padding,
 *                  or without the two zero blocks that end a tar archive.
 * - `bad-entry`    a header or entry is malformed or not allowed: checksum mismatch, unsupported
 *                  entry type (only regular files may appear), bad size field, data after the end
 *                  marker, or an entry whose size differs from the manifest's `fileSize`.
 * - `missing-manifest` no `manifest.json` entry.
 * - `missing-segment`  a segment file named by the manifest is not in the archive.
 * - `extra-file`   the archive holds a file the manifest does not name, or the same path twice.
 * - `too-large`    a size or count limit (`IMAGE_LIMITS`) is exceeded; checked before allocating.
 *
 * Manifest level (`manifest.json`, see `validate.ts`):
 * - `bad-json`     not UTF-8, not JSON, or not a JSON object.
 * - `bad-field`    a field is missing, unknown, of the wrong type, or out of its allowed range.
 * - `unknown-version`      `formatVersion` is not `FORMAT_VERSION`.
 * - `unknown-architecture` `architecture` is not `ARCH_ID`.
 * - `abi-mismatch`         `abiVersion` is not `ABI_VERSION`.
 * - `overlap`        two segments share guest memory.
 * - `reserved-region` a segment starts below `LAYOUT.IMAGE_BASE` (the reserved low memory).
 * - `outside-memory` a segment reaches past `memorySize - stackSize` (into the stack or beyond memory).
 * - `digest-mismatch` a segment's bytes do not hash to the manifest's `sha256`.
 *
 * Other:
 * - `io`           a file-system operation of `readImageFile`/`writeImageFile` failed (see `cause`).
 */
export type ImageErrorCode =
  | 'not-tar'
  | 'truncated'
  | 'missing-manifest'
  | 'bad-json'
  | 'bad-field'
  | 'unknown-version'
  | 'unknown-architecture'
  | 'abi-mismatch'
  | 'overlap'
  | 'reserved-region'
  | 'outside-memory'
  | 'bad-entry'
  | 'digest-mismatch'
  | 'missing-segment'
  | 'extra-file'
  | 'too-large'
  | 'io';

/** Every `ImageErrorCode`, for exhaustive tests and CLI help. */
export const IMAGE_ERROR_CODES: readonly ImageErrorCode[] = [
  'not-tar',
  'truncated',
  'missing-manifest',
  'bad-json',
  'bad-field',
  'unknown-version',
  'unknown-architecture',
  'abi-mismatch',
  'overlap',
  'reserved-region',
  'outside-memory',
  'bad-entry',
  'digest-mismatch',
  'missing-segment',
  'extra-file',
  'too-large',
  'io',
];

/**
 * A `.dni` image could not be read or written.
 *
 * - `code`: what kind of problem (`ImageErrorCode`).
 * - `field`: the manifest field path the problem is about, e.g. `segments[1].loadAddress`,
 *   `entryPoint`, `args[2]`; the empty string when the problem is not about one field
 *   (e.g. a damaged tar header).
 * - `message`: one line naming the problem and, when there is one, the field
 *   (`"<field>: <detail>"`).
 * - `cause`: the underlying error, when one exists (node-tar or file-system error).
 */
export class ImageError extends Error {
  override readonly name = 'ImageError';
  readonly code: ImageErrorCode;
  readonly field: string;

  constructor(code: ImageErrorCode, field: string, detail: string, options?: { cause?: unknown }) {
    super(oneLine(field === '' ? detail : `${field}: ${detail}`), options);
    this.code = code;
    this.field = field;
  }
}

/** True if `e` is an `ImageError` (optionally with the given code). */
export function isImageError(e: unknown, code?: ImageErrorCode): e is ImageError {
  return e instanceof ImageError && (code === undefined || e.code === code);
}

/** Keeps messages on one line and of bounded length, whatever text (e.g. a hostile path) they quote. */
function oneLine(s: string): string {
  const flat = s.replace(/[\r\n\t]+/g, ' ');
  return flat.length > 400 ? `${flat.slice(0, 397)}...` : flat;
}
