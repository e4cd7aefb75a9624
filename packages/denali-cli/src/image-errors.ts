import { stat } from 'node:fs/promises';
import { isImageError, readImageFile, type DenaliImage, type ImageError } from '@denali/image-format';

/**
 * Read a `.dni` image for a command, turning a failure into one line that names the file and
 * says what is wrong in the image's terms (the archive inside is an implementation detail:
 * a user should read "is incomplete", not "ends inside the end-of-archive marker").
 * @throws Error with that line (no `denali:` prefix).
 */
export async function loadImage(file: string): Promise<DenaliImage> {
  try {
    return await readImageFile(file);
  } catch (e) {
    if (!isImageError(e)) throw e;
    const size = await stat(file).then(
      (s) => s.size,
      () => undefined,
    );
    throw new Error(`${file}: ${explainImageError(e, size)}`, { cause: e });
  }
}

/**
 * One phrase for an `ImageError`, in the image's terms: what the file is (not an image, an
 * incomplete or damaged one, one for another ABI) and what to do, keeping the detail only
 * where it is about the manifest (already in image terms).
 * @param size the file's size in bytes, when known (said for short or cut-off files).
 */
export function explainImageError(e: ImageError, size?: number): string {
  const bytes = size === undefined ? '' : ` (${size} bytes)`;
  switch (e.code) {
    case 'not-tar':
      if (size === 0) return 'not a Denali image: the file is empty';
      if (/gzip/.test(e.message)) return 'a compressed file, not a Denali image: a .dni image is not compressed (gunzip it first)';
      if (/zstd/.test(e.message)) return 'a compressed file, not a Denali image: a .dni image is not compressed (unzstd it first)';
      return `not a Denali image${bytes}: build one with 'denali build <service-dir>'`;
    case 'truncated':
      return `an incomplete Denali image: the file ends early${bytes}; copy or build it again`;
    case 'bad-entry':
    case 'missing-segment':
    case 'extra-file':
      return `a damaged Denali image: its contents are corrupt (${e.message}); build it again`;
    case 'missing-manifest':
      return 'not a Denali image: it has no manifest (manifest.json)';
    case 'bad-json':
      return `a damaged Denali image: its manifest is unreadable (${e.message})`;
    case 'digest-mismatch':
      return `a corrupt Denali image: a program segment does not match its checksum (${e.message}); build it again`;
    case 'unknown-version':
    case 'unknown-architecture':
    case 'abi-mismatch':
      return `a Denali image this denali cannot run (${e.message}); rebuild it with this version`;
    case 'too-large':
      return `too large for a Denali image (${e.message})`;
    case 'io':
      return `cannot be read (${ioReason(e)})`;
    default:
      return `an invalid Denali image: its manifest is wrong (${e.message})`;
  }
}

function ioReason(e: ImageError): string {
  const code = (e.cause as { code?: string } | undefined)?.code;
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  if (code === 'ENOENT') return 'no such file';
  return e.message;
}
