import { stat } from 'node:fs/promises';
import { describeImage } from '@denali/image-format';
import { loadImage } from './image-errors.js';

/** `denali inspect <image> [--json]`: validate the image and print its manifest. */
export async function inspectCommand(file: string, json: boolean): Promise<number> {
  const image = await loadImage(file);
  if (json) {
    process.stdout.write(JSON.stringify(image.manifest, null, 2) + '\n');
  } else {
    process.stdout.write(describeImage(image, { archiveBytes: (await stat(file)).size }));
  }
  return 0;
}
