/**
 * Parse a memory size as people write it: a number of bytes (`16777216`), or a number with a
 * binary suffix K, M or G (optionally followed by `iB` or `B`, case-insensitive):
 * `512K`, `16M`, `16MiB`, `1G`, `1.5M`. Returns bytes.
 *
 * @throws RangeError naming the text when it is not a size or not a whole number of bytes.
 */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') {
    if (Number.isSafeInteger(text) && text >= 0) return text;
    throw new RangeError(`'${text}' is not a size in bytes`);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new RangeError(`'${text}' is not a size (examples: 16M, 512K, 1G, 1048576)`);
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bytes = Number(m[1]) * scale;
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`'${text}' is not a whole number of bytes`);
  return bytes;
}
