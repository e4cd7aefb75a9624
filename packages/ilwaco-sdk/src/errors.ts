/**
 * Errors thrown by the SDK's build pipeline.
 */

/**
 * A service could not be built: a bad `denali.json`, a missing source file, a compiler or
 * linker error, no compiler, or an unusable ELF. `message` is one line for configuration
 * problems; for compiler/linker failures it is a one-line summary followed by the compiler's
 * own stderr, unchanged.
 */
export class BuildError extends Error {
  override readonly name = 'BuildError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The ELF file is not a static ELF32 i386 executable this SDK can turn into an image. */
export class ElfError extends Error {
  override readonly name = 'ElfError';
}
