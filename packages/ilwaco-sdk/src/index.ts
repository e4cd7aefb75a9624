/**
 * @denali/ilwaco-sdk: build Ilwaco guest services (paper section 3.3) into Denali images.
 *
 * - `buildService(dir, opts)`: denali.json + C sources -> `<name>.dni`.
 * - `sdkPaths()`, `C_FLAGS`: where the headers, library sources and linker script are, and
 *   the compile flags, for other tools.
 * - `packAssets`, `readAssetBlob`: the assets blob linked into images (`ilwaco/assets.h`).
 * - `parseElf32`: the strict ELF32 reader used to turn the linked executable into segments.
 */
export { buildService, buildSdkLibrary, compileAndLink } from './build.js';
export type { BuildOptions, BuildResult, SdkLibrary } from './build.js';
export { loadServiceConfig, validateServiceConfig, SERVICE_FILE, DEFAULT_MEMORY, DEFAULT_ASSETS_DIR } from './config.js';
export {
  collectAssets,
  packAssetFiles,
  packAssets,
  readAssetBlob,
  assetsAssembly,
  ASSET_MAGIC,
  ASSET_VERSION,
  MAX_ASSET_BYTES,
  MAX_ASSET_PATH,
} from './assets.js';
export type { AssetFile, AssetEntry, AssetOptions } from './assets.js';
export type { ServiceConfig } from './config.js';
export { parseElf32 } from './elf.js';
export type { ElfExecutable } from './elf.js';
export { BuildError, ElfError } from './errors.js';
export { sdkPaths, C_FLAGS, LIB_FLAGS, SDK_ROOT } from './paths.js';
export type { SdkPaths } from './paths.js';
