import { readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { probeKvm, probeProcessBackend } from '@denali/yakima';
import { cService, denali, denaliBin, root } from './helpers.js';

const EXAMPLES = ['hello', 'threads', 'sha256', 'sdk-tests', 'coremix', 'strmem'];

describe('denali build + run of every example (emulator)', () => {
  it.each(EXAMPLES)('%s prints its expected output and exits 0', async (name) => {
    const out = await mkdtemp(join(tmpdir(), 'denali-ex-'));
    const image = join(out, `${name}.dni`);
    const b = await denali(['build', `examples/${name}`, '-o', image]);
    expect(b.stderr).toBe('');
    expect(b.exitCode).toBe(0);
    expect(b.stdout).toMatch(new RegExp(`^built ${image.replace(/[.]/g, '\\.')} \\(`));
    const r = await denali(['run', '--backend', 'emu', image]);
    expect(r.stderr).toBe('');
    expect(r.stdout + '\n').toBe(await readFile(join(root, `examples/${name}/expected-output.txt`), 'utf8'));
    expect(r.exitCode).toBe(0);
  });

  it('runs a service directory directly and passes arguments after --', async () => {
    const dir = await cService(
      'args',
      `#include <stdio.h>
int main(int argc, char **argv) { for (int i = 0; i < argc; i++) printf("[%s]", argv[i]); printf("\\n"); return argc; }`,
    );
    const r = await denali(['run', dir, '--', 'one', 'two words']);
    expect(r.stdout).toBe('[args][one][two words]');
    expect(r.exitCode).toBe(3);
  });

  it('auto backend says in one line why it uses the process backend or the emulator, or uses KVM silently', async () => {
    const r = await denali(['run', 'examples/hello']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Hello from Denali VM hello!');
    const probe = probeKvm();
    if (probe.usable && probe.native) expect(r.stderr).toBe('');
    else if (probeProcessBackend().usable) expect(r.stderr).toMatch(/^denali: using the process backend: .+$/);
    else expect(r.stderr).toMatch(/^denali: using the emulator: .+$/);
  });

  it('prefixes console lines with VM names when several VMs run', async () => {
    const r = await denali(['run', 'examples/hello', 'examples/hello']);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => l.startsWith('hello | ')).length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.startsWith('hello-2 | ')).length).toBe(lines.filter((l) => l.startsWith('hello | ')).length);
    expect(lines.every((l) => /^hello(-2)? \| /.test(l))).toBe(true);
  });
});

describe('isolation and robustness', () => {
  it('a VM writing outside its memory dies with a one-line report; its neighbour finishes', async () => {
    const bad = await cService(
      'wild',
      `#include <stdio.h>
int main(void) { printf("about to write\\n"); *(volatile int *)0x7ff00000 = 1; printf("survived?!\\n"); return 0; }`,
    );
    const r = await denali(['run', '--backend', 'emu', bad, 'examples/sha256']);
    expect(r.stdout).toContain('wild | about to write');
    expect(r.stdout).not.toContain('survived');
    const expected = (await readFile(join(root, 'examples/sha256/expected-output.txt'), 'utf8')).trim().split('\n');
    for (const line of expected) expect(r.stdout).toContain(`sha256 | ${line}`);
    const reports = r.stderr.trim().split('\n');
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatch(/^vm wild#1 faulted at eip 0x[0-9a-f]{8}: memory \(.*0x7ff00000.*\) \[[0-9a-f ]+\]$/);
    expect(r.exitCode).toBe(1);
  });

  it('a null dereference faults the VM', async () => {
    // argc - 1 is 0 at run time but unknown to gcc, which would otherwise turn the dereference into ud2.
    const dir = await cService('null', `int main(int argc, char **argv) { (void)argv; return *(volatile int *)(argc - 1); }`);
    const r = await denali(['run', '--backend', 'emu', dir]);
    expect(r.stderr).toMatch(/^vm null#1 faulted at eip 0x001[0-9a-f]{5}: memory/);
    expect(r.exitCode).toBe(1);
  });

  it('a deprecated instruction faults the VM', async () => {
    const dir = await cService('cli', `int main(void) { __asm__ volatile("cli"); return 0; }`);
    const r = await denali(['run', '--backend', 'emu', dir]);
    expect(r.stderr).toMatch(/faulted at eip 0x[0-9a-f]{8}: deprecated-instruction .*\[fa/);
    expect(r.exitCode).toBe(1);
  });

  it('a spinning VM does not stop its neighbour, console output, or Ctrl-C', async () => {
    const spin = await cService('spin', `int main(void) { for (;;) __asm__ volatile(""); }`);
    const child = execa(denaliBin, ['run', spin, 'examples/hello'], { cwd: root, reject: false, timeout: 60_000 });
    let seen = '';
    await new Promise<void>((resolve) => {
      child.stdout!.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('hello | ')) resolve();
      });
    });
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode).toBe(130);
    expect(r.stderr).toContain('interrupted');
  });

  it('turns bad input into one clear line, never a stack trace', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'denali-bad-'));
    const junk = join(dir, 'junk.dni');
    await writeFile(junk, 'this is not a tar archive at all'.repeat(40));
    const cases: [string[], RegExp, number][] = [
      [['run', '/nonexistent/x.dni'], /does not exist/, 1],
      [['run', junk], /.+/, 1],
      [['inspect', junk], /.+/, 1],
      [['run', 'examples/hello', '--memory', 'lots'], /not a size/, 2],
      [['run', 'examples/hello', '--memory', '1M'], /memory size/, 2],
      [['run', 'examples/hello', '--backend', 'quantum'], /backend/, 2],
      [['build', dir], /denali\.json/, 1],
      [['frobnicate'], /unknown command/, 2],
    ];
    for (const [args, pattern, code] of cases) {
      const r = await denali(args);
      expect(r.exitCode, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(pattern);
      expect(r.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
    }
  });

  it('shows compiler errors as the compiler printed them', async () => {
    const dir = await cService('broken', `int main(void) { return undefined_thing; }`);
    const r = await denali(['build', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/error: .undefined_thing. undeclared/);
  });

  it('says what to install when the C compiler is missing', async () => {
    const r = await execa(denaliBin, ['build', 'examples/hello', '-o', join(tmpdir(), 'x.dni')], {
      cwd: root,
      reject: false,
      env: { CC: 'no-such-cc-denali' },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no C compiler found/);
  });
});

describe('denali inspect', () => {
  it('prints the manifest in human form and as JSON', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'denali-insp-')), 'hello.dni');
    expect((await denali(['build', 'examples/hello', '-o', out])).exitCode).toBe(0);
    const human = await denali(['inspect', out]);
    expect(human.exitCode).toBe(0);
    expect(human.stdout).toContain('hello');
    expect(human.stdout).toMatch(/0x0*10[0-9a-f]{4}/);
    const json = await denali(['inspect', '--json', out]);
    const m = JSON.parse(json.stdout);
    expect(m.name).toBe('hello');
    expect(m.architecture).toBe('denali-x86-32');
    expect(m.segments.length).toBeGreaterThan(0);
  });
});
