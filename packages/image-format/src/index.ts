/**
 * `@denali/image-format`: the guest ABI (`abi.ts`), the `.dni` manifest types (`manifest.ts`),
 * and reading, writing, validating and describing `.dni` images (`image.ts`, `validate.ts`,
 * `archive.ts`, `describe.ts`). Every read/write failure is an `ImageError` (`errors.ts`).
 */
export * from './abi.js';
export * from './manifest.js';
export { ImageError, IMAGE_ERROR_CODES, isImageError } from './errors.js';
export type { ImageErrorCode } from './errors.js';
export { IMAGE_LIMITS, SEGMENT_FLAGS, validateManifest, segmentFileName, bootArgsBytes } from './validate.js';
export {
  MANIFEST_FILE,
  writeImage,
  writeImageFile,
  readImage,
  readImageFile,
  manifestFromInput,
  encodeManifest,
  sha256Hex,
} from './image.js';
export { describeImage, formatBytes } from './describe.js';
export { parseSize } from './size.js';
export type { DescribeOptions } from './describe.js';
