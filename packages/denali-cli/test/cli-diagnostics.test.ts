/**
 * Issue 9, "a CLI that says what is wrong": each finding of a new user, run through the real CLI.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa, execaSync } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { cService, denali, denaliBin, freePort } from './helpers.js';

let work = '';
let hello = '';
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'denali-diag-'));
  hello = join(work, 'hello.dni');
  const b = await denali(['build', 'examples/hello', '-o', hello]);
  expect(b.exitCode).toBe(0);
}, 120_000);

describe('usage errors: one rule, exit status 2, nothing started, no backend note first', () => {
  const cases: [string[], RegExp][] = [
    [['--memory', '0'], /--memory.*'0' is not a VM memory size: it must be between 2M and 1024M/],
    [['--memory', '5000M'], /not a VM memory size/],
    [['--memory', '3000001'], /multiple of 4K/],
    [['-p', 'abc'], /-p abc: expected HOST_PORT:GUEST_PORT/],
    [['-p', '8081:9:80'], /^denali: -p 8081:9:80: there is no VM 9 \(this run has 1 VM: hello\)$/m],
    [['-p', '8081:web:80'], /^denali: -p 8081:web:80: there is no VM named 'web' \(this run has 1 VM: hello\)$/m],
    [['-p', '8081:80', '-p', '8081:81'], /host port 8081 is forwarded twice/],
    [['--net', 'tap', '-p', '8081:80'], /-p is for --net user/],
    [['--quantum', '-3'], /not a positive whole number/],
    [['--', 'x'.repeat(20_000)], /^denali: arguments after '--': boot arguments take \d+ bytes; at most \d+ fit$/m],
  ];
  it.each(cases.map(([flags, pattern]) => ({ flags, pattern, name: flags.join(' ').slice(0, 40) })))('run … $name', async ({ flags, pattern }) => {
    const r = await denali(['run', hello, ...flags]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/using the emulator|note:/);
    expect(r.stdout).toBe(''); // no VM ran
  });

  it('--memory too small for the image (known only once built) is a usage error too, before any backend note', async () => {
    const r = await denali(['run', '--memory', '2M', 'examples/httpd']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^denali: --memory: image 'httpd' needs at least \d+ MiB of memory/);
    expect(r.stderr).not.toMatch(/using the emulator|note:/);
  }, 120_000);

  it('a -p naming a VM index or name that exists is accepted', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const r = await denali(['run', '--backend', 'emu', hello, hello, '-p', `${p1}:hello-2:80`, '-p', `${p2}:1:80`]);
    expect(r.stderr).not.toMatch(/there is no VM/);
    expect(r.exitCode).toBe(0);
  });
});

describe('bad images: the message names the file and speaks of images, not tar', () => {
  it('empty, junk, cut-off, compressed, and a corrupt segment', async () => {
    const img = await readFile(hello);
    const cases: [string, Uint8Array, RegExp][] = [
      ['empty.dni', new Uint8Array(), /: not a Denali image: the file is empty$/],
      ['junk.dni', Buffer.from('#!/bin/sh\necho hi\n'), /: not a Denali image \(18 bytes\): build one with 'denali build <service-dir>'$/],
      ['cut.dni', img.subarray(0, 1500), /: an incomplete Denali image: the file ends early \(1500 bytes\); copy or build it again$/],
      ['zipped.dni', gzipSync(img), /: a compressed file, not a Denali image: a \.dni image is not compressed \(gunzip it first\)$/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const file = join(work, name);
      await writeFile(file, bytes);
      for (const cmd of [['run', file], ['inspect', file]]) {
        const r = await denali(cmd);
        expect(r.exitCode, name).toBe(1);
        const lines = r.stderr.trim().split('\n');
        expect(lines, name).toHaveLength(1);
        expect(lines[0], name).toMatch(new RegExp(`^denali: ${file.replace(/[.]/g, '\\.')}`));
        expect(lines[0], name).toMatch(pattern);
        expect(lines[0], name).not.toMatch(/\btar\b|ustar|header|zero blocks/);
      }
    }
  });
});

describe('the emulator note', () => {
  it('is said once per run, in one short line', async () => {
    const r = await denali(['run', hello, hello]);
    expect(r.exitCode).toBe(0);
    const notes = r.stderr.split('\n').filter((l) => /emulator|kvm/i.test(l));
    expect(notes.length).toBeLessThanOrEqual(1);
    for (const n of notes) expect(n.length).toBeLessThan(100);
  });
});

describe('a network service run without networking', () => {
  it('the guest reads "Network is down", and the CLI hints at -p / --net', async () => {
    const dir = await cService(
      'netsvc',
      `#include <stdio.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
int main(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) { fprintf(stderr, "netsvc: socket: %s\\n", strerror(errno)); return 1; }
    return 0;
}
`,
    );
    const r = await denali(['run', '--backend', 'emu', dir]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout + r.stderr).toContain('netsvc: socket: Network is down');
    expect(r.stdout + r.stderr).not.toMatch(/Unknown error|errno 100/);
    expect(r.stderr).toMatch(/^denali: hint: netsvc tried to use the network, but this run has none: publish a port with -p HOST_PORT:GUEST_PORT, or use --net user$/m);
    const withNet = await denali(['run', '--backend', 'emu', '--net', 'user', dir]);
    expect(withNet.stderr).not.toMatch(/hint/);
  }, 120_000);

  it('an errno the library does not name still reads with its number', async () => {
    const dir = await cService('errtext', `#include <stdio.h>\n#include <string.h>\nint main(void) { printf("[%s]\\n", strerror(4242)); return 0; }\n`);
    const r = await denali(['run', '--backend', 'emu', dir]);
    expect(r.stdout).toBe('[Unknown error 4242]');
  }, 120_000);
});

describe('a hypercall writing into the read-only virtual-register page', () => {
  it('is reported as such, not as outside the VM memory', async () => {
    const dir = await cService(
      'rovreg',
      `#include <ilwaco/ilwaco.h>\nint main(void) { int eof; ilwaco_console_read((void *)0x1100, 8, &eof); return 0; }\n`,
    );
    const r = await denali(['run', '--backend', 'emu', dir], { input: 'x' });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^vm rovreg#1 faulted at eip 0x[0-9a-f]+: bad-hypercall.*0x1100 is into the read-only virtual-register page \[0x1000, 0x2000\)/m);
    expect(r.stderr).not.toContain("outside the VM's memory");
  }, 120_000);
});

describe('many VMs: booted incrementally with a progress line; Ctrl-C during the boot is prompt', () => {
  it('500 idle VMs', async () => {
    const dir = await cService('idle', `#include <stdio.h>\n#include <time.h>\nint main(void) { printf("up\\n"); for (;;) sleep(1000); }\n`, { memory: '2M' });
    const img = join(work, 'idle.dni');
    expect((await denali(['build', dir, '-o', img])).exitCode).toBe(0);
    const proc = execa(denaliBin, ['run', '--backend', 'emu', ...Array<string>(500).fill(img)], { reject: false, stdin: 'ignore', buffer: false });
    let err = '';
    let out = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const deadline = Date.now() + 60_000;
    while (!/booting 500 VMs/.test(err) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    // The first VMs run (and print) while the rest are still booting.
    while (!out.includes('idle | up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(out).toContain('idle | up');
    const t0 = performance.now();
    proc.kill('SIGINT');
    const r = await proc;
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(r.exitCode).toBe(130);
    expect(err).toMatch(/^denali: \d+ of 500 VMs booted in [\d.]+ s/m);
  }, 120_000);
});

describe('-p to a VM that is slow to answer ARP (busy among hundreds of VMs)', () => {
  it('the first request still gets through (ARP backs off instead of giving up after 2 s)', async () => {
    const spin = await cService('spin', `int main(void) { for (;;) __asm__ volatile(""); }\n`, { memory: '2M' });
    const spinImg = join(work, 'spin.dni');
    expect((await denali(['build', spin, '-o', spinImg])).exitCode).toBe(0);
    const httpd = join(work, 'httpd.dni');
    expect((await denali(['build', 'examples/httpd', '-o', httpd])).exitCode).toBe(0);
    const port = await freePort();
    // httpd boots first and listens; 800 spinning VMs (4 ms quanta) make each of its turns ~3 s apart.
    const proc = execa(denaliBin, ['run', '--backend', 'emu', httpd, ...Array<string>(800).fill(spinImg), '-p', `${port}:httpd:80`], {
      reject: false,
      stdin: 'ignore',
      buffer: false,
    });
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 90_000;
      while (!out.includes('httpd | httpd: listening') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain('httpd | httpd: listening');
      const t0 = Date.now();
      const r = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(60_000) });
      expect(r.status).toBe(200);
      await r.arrayBuffer();
    } finally {
      proc.kill('SIGINT');
      await proc;
    }
  }, 180_000);
});

describe('more VMs than the V8 heap can hold', () => {
  it('refuses the rest with one line and keeps the admitted VMs running; no heap out-of-memory abort', async () => {
    const dir = await cService('idle', `#include <stdio.h>\n#include <time.h>\nint main(void) { printf("up\\n"); for (;;) sleep(1000); }\n`, { memory: '2M' });
    const img = join(work, 'idle-heap.dni');
    expect((await denali(['build', dir, '-o', img])).exitCode).toBe(0);
    const proc = execa(denaliBin, ['run', '--backend', 'emu', ...Array<string>(1500).fill(img)], {
      reject: false,
      stdin: 'ignore',
      buffer: false,
      env: { NODE_OPTIONS: '--max-old-space-size=100' },
    });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    proc.stdout!.resume();
    const deadline = Date.now() + 60_000;
    while (!/VMs booted in/.test(err) && proc.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 3000)); // the admitted VMs run (and grow their heap) a while
    proc.kill('SIGINT');
    const r = await proc;
    expect(err).not.toMatch(/heap out of memory|FATAL ERROR/);
    expect(err).toMatch(/^denali: refusing \d+ of 1500 VMs: not enough memory for VM idle-\d+: Yakima's JavaScript heap would hold \d+ of its \d+ MiB limit with \d+ VMs; run fewer VMs per instance, or raise the limit with NODE_OPTIONS=--max-old-space-size=<MiB>$/m);
    expect(r.exitCode).toBe(130);
  }, 120_000);
});

const hasTmux = execaSync('tmux', ['-V'], { reject: false }).exitCode === 0;
if (!hasTmux) console.log('boot progress on a terminal skipped: tmux is not installed');

describe.skipIf(!hasTmux)('boot progress on a terminal (tmux)', () => {
  it('one line redrawn in place, then the summary', async () => {
    const dir = await cService('idle', `#include <stdio.h>\n#include <time.h>\nint main(void) { printf("up\\n"); for (;;) sleep(1000); }\n`, { memory: '2M' });
    const img = join(work, 'idle-tty.dni');
    expect((await denali(['build', dir, '-o', img])).exitCode).toBe(0);
    const session = `denali-boot-${process.pid}`;
    const cmd = `${denaliBin} run --backend emu ${Array<string>(300).fill(img).join(' ')} >/dev/null`;
    await execa('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '20', cmd]);
    try {
      let screen = '';
      const deadline = Date.now() + 60_000;
      while (!/VMs booted in/.test(screen) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 200));
        screen = (await execa('tmux', ['capture-pane', '-p', '-t', session], { reject: false })).stdout;
      }
      const lines = screen.split('\n').filter((l) => l.trim() !== '');
      expect(lines.filter((l) => /^denali: 300 of 300 VMs booted in [\d.]+ s$/.test(l))).toHaveLength(1);
      expect(lines.some((l) => /booting VMs \d+\/300/.test(l))).toBe(false); // the progress line was replaced, not left behind
      expect(lines).not.toContain('denali: booting 300 VMs'); // the form for a pipe or file, not a terminal
    } finally {
      await execa('tmux', ['kill-session', '-t', session], { reject: false });
    }
  }, 120_000);
});
