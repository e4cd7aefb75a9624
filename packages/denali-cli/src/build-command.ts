import { formatBytes } from '@denali/image-format';
import { buildService } from '@denali/ilwaco-sdk';

/** `denali build <dir> [-o file]`: compile, link, write the image, print where and how big. */
export async function buildCommand(dir: string, output: string | undefined): Promise<number> {
  const r = await buildService(dir, { out: output });
  const assets = r.assets.paths.length > 0 ? `, ${r.assets.paths.length} assets (${formatBytes(r.assets.bytes)})` : '';
  process.stdout.write(`built ${r.imagePath} (${formatBytes(r.imageBytes)}, ${r.manifest.segments.length} segments${assets})\n`);
  return 0;
}
