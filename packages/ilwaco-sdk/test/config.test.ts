import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildError, loadServiceConfig, validateServiceConfig } from '../src/index.js';
import { freshDir } from './helpers.js';

async function serviceDir(json: unknown, files: string[] = ['main.c']): Promise<string> {
  const dir = await freshDir('svc-');
  for (const f of files) {
    await mkdir(join(dir, f, '..'), { recursive: true });
    await writeFile(join(dir, f), 'int main(void) { return 0; }\n');
  }
  await writeFile(join(dir, 'denali.json'), typeof json === 'string' ? json : JSON.stringify(json));
  return dir;
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(BuildError);
    const m = (e as Error).message;
    expect(m.split('\n')).toHaveLength(1);
    return m;
  }
  throw new Error('expected a BuildError');
}

describe('denali.json', () => {
  it('applies defaults: 16M memory, 256K stack, no cflags, no args', async () => {
    const dir = await serviceDir({ name: 'svc', sources: ['main.c', 'sub/x.S'] }, ['main.c', 'sub/x.S']);
    const c = loadServiceConfig(dir);
    expect(c).toEqual({
      name: 'svc',
      sources: [join(dir, 'main.c'), join(dir, 'sub/x.S')],
      memory: 16 * 1024 * 1024,
      stack: 256 * 1024,
      cflags: [],
      args: [],
    });
  });

  it('parses sizes as strings or numbers', async () => {
    const dir = await serviceDir({ name: 'svc', sources: ['main.c'], memory: '1G', stack: 65536, cflags: ['-DX=1'], args: ['a b', ''] });
    const c = loadServiceConfig(dir);
    expect(c.memory).toBe(1024 ** 3);
    expect(c.stack).toBe(65536);
    expect(c.cflags).toEqual(['-DX=1']);
    expect(c.args).toEqual(['a b', '']);
    expect(validateServiceConfig({ name: 'x', sources: ['main.c'], stack: '512K' }, dir).stack).toBe(512 * 1024);
  });

  it('names the bad field in a one-line BuildError', async () => {
    const dir = await serviceDir({ name: 'svc', sources: ['main.c'] });
    const v = (o: unknown) => message(() => validateServiceConfig(o, dir));
    expect(v([])).toMatch(/must hold a JSON object/);
    expect(v({ sources: ['main.c'] })).toMatch(/missing field 'name'/);
    expect(v({ name: '-bad', sources: ['main.c'] })).toMatch(/'name'/);
    expect(v({ name: 'a/b', sources: ['main.c'] })).toMatch(/'name'/);
    expect(v({ name: 'x' })).toMatch(/missing field 'sources'/);
    expect(v({ name: 'x', sources: [] })).toMatch(/'sources' must name at least one/);
    expect(v({ name: 'x', sources: 'main.c' })).toMatch(/'sources' must be an array/);
    expect(v({ name: 'x', sources: [3] })).toMatch(/'sources\[0\]' must be a string/);
    expect(v({ name: 'x', sources: ['main.cpp'] })).toMatch(/'sources\[0\]' \(main.cpp\) must end in .c, .S or .s/);
    expect(v({ name: 'x', sources: ['main.c', 'gone.c'] })).toMatch(/'sources\[1\]': file not found: gone.c/);
    expect(v({ name: 'x', sources: ['/etc/passwd.c'] })).toMatch(/must be relative/);
    expect(v({ name: 'x', sources: ['main.c'], memory: 'lots' })).toMatch(/'memory' is not a size/);
    expect(v({ name: 'x', sources: ['main.c'], memory: '1M' })).toMatch(/'memory' .* must be between 2M and 1G/);
    expect(v({ name: 'x', sources: ['main.c'], memory: '2G' })).toMatch(/'memory'/);
    expect(v({ name: 'x', sources: ['main.c'], memory: 5000000 })).toMatch(/'memory' .* multiple of the page size/);
    expect(v({ name: 'x', sources: ['main.c'], stack: '100' })).toMatch(/'stack'/);
    expect(v({ name: 'x', sources: ['main.c'], memory: '2M', stack: '2M' })).toMatch(/'stack' .* does not fit/);
    expect(v({ name: 'x', sources: ['main.c'], cflags: '-O3' })).toMatch(/'cflags' must be an array/);
    expect(v({ name: 'x', sources: ['main.c'], args: [1] })).toMatch(/'args\[0\]' must be a string/);
    expect(v({ name: 'x', sources: ['main.c'], args: ['x'.repeat(5000)] })).toMatch(/'args' take 5003 bytes/);
    expect(v({ name: 'x', sources: ['main.c'], source: [] })).toMatch(/unknown field 'source'/);
  });

  it('reports a missing directory, a missing denali.json and malformed JSON', async () => {
    expect(message(() => loadServiceConfig('/nonexistent/svc'))).toBe('service directory not found: /nonexistent/svc');
    const empty = await freshDir('svc-');
    expect(message(() => loadServiceConfig(empty))).toBe(`no denali.json in ${empty}`);
    const bad = await serviceDir('{ "name": "x", ');
    expect(message(() => loadServiceConfig(bad))).toMatch(/^denali.json: invalid JSON: /);
  });
});
